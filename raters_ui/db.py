"""The study database: SQLAlchemy models, opening (with migrations) and write transactions.

One database may hold several studies. SQLite (a file) is the embedded default; PostgreSQL is
used by URL for team studies. The schema is created and upgraded by the Alembic migrations in
``raters_ui/migrations`` every time a database is opened, so there is no ``alembic.ini``.

Durability and concurrency:

* SQLite runs in WAL mode with ``synchronous=FULL`` (every commit is fsynced: a crash or power
  loss keeps every acknowledged rating), a busy timeout, and foreign keys on. SQLAlchemy, not the
  ``sqlite3`` module, emits ``BEGIN`` so that DDL is transactional and so that write transactions
  can start with ``BEGIN IMMEDIATE``: taking the write lock up front avoids the lock-upgrade
  deadlock (``SQLITE_BUSY`` without waiting) that deferred transactions hit under concurrency.
* :meth:`StudyDB.write` runs a function in one transaction and retries the whole transaction on
  ``database is locked`` (SQLite), a serialization failure / deadlock or a dropped connection
  (PostgreSQL). SQLite writers of this package also queue on an OS file lock beside the database
  (``<file>.writelock``), which hands the write lock over without SQLite's polling sleeps.
* PostgreSQL reads run in autocommit; writes in READ COMMITTED transactions.
* One rating per rater × item × question is a UNIQUE constraint; inserts use
  ``ON CONFLICT DO NOTHING`` (:func:`insert_ignore`), so a second submission is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's own busy handler alone orders the writers
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    exc,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from harness.errors import UserError

T = TypeVar("T")

QUESTIONS: tuple[str, ...] = ("fidelity", "alignment")
CHOICES: tuple[str, ...] = ("A", "B", "indifferent")
SQLITE_BUSY_TIMEOUT_MS = 30_000  # SQLite itself waits this long for the write lock
WRITE_DEADLINE_S = 120.0  # then StudyDB.write retries the transaction until this deadline
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    """Tokens are 128-bit random strings, so a plain SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    suite: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ratings_per_item: Mapped[int] = mapped_column(Integer)
    items_per_rater: Mapped[int | None] = mapped_column(Integer, nullable=True)
    control_every: Mapped[int] = mapped_column(Integer, default=0)  # one control after every N items
    control_threshold: Mapped[float] = mapped_column(Float, default=0.8)
    admin_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    store_dir: Mapped[str] = mapped_column(Text)  # relative paths are relative to a SQLite file's folder
    seed: Mapped[int] = mapped_column(Integer, default=0)
    # Before the first item (raters_ui.onboarding): the study owner's instructions (NULL: the
    # paper's wording), an optional consent line, and how many practice items come first.
    instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    consent: Mapped[str | None] = mapped_column(Text, nullable=True)
    practice_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    min_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # speed floor (NULL: from the data)


