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
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
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
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, db.url, made.tokens.raters["rater-001"]],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked = [int(proc.stdout.readline()) for _ in range(30)]
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, possibly inside a transaction
    proc.wait()
    acked += [int(line) for line in proc.stdout.read().split()]
    db.dispose()
    fresh = open_db(tmp_path / "study.db")
    with fresh.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        stored = conn.execute(text("SELECT assignment_id, COUNT(*) FROM ratings GROUP BY assignment_id")).all()
    counts = dict(stored)
    assert all(counts.get(a) == 2 for a in acked)  # every acknowledged submission, both answers
    assert set(counts.values()) == {2}  # and never half a submission
    assert len(acked) >= 30 and len(counts) <= len(acked) + 1


def database_at_0001(url: str) -> None:
    """A study under way in the schema before instructions, practice and timings (revision 0001):
    one item rated by rater-001 (12.5 s), rater-002 not started yet."""
    from datetime import UTC, datetime

    from alembic import command
    from alembic.config import Config

    from raters_ui.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = sa.create_engine(url)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        meta = sa.MetaData()
        meta.reflect(conn)
        t = meta.tables
        assert "image_views" not in t and "shown_at" not in t["assignments"].c
        conn.execute(
            t["studies"]
            .insert()
            .values(
                id=1,
                name="old",
                suite="drawbench",
                created_at=now,
                ratings_per_item=2,
                items_per_rater=None,
                control_every=0,
                control_threshold=0.8,
                admin_token_hash="a" * 64,
                store_dir="store",
                seed=0,
            )
        )
        conn.execute(
            t["systems"].insert(),
            [
                {"id": k, "study_id": 1, "label": f"sys{k}", "run_id": f"run-{k}", "source": "", "position": k - 1}
                for k in (1, 2)
            ],
        )
        conn.execute(
            t["items"]
            .insert()
            .values(
                id=1,
                study_id=1,
                key="main|p1|0|1",
                kind="main",
                prompt_id="p1",
                prompt="A red car.",
                category="Colors",
                system_1_id=1,
                system_2_id=2,
            )
        )
        conn.execute(
            t["item_images"].insert(),
            [{"item_id": 1, "slot": s, "position": 0, "file": f"{s:032x}.png"} for s in (1, 2)],
        )
        conn.execute(
            t["raters"].insert(),
            [
                {"id": k, "study_id": 1, "label": f"rater-00{k}", "token_hash": f"{k}" * 64, "created_at": now}
                for k in (1, 2)
            ],
        )
        conn.execute(
            t["assignments"]
            .insert()
            .values(
                id=1,
                study_id=1,
                rater_id=1,
                item_id=1,
                seq=1,
                a_slot=2,
                is_control=False,
                assigned_at=now,
                completed_at=now,
                expected_total=1,
            )
        )
        conn.execute(
            t["ratings"].insert(),
            [
                {
                    "study_id": 1,
                    "assignment_id": 1,
                    "rater_id": 1,
                    "item_id": 1,
                    "question": q,
                    "choice": c,
                    "seconds": 12.5,
                    "created_at": now,
                }
                for q, c in (("fidelity", "A"), ("alignment", "indifferent"))
            ],
        )
    engine.dispose()


def an_old_database_opens_and_keeps_working(url: str) -> None:
    from raters_ui import analysis, onboarding
    from raters_ui.admin import study_overview
    from raters_ui.db import Rater
    from raters_ui.ratings import load_ratings

    database_at_0001(url)
    db = open_db(url)  # upgrades to the newest revision
    assert schema_diff(db) == []
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    ratings = load_ratings(db, "old")
    assert list(ratings["choice"]) == ["A", "indifferent"] and (ratings["seconds"] == 12.5).all()
    assert ratings["client_seconds"].isna().all() and (ratings["image_opens"] == 0).all()
    assert list(ratings["preferred_system"].fillna("-")) == ["sys2", "-"]  # a_slot 2: A was sys2
    result = analysis.analyze(ratings, n_boot=20, ratings_per_item=2, names=study_overview(db, "old")["names"])
    assert result.flagged == [] and len(result.quality) == 1
    assert study_overview(db, "old")["practice_items"] == 0
    with db.read() as s:
        started = dict(s.execute(select(Rater.label, Rater.started_at)).all())
    assert started["rater-001"] is not None and started["rater-002"] is None  # no instructions page mid-study
    first, second = (assign.RaterRef(k, 1, f"rater-00{k}") for k in (1, 2))
    assert onboarding.rater_status(db, first).started and not onboarding.rater_status(db, second).started
    onboarding.start(db, second, True)
    screen = assign.current_screen(db, second)
    assert screen is not None and assign.submit(db, second, screen.assignment_id, "B", "B")
    assert len(load_ratings(db, "old")) == 4
    db.dispose()


def test_a_database_of_the_previous_schema_is_upgraded_sqlite(tmp_path: Path):
    an_old_database_opens_and_keeps_working(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_a_database_of_the_previous_schema_is_upgraded_postgres(pg_url: str):
    an_old_database_opens_and_keeps_working(pg_url)
