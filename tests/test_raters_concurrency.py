"""Concurrent raters against SQLite and PostgreSQL: every rating stored exactly once.

Writers are separate processes (forked), started together behind a barrier, each going through
the app's own path for every item: ``current_screen`` (resume the open item) then ``submit``,
and every tenth item submitted a second time with different answers, which must be a no-op.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from raters_ui import assign
from raters_ui.db import Assignment, Rating, open_db
from raters_ui.synthetic import make_study
from tests.test_raters_db import pg_url  # noqa: F401  (fixture: a fresh PostgreSQL schema)

# 20 writers at once on 2 cores is the contention that matters (a lost update or a duplicate shows within the
# first contended writes); 150 items each is 3,000 submissions and 300 double submits per backend, a third of
# the old 500 and its minutes. IMAGEN_BENCH_STRESS_ITEMS=500 runs the full-size check.
WRITERS, ITEMS = 20, int(os.environ.get("IMAGEN_BENCH_STRESS_ITEMS", "150"))


def _writer(url: str, token: str, n: int | None, barrier, queue) -> None:
    try:
        db = open_db(url)
        rater = assign.find_rater(db, token)
        barrier.wait(timeout=120)
        saved, refused, seen = 0, 0, []
        while n is None or len(seen) < n:
            screen = assign.current_screen(db, rater)
            if screen is None:
                break
            seen.append(screen.assignment_id)
            saved += assign.submit(db, rater, screen.assignment_id, "A", "indifferent")
            if len(seen) % 10 == 1:  # a double submit, with other answers
                refused += not assign.submit(db, rater, screen.assignment_id, "B", "B")
        queue.put(("ok", rater.id, saved, refused, seen))
    except BaseException:  # noqa: BLE001  (report, so the parent fails with the child's traceback)
        queue.put(("error", traceback.format_exc()))


def run_writers(url: str, tokens: list[str], n: int | None) -> list[tuple]:
    ctx = mp.get_context("fork")  # no re-import per writer: 20 interpreters would cost 20 s of CPU
    barrier, queue = ctx.Barrier(len(tokens)), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, t, n, barrier, queue), daemon=True) for t in tokens]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    errors = [r[1] for r in results if r[0] == "error"]
    assert not errors, errors[0]
    return results


def exactly_once(tmp_path: Path, db_url: str | None) -> None:
    db, made = make_study(
        tmp_path, db_url=db_url, n_prompts=ITEMS, n_images=1, raters=WRITERS, ratings_per_item=WRITERS
    )
    tokens = list(made.tokens.raters.values())
    for token in tokens:  # each writer's 500 items, in its own randomised order
        assert assign.assign_batch(db, assign.find_rater(db, token), ITEMS) == ITEMS
    url = db.url
    db.dispose()  # no pooled connection may cross the fork
    start = time.monotonic()
    results = run_writers(url, tokens, ITEMS)
    elapsed = time.monotonic() - start
    print(f"{len(tokens)} writers x {ITEMS} submissions ({2 * ITEMS} ratings each) on {db.dialect}: {elapsed:.1f} s")
    assert [r[2] for r in results] == [ITEMS] * WRITERS  # every first submission stored
    assert [r[3] for r in results] == [ITEMS // 10] * WRITERS  # every second one refused
    db = open_db(url)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Rating))
        distinct = s.scalar(
            select(func.count()).select_from(
                select(Rating.rater_id, Rating.item_id, Rating.question).distinct().subquery()
            )
        )
        count = select(func.count()).select_from(Rating)
        per_rater = set(s.execute(count.group_by(Rating.rater_id)).scalars())
        per_item = set(s.execute(count.group_by(Rating.item_id)).scalars())
        overwritten = s.scalar(select(func.count()).select_from(Rating).where(Rating.choice == "B"))
        still_open = s.scalar(select(func.count()).select_from(Assignment).where(Assignment.completed_at.is_(None)))
    assert total == distinct == WRITERS * ITEMS * 2
    assert per_rater == {ITEMS * 2} and per_item == {WRITERS * 2}
    assert overwritten == 0 and still_open == 0


@pytest.mark.slow
def test_sqlite_20_writers_submitting_together(tmp_path: Path):
    exactly_once(tmp_path, None)
    with open_db(tmp_path / "study.db").engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_20_writers_submitting_together(tmp_path: Path, pg_url: str):  # noqa: F811
    exactly_once(tmp_path, pg_url)


def dynamic_assignment(tmp_path: Path, db_url: str | None) -> None:
    """Raters arriving together never push an item past its wanted ratings, nor see it twice."""
    db, made = make_study(tmp_path, db_url=db_url, n_prompts=30, n_images=1, raters=8, ratings_per_item=3)
    url = db.url
    db.dispose()
    results = run_writers(url, list(made.tokens.raters.values()), None)
    assert sum(r[2] for r in results) == 30 * 3
    db = open_db(url)
    with db.read() as s:
        per_item = s.execute(text("SELECT item_id, COUNT(*) FROM assignments GROUP BY item_id")).all()
        dup = s.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT rater_id, item_id FROM assignments "
                "GROUP BY rater_id, item_id HAVING COUNT(*) > 1) d"
            )
        ).scalar()
    assert sorted(n for _, n in per_item) == [3] * 30 and dup == 0


def test_dynamic_assignment_under_concurrency_sqlite(tmp_path: Path):
    dynamic_assignment(tmp_path, None)


@pytest.mark.postgres
def test_dynamic_assignment_under_concurrency_postgres(tmp_path: Path, pg_url: str):  # noqa: F811
    dynamic_assignment(tmp_path, pg_url)