class System(Base):
    __tablename__ = "systems"
    __table_args__ = (UniqueConstraint("study_id", "label"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer)


class Item(Base):
    """A prompt and two image sets ("slot 1" and "slot 2", canonical order).

    Main items compare ``system_1`` (slot 1) with ``system_2`` (slot 2). Control items show one
    system's images in slot 1 and a degraded copy or another prompt's images in slot 2
    (``system_2_id`` NULL); ``expected_*`` name the slot that is the right answer, or NULL when a
    question is not graded for that control.
    """

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("study_id", "key"),
        CheckConstraint("kind IN ('main', 'control')", name="kind"),
        CheckConstraint("expected_fidelity IN (1, 2)", name="expected_fidelity"),
        CheckConstraint("expected_alignment IN (1, 2)", name="expected_alignment"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(600))
    kind: Mapped[str] = mapped_column(String(16))
    prompt_id: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    system_1_id: Mapped[int] = mapped_column(ForeignKey("systems.id"))
    system_2_id: Mapped[int | None] = mapped_column(ForeignKey("systems.id"), nullable=True)
    control_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    expected_fidelity: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    expected_alignment: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class ItemImage(Base):
    __tablename__ = "item_images"
    __table_args__ = (CheckConstraint("slot IN (1, 2)", name="slot"),)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(String(100))  # opaque name in the study's image store


class Rater(Base):
    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("study_id", "label"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # left the instructions
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    practice_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PracticeItem(Base):
    """A practice item shown before the first real one: never an item, never a rating.

    Built like a control (slot 2 a degraded copy of slot 1, or another prompt's images), so the
    rater can be told which answer was expected; ``expected_*`` name the right slot or are NULL.
    """

    __tablename__ = "practice_items"
    __table_args__ = (
        UniqueConstraint("study_id", "position"),
        CheckConstraint("expected_fidelity IN (1, 2)", name="expected_fidelity"),
        CheckConstraint("expected_alignment IN (1, 2)", name="expected_alignment"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    expected_fidelity: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    expected_alignment: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class PracticeImage(Base):
    __tablename__ = "practice_images"
    __table_args__ = (CheckConstraint("slot IN (1, 2)", name="slot"),)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice_items.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(String(100))


class Assignment(Base):
    """An item given to a rater, with the randomised placement: ``a_slot`` is shown as set A."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("rater_id", "item_id"),
        CheckConstraint("a_slot IN (1, 2)", name="a_slot"),
        Index("ix_assignments_item_state", "item_id", "completed_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # order in the rater's sequence
    a_slot: Mapped[int] = mapped_column(SmallInteger)
    is_control: Mapped[bool] = mapped_column(Boolean, default=False)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expected_total: Mapped[int | None] = mapped_column(Integer, nullable=True)  # progress estimate
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # first served


class Rating(Base):
    """One answer. ``choice`` is what the rater clicked (screen sides); map through the assignment."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("rater_id", "item_id", "question"),
        CheckConstraint("question IN ('fidelity', 'alignment')", name="question"),
        CheckConstraint("choice IN ('A', 'B', 'indifferent')", name="choice"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(16))
    choice: Mapped[str] = mapped_column(String(16))
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # server: first served -> submitted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    client_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # the browser's own measure


class ImageView(Base):
    """One opening of the enlarged view during an assignment, as the browser reported it with the
    submission: which set (as shown on screen) and image (1-based; NULL = the whole set), when
    (seconds after the item appeared) and for how long. Client-side data: never used for flags."""

    __tablename__ = "image_views"
    __table_args__ = (
        UniqueConstraint("assignment_id", "seq"),
        CheckConstraint("set_shown IN ('A', 'B')", name="set_shown"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    set_shown: Mapped[str] = mapped_column(String(1))
    image: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at_seconds: Mapped[float] = mapped_column(Float)
    open_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---------------------------------------------------------------------------------------------
# Opening


def normalize_url(db: str | Path) -> str:
    """A SQLAlchemy URL as given, or a plain path turned into a SQLite URL."""
    s = str(db).strip()
    if not s:
        raise UserError("no study database given: pass db=<file.db> or db=<SQLAlchemy URL>")
    if "://" in s:
        return s
    return f"sqlite:///{Path(s).expanduser().resolve()}"


def display_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return url


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see module docstring)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("imagen_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _retryable(err: exc.DBAPIError) -> bool:
    orig = getattr(err, "orig", None)
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    if err.connection_invalidated:  # e.g. the server restarted: the pool reconnects on retry
        return True
    msg = str(orig).lower()
    return isinstance(err, exc.OperationalError) and ("locked" in msg or "busy" in msg)


@dataclass
class StudyDB:
    """An open study database. ``read()`` gives a session; ``write(fn)`` one retried transaction."""

    url: str
    engine: Engine
    _write_engine: Engine = field(repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def folder(self) -> Path | None:
        """The folder of a SQLite database file (relative store paths are resolved against it)."""
        p = sqlite_path(self.url)
        return p.parent if p else None

    def read(self) -> Session:
        """A session for reading. On PostgreSQL it runs in autocommit (each statement its own
        snapshot, no BEGIN/ROLLBACK round trips): readers only show state, never act on it."""
        if self.dialect == "postgresql":
            engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            return Session(engine, expire_on_commit=False)
        return Session(self.engine, expire_on_commit=False)

    def write(
        self, fn: Callable[[Session], T], *, retry_integrity: bool = False, deadline: float = WRITE_DEADLINE_S
    ) -> T:
        """Run ``fn(session)`` in one transaction and commit; retry it whole on lock contention.

        ``retry_integrity`` also retries a unique-constraint race (e.g. two tabs of one rater
        assigning at once): the retry sees the other transaction's row and takes another path.
        """
        start, attempt = time.monotonic(), 0
        while True:
            try:
                with (
                    self._writer_turn(),
                    Session(self._write_engine, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    return fn(session)
            except exc.IntegrityError:
                if not retry_integrity or attempt >= 20:
                    raise
            except exc.DBAPIError as err:
                if not _retryable(err) or time.monotonic() - start > deadline:
                    raise
            attempt += 1
            time.sleep(random.uniform(0.001, min(0.2, 0.002 * 2 ** min(attempt, 7))))

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """For a SQLite file: queue writers on an OS file lock next to it.

        SQLite's busy handler polls with sleeps of up to 100 ms, so under many concurrent
        writers its lock sits idle between holders and throughput halves. A blocking ``flock``
        hands the turn over at once and costs no CPU while waiting. It only orders our own
        writers; SQLite's locking still guarantees correctness (and is all other programs use).
        """
        path = sqlite_path(self.url)
        fd = None
        if path is not None and fcntl is not None:
            try:
                fd = os.open(f"{path}.writelock", os.O_RDONLY | os.O_CREAT, 0o666)
            except OSError:  # a read-only folder: SQLite's own locking still applies
                fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # not re-entrant: write() must not nest
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the lock, as does the death of the process

    def dispose(self) -> None:
        self.engine.dispose()


_MIGRATE_LOCK = threading.Lock()


def open_db(db: str | Path, *, create: bool = False, migrate: bool = True) -> StudyDB:
    """Open (and migrate) a study database; bad URLs or unreachable servers raise UserError.

    A SQLite file that does not exist is an error unless ``create`` (``study create`` makes it).
    """
    url = normalize_url(db)
    path = None
    try:
        path = sqlite_path(url)
    except exc.ArgumentError:
        raise UserError(
            f"not a database URL: {display_url(url)!r} (use a file path or postgresql+psycopg://user@host:port/db)"
        ) from None
    if make_url(url).get_backend_name() == "sqlite" and path is None:
        raise UserError("an in-memory SQLite database would lose the study at exit: give db=<file> or a URL")
    if path is not None:
        if not path.exists() and not create:
            raise UserError(f"no study database at {path}: create one with `imagen-bench study create`")
        if path.exists() and not path.is_file():
            raise UserError(f"the study database {path} is not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the study database {path}: {err.strerror or err}") from None
    try:
        engine = create_engine(url)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise UserError(f"cannot use database URL {display_url(url)!r}: {err}") from None
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise UserError(f"study databases must be SQLite or PostgreSQL, not {engine.dialect.name}")
    if engine.dialect.name == "sqlite":
        _sqlite_events(engine)
    study_db = StudyDB(url, engine, engine.execution_options(imagen_write=True))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if migrate:
            with _MIGRATE_LOCK:
                run_migrations(study_db)
    except (exc.DBAPIError, exc.NoSuchTableError) as err:  # unreachable, not a database, read-only, ...
        engine.dispose()
        first = (str(getattr(err, "orig", err)).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot open study database {display_url(url)}: {first}") from None
    return study_db


def run_migrations(db: StudyDB) -> None:
    """Upgrade the schema to the newest migration (a no-op when it is current)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with db._write_engine.begin() as conn:
        if db.dialect == "postgresql":
            # Two processes opening a fresh database at once must not both create the schema.
            conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if current is not None and current not in {r.revision for r in script.walk_revisions()}:
            raise UserError(
                f"the study database {display_url(db.url)} has schema revision {current!r}, "
                "newer than this build knows; upgrade imagen-bench"
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def insert_ignore(db: StudyDB, table: type[Base], rows: list[dict[str, Any]], conflict: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` for SQLite and PostgreSQL."""
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif db.dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise UserError(f"study databases must be SQLite or PostgreSQL, not {db.dialect}")
    return insert(table).values(rows).on_conflict_do_nothing(index_elements=conflict)
