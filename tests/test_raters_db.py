"""The study database: migrations, constraints, SQLite settings, crash safety, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc, func, select, text

from harness.errors import UserError
from raters_ui import assign
from raters_ui.db import Base, Rating, open_db
from raters_ui.synthetic import make_study
from tests.conftest import require_postgres


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL schema in the test database, dropped afterwards."""
    base = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def schema_diff(db) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_migrations_build_the_model_schema_on_sqlite(tmp_path: Path):
    db = open_db(tmp_path / "s.db", create=True)
    assert schema_diff(db) == []
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    open_db(tmp_path / "s.db")  # reopening is a no-op


@pytest.mark.postgres
def test_migrations_build_the_model_schema_on_postgres(pg_url: str):
    db = open_db(pg_url)
    assert schema_diff(db) == []
    open_db(pg_url)


def test_a_newer_schema_is_refused(tmp_path: Path):
    db = open_db(tmp_path / "s.db", create=True)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(UserError, match="newer than this build"):
        open_db(tmp_path / "s.db")


def test_bad_locations_are_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no study database"):
        open_db(tmp_path / "missing.db")
    with pytest.raises(UserError, match="cannot open"):
        open_db("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(UserError):
        open_db("")


def duplicate_rating_is_rejected(db) -> None:
    rater = assign.find_rater(db, next(iter(db.tokens.raters.values())))
    screen = assign.current_screen(db, rater)
    assert assign.submit(db, rater, screen.assignment_id, "A", "B")
    with db.read() as s:
        row = s.scalars(select(Rating)).first()
        values = {c.name: getattr(row, c.name) for c in Rating.__table__.columns if c.name != "id"}
    with pytest.raises(exc.IntegrityError):
        db.write(lambda s: s.execute(sa.insert(Rating).values(**values)))
    with pytest.raises(exc.IntegrityError):
        db.write(lambda s: s.execute(sa.insert(Rating).values(**{**values, "question": "other"})))
    with pytest.raises(exc.IntegrityError):
        db.write(lambda s: s.execute(sa.update(Rating).values(choice="left")))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2


def test_constraints_reject_duplicates_and_bad_values_sqlite(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=2, n_images=2)
    db.tokens = made.tokens
    duplicate_rating_is_rejected(db)


@pytest.mark.postgres
def test_constraints_reject_duplicates_and_bad_values_postgres(tmp_path: Path, pg_url: str):
    db, made = make_study(tmp_path, db_url=pg_url, n_prompts=2, n_images=2)
    db.tokens = made.tokens
    duplicate_rating_is_rejected(db)
    screen = assign.current_screen(db, assign.find_rater(db, made.tokens.raters["rater-002"]))
    assert screen is not None and len(screen.set_a) == 2


WRITER = textwrap.dedent("""
    import sys
    from raters_ui import assign
    from raters_ui.db import open_db
    db = open_db(sys.argv[1])
    rater = assign.find_rater(db, sys.argv[2])
    while (screen := assign.current_screen(db, rater)) is not None:
        assign.submit(db, rater, screen.assignment_id, "A", "B")
        print(screen.assignment_id, flush=True)  # acknowledged: committed before this line
""")


def test_a_killed_writer_loses_nothing_it_acknowledged(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=400, n_images=1, raters=1, ratings_per_item=1)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db.url, made.tokens.raters["rater-001"]],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    acked = [int(proc.stdout.readline()) for _ in range(30)]
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, possibly inside a transaction
    proc.wait()
    acked += [int(line) for line in proc.stdout.read().split()]
    db.dispose()
    fresh = open_db(tmp_path / "study.db")
    with fresh.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        stored = conn.execute(text("SELECT assignment_id, COUNT(*) FROM ratings "
                                   "GROUP BY assignment_id")).all()
    counts = dict(stored)
    assert all(counts.get(a) == 2 for a in acked)  # every acknowledged submission, both answers
    assert set(counts.values()) == {2}  # and never half a submission
    assert len(acked) >= 30 and len(counts) <= len(acked) + 1
