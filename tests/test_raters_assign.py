"""Who rates what: ratings per item, controls interleaved, randomised placement, resume, submit."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from harness.errors import UserError
from raters_ui import assign
from raters_ui.controls import ControlSpec
from raters_ui.db import Assignment, ItemImage, Rating, utcnow
from raters_ui.synthetic import make_study, side_of


def raters(db, made) -> list[assign.RaterRef]:
    return [assign.find_rater(db, t) for t in made.tokens.raters.values()]


def rate_all(db, rater) -> list[int]:
    seen = []
    while (screen := assign.current_screen(db, rater)) is not None:
        seen.append(screen.assignment_id)
        assert assign.submit(db, rater, screen.assignment_id, "A", "indifferent")
    return seen


def test_each_item_gets_exactly_the_wanted_ratings(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=6, raters=3, ratings_per_item=2, n_images=2)
    done = [len(rate_all(db, r)) for r in raters(db, made)]
    assert sum(done) == 12 and max(done) == 6  # 6 items x 2 ratings, no rater sees an item twice
    with db.read() as s:
        per_item = s.execute(select(Assignment.item_id, func.count()).group_by(Assignment.item_id)).all()
        per_rater_item = s.execute(
            select(Assignment.rater_id, Assignment.item_id, func.count()).group_by(
                Assignment.rater_id, Assignment.item_id
            )
        ).all()
        n_ratings = s.scalar(select(func.count()).select_from(Rating))
    assert sorted(n for _, n in per_item) == [2] * 6
    assert all(n == 1 for *_, n in per_rater_item)
    assert n_ratings == 24  # two questions per rating


def test_controls_are_interleaved_every_n_items(tmp_path: Path):
    db, made = make_study(
        tmp_path, n_prompts=9, raters=1, ratings_per_item=1, n_images=2, controls=ControlSpec(count=3, every=3)
    )
    rater = raters(db, made)[0]
    rate_all(db, rater)
    with db.read() as s:
        kinds = s.scalars(
            select(Assignment.is_control).where(Assignment.rater_id == rater.id).order_by(Assignment.seq)
        ).all()
    pattern = "".join("c" if k else "m" for k in kinds)
    assert pattern == "mmmcmmmcmmmc"


def test_placement_is_randomised_recorded_and_shown(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=40, raters=5, ratings_per_item=5, n_images=2)
    for r in raters(db, made):
        screen = assign.current_screen(db, r)
        with db.read() as s:
            a = s.get(Assignment, screen.assignment_id)
            files = {
                slot: [
                    f
                    for (f,) in s.execute(
                        select(ItemImage.file)
                        .where(ItemImage.item_id == a.item_id, ItemImage.slot == slot)
                        .order_by(ItemImage.position)
                    )
                ]
                for slot in (1, 2)
            }
        assert screen.set_a == files[a.a_slot] and screen.set_b == files[3 - a.a_slot]
        rate_all(db, r)
    with db.read() as s:
        slots = Counter(s.scalars(select(Assignment.a_slot)).all())
    assert sum(slots.values()) == 200 and 70 <= slots[1] <= 130


def test_resume_returns_the_open_item_until_it_is_submitted(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=3, raters=1, n_images=2)
    rater = raters(db, made)[0]
    first = assign.current_screen(db, rater)
    again = assign.current_screen(db, rater)
    assert again == first and first.done == 0 and first.total == 3
    assert assign.submit(db, rater, first.assignment_id, "B", "A", seconds=3.5)
    nxt = assign.current_screen(db, rater)
    assert nxt.assignment_id != first.assignment_id and nxt.done == 1


def test_double_submit_is_a_no_op(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=2, raters=1, n_images=2)
    rater = raters(db, made)[0]
    screen = assign.current_screen(db, rater)
    assert assign.submit(db, rater, screen.assignment_id, "A", "A") is True
    assert assign.submit(db, rater, screen.assignment_id, "B", "B") is False
    with db.read() as s:
        rows = s.execute(select(Rating.question, Rating.choice)).all()
    assert sorted(rows) == [("alignment", "A"), ("fidelity", "A")]  # the first answer stands


def test_submit_refuses_other_raters_items_and_bad_answers(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=2, raters=2, n_images=2)
    r1, r2 = raters(db, made)
    screen = assign.current_screen(db, r1)
    with pytest.raises(UserError, match="not assigned to you"):
        assign.submit(db, r2, screen.assignment_id, "A", "A")
    with pytest.raises(UserError, match="not assigned to you"):
        assign.submit(db, r2, 10_000, "A", "A")
    with pytest.raises(UserError, match="must be one of"):
        assign.submit(db, r1, screen.assignment_id, "left", "A")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 0


def test_abandoned_open_item_is_given_to_someone_else_after_the_ttl(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=1, raters=2, ratings_per_item=1, n_images=2)
    r1, r2 = raters(db, made)
    held = assign.current_screen(db, r1)
    assert assign.current_screen(db, r2) is None  # the only slot is held by r1's open item
    # A Python timestamp (SQL date arithmetic on SQLite would store a number, not a time).
    db.write(
        lambda s: s.execute(
            update(Assignment).values(assigned_at=utcnow() - assign.ASSIGNMENT_TTL - timedelta(minutes=1))
        )
    )
    taken = assign.current_screen(db, r2)
    assert taken is not None and taken.set_a + taken.set_b
    assert assign.submit(db, r1, held.assignment_id, "A", "A")  # r1 may still finish it


def test_items_per_rater_caps_a_rater(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=6, raters=1, ratings_per_item=1, items_per_rater=4, n_images=2)
    rater = raters(db, made)[0]
    assert len(rate_all(db, rater)) == 4
    assert assign.progress(db, rater) == (4, 4)


def test_batch_assignment_is_served_in_order(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=10, raters=1, n_images=2, controls=ControlSpec(count=2, every=4))
    rater = raters(db, made)[0]
    assert assign.assign_batch(db, rater, 6) == 6
    with db.read() as s:
        ids = s.scalars(select(Assignment.id).order_by(Assignment.seq)).all()
        kinds = s.scalars(select(Assignment.is_control).order_by(Assignment.seq)).all()
    assert kinds == [False] * 4 + [True, False]
    served = rate_all(db, rater)
    assert served[:6] == ids and len(served) == 12  # then the rest, one at a time


def test_oracle_side_follows_the_system(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=4, raters=1, n_images=2)
    rater = raters(db, made)[0]
    screen = assign.current_screen(db, rater)
    s1, s2 = side_of(db, screen.assignment_id, "sys1"), side_of(db, screen.assignment_id, "sys2")
    assert {s1, s2} == {"A", "B"} and side_of(db, screen.assignment_id, "other") is None
