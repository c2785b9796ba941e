"""The Streamlit rater app under AppTest: tokens, rating, resume, double submit, finishing, admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from harness.formats.study_pairs import read_pairs
from raters_ui import ENV_DB, ENV_STUDY, assign
from raters_ui.db import Assignment, Rating, open_db
from raters_ui.studies import StudySpec, create_study
from raters_ui.synthetic import make_pairs, make_study, side_of

APP = Path(__file__).resolve().parents[1] / "raters_ui" / "app.py"
SECRET_SYSTEMS = ("imagen-secret-xl", "dalle-rival")


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db, made = make_study(tmp_path, systems=SECRET_SYSTEMS, n_prompts=3, raters=2, ratings_per_item=1)
    monkeypatch.setenv(ENV_DB, db.url)
    monkeypatch.delenv(ENV_STUDY, raising=False)
    return db, made


def app(query: dict[str, str] | None = None, *, start: bool = True) -> AppTest:
    """The app at ``query``; a rater who is shown the instructions page clicks Start (``start``)."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query or {})
    at.run()
    if start and "token" in (query or {}) and any(b.key == "start" for b in at.button):
        at.button(key="start").click().run()
    return at


def page_dump(at: AppTest) -> str:
    """Every protobuf the script sent to the browser, as text."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def open_assignment(at: AppTest) -> int:
    return int(at.radio[0].key.split("-")[1])


def answer(at: AppTest, fidelity: str | None, alignment: str | None) -> AppTest:
    if fidelity:
        at.radio(key=f"fidelity-{open_assignment(at)}").set_value(fidelity)
    if alignment:
        at.radio(key=f"alignment-{open_assignment(at)}").set_value(alignment)
    return at.button[0].click().run()


def n_ratings(db) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Rating)))


def test_token_entry_rejects_a_bad_code_then_accepts_a_good_one(study):
    _, made = study
    at = app()
    assert at.title[0].value == "Image preference study" and len(at.text_input) == 1
    assert not at.image and not at.radio
    at.text_input[0].input("not-a-token")
    at.button[0].click().run()
    assert "not valid" in at.error[0].value and "token" not in at.query_params
    at.text_input[0].input(made.tokens.raters["rater-001"])
    at.button[0].click().run()
    assert at.query_params["token"] == made.tokens.raters["rater-001"]
    assert not at.image and at.button(key="start").label == "Start"  # the instructions come first
    at.button(key="start").click().run()
    assert len(at.image) == 16 and len(at.radio) == 2 and not at.exception


def test_rating_an_item_stores_both_answers_mapped_to_systems(study):
    db, made = study
    at = app({"token": made.tokens.raters["rater-001"]})
    assert "0 of 3" in at.get("progress")[0].proto.text
    aid = open_assignment(at)
    side = side_of(db, aid, "dalle-rival")
    at = answer(at, side, "indifferent")
    assert not at.exception and "Saved" in at.success[0].value
    assert "1 of 3" in at.get("progress")[0].proto.text and open_assignment(at) != aid
    with db.read() as s:
        rows = dict(s.execute(select(Rating.question, Rating.choice).where(Rating.assignment_id == aid)).all())
        seconds = s.scalar(select(Rating.seconds).where(Rating.assignment_id == aid))
    assert rows == {"fidelity": side, "alignment": "indifferent"} and seconds >= 0


def test_both_questions_must_be_answered(study):
    db, made = study
    at = app({"token": made.tokens.raters["rater-001"]})
    aid = open_assignment(at)
    at = answer(at, "A", None)
    assert "answer both questions" in at.warning[0].value
    assert n_ratings(db) == 0 and open_assignment(at) == aid
    assert at.radio(key=f"fidelity-{aid}").value == "A"  # the given answer is kept


def test_a_fresh_session_resumes_where_the_rater_was(study):
    _, made = study
    token = made.tokens.raters["rater-001"]
    first = app({"token": token})
    aid, prompt = open_assignment(first), first.text[0].value
    images = [i.proto.imgs[0].url for i in first.image]
    other_device = app({"token": token})
    assert open_assignment(other_device) == aid and other_device.text[0].value == prompt
    assert [i.proto.imgs[0].url for i in other_device.image] == images  # same sides, same order
    answer(first, "A", "B")
    later = app({"token": token})
    assert open_assignment(later) != aid and "1 of 3" in later.get("progress")[0].proto.text


def test_double_submit_from_two_tabs_records_one_rating(study):
    db, made = study
    token = made.tokens.raters["rater-001"]
    tab1, tab2 = app({"token": token}), app({"token": token})
    aid = open_assignment(tab1)
    assert open_assignment(tab2) == aid
    tab1 = answer(tab1, "A", "A")
    tab2 = answer(tab2, "B", "B")
    assert "already recorded" in tab2.info[0].value
    with db.read() as s:
        rows = s.execute(select(Rating.question, Rating.choice).where(Rating.assignment_id == aid)).all()
    assert sorted(rows) == [("alignment", "A"), ("fidelity", "A")] and n_ratings(db) == 2
    assert open_assignment(tab2) != aid  # the stale tab moved on


@pytest.mark.parametrize("which", ["unknown", "admin-as-rater", "other-study"])
def test_bad_or_unknown_token_shows_nothing_of_the_study(study, tmp_path, monkeypatch, which):
    db, made = study
    token = {"unknown": "x" * 22, "admin-as-rater": made.tokens.admin}.get(which)
    if which == "other-study":
        other = create_study(
            db, read_pairs(make_pairs(tmp_path / "o", n_prompts=1)), StudySpec(name="other"), tmp_path / "ostore"
        )
        token = other.tokens.raters["rater-001"]
        monkeypatch.setenv(ENV_STUDY, "demo")  # the app serves study "demo" only
    at = app({"token": token})
    assert "not valid" in at.error[0].value
    assert not at.image and not at.radio and not at.get("progress")
    assert n_ratings(db) == 0


def test_finishing_the_study(study):
    _, made = study
    at = app({"token": made.tokens.raters["rater-002"]})
    for _ in range(3):
        at = answer(at, "A", "B")
    assert "All done" in at.success[-1].value and "3 items" in at.success[-1].value
    assert not at.radio and not at.image
    other = app({"token": made.tokens.raters["rater-001"]})  # every item has its one rating now
    assert "already has the ratings it needs" in other.info[0].value


def frame_with(at: AppTest, column: str):
    """The one dataframe of the page that has ``column``."""
    (found,) = [d.value for d in at.dataframe if column in d.value.columns]
    return found


def test_admin_page_needs_the_admin_token(study):
    _, made = study
    rater_token = made.tokens.raters["rater-001"]
    answer(app({"token": rater_token}), "A", "B")
    for bad in (rater_token, "nope", ""):
        at = app({"admin": bad})
        assert "not valid" in at.error[0].value and not at.dataframe and not at.title
    at = app({"admin": made.tokens.admin})
    assert not at.exception and at.title[0].value == "Study administration: demo"
    by_rater = frame_with(at, "items_done").set_index("rater")
    assert by_rater.loc["rater-001", "items_done"] == 1 and by_rater.loc["rater-002", "items_done"] == 0
    assert not by_rater["flagged"].any() and "No rater flagged" in at.success[0].value
    by_cat = frame_with(at, "ratings_wanted").set_index("category")
    assert by_cat.loc["all", "items"] == 3 and by_cat.loc["all", "ratings_done"] == 1
    assert list(frame_with(at, "alpha_nominal")["question"]) == ["fidelity", "alignment"]
    bars = frame_with(at, "outcome")  # the numbers behind the chart: both questions, three outcomes
    assert set(bars["question"]) == {"quality", "caption"} and len(bars) == 2 * 2 * 3  # category + overall
    assert set(bars["outcome"]) == {
        "prefers drawbench-run-imagen-secret-xl",
        "indifferent",
        "prefers drawbench-run-dalle-rival",
    }  # named by run id
    (chart,) = at.get("vega_lite_chart")
    assert "drawbench-run-dalle-rival" in str(chart.proto) and "#b45309" in str(chart.proto)
    assert [b.label for b in at.get("download_button")] == [
        "Download ratings (CSV)",
        "Download image-view events (CSV)",
    ]


def test_rating_page_source_has_no_system_identity(study, tmp_path):
    _, made = study
    at = app({"token": made.tokens.raters["rater-001"]})
    dump = page_dump(at)
    assert "Set A, image 1" in dump and "/media/" in dump  # the dump does hold the page
    stored = [f.name for f in made.store_dir.iterdir()] + [f.stem for f in made.store_dir.iterdir()]
    forbidden = [*SECRET_SYSTEMS, "drawbench-run", str(tmp_path), "store", "demo", *stored]
    for word in forbidden:
        assert word not in dump, word


def test_prompt_is_shown_as_plain_text(tmp_path: Path, monkeypatch):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=8))
    db = open_db(tmp_path / "s.db", create=True)
    spec = StudySpec(name="md", prompt_ids=["drawbench-0008"], raters=1)
    made = create_study(db, pairs, spec, tmp_path / "st")
    monkeypatch.setenv(ENV_DB, db.url)
    at = app({"token": made.tokens.raters["rater-001"]})
    prompt = "The word *bold* written in chalk <b>not html</b>."
    assert [t.value for t in at.text] == [prompt, prompt]  # caption and the alignment question
    assert all("<b>" not in m.value and "*bold*" not in m.value for m in at.markdown)
    assert all(prompt not in h.value for h in at.get("html"))


def test_app_without_a_database_says_so(monkeypatch):
    monkeypatch.delenv(ENV_DB, raising=False)
    at = app()
    assert "without a study database" in at.error[0].value


def test_submission_is_for_the_item_drawn_even_if_another_tab_moved_on(study):
    db, made = study
    token = made.tokens.raters["rater-001"]
    tab1, tab2 = app({"token": token}), app({"token": token})
    first = open_assignment(tab1)
    tab1 = answer(tab1, "A", "A")  # tab1 is now on the second item; tab2 still shows the first
    second = open_assignment(tab1)
    answer(tab2, "B", "B")
    with db.read() as s:
        on_second = s.scalar(select(func.count()).select_from(Rating).where(Rating.assignment_id == second))
        open_items = s.scalar(select(func.count()).select_from(Assignment).where(Assignment.completed_at.is_(None)))
    assert on_second == 0 and open_items == 1  # tab2's late answers did not land on the second item
    assert assign.current_screen(db, assign.find_rater(db, token)).assignment_id == second
    assert first != second


@pytest.fixture
def onboarding_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db, made = make_study(
        tmp_path,
        systems=SECRET_SYSTEMS,
        n_prompts=3,
        raters=2,
        ratings_per_item=1,
        practice=2,
        consent="I agree to take part.",
        instructions="Welcome!\n\nRate **carefully**.",
    )
    monkeypatch.setenv(ENV_DB, db.url)
    monkeypatch.delenv(ENV_STUDY, raising=False)
    return db, made


def practice_answer(at: AppTest, k: int, fidelity: str, alignment: str) -> AppTest:
    at.radio(key=f"fidelity-p{k}").set_value(fidelity)
    at.radio(key=f"alignment-p{k}").set_value(alignment)
    return at.button(key=f"submit-p{k}").click().run()


def test_instructions_consent_and_practice_come_first_and_count_for_nothing(onboarding_study):
    from raters_ui import onboarding
    from raters_ui.db import Rater

    db, made = onboarding_study
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    at = app({"token": made.tokens.raters["rater-001"]}, start=False)
    assert any("Rate **carefully**." in m.value for m in at.markdown) and not at.image and not at.radio
    assert at.checkbox(key="consent").label == "I agree to take part."
    assert "2 practice items" in " ".join(m.value for m in at.markdown)
    at.button(key="start").click().run()
    assert "tick the consent box" in at.warning[0].value and not at.image  # no consent, no start
    at.checkbox(key="consent").check()
    at.button(key="start").click().run()
    screens = [onboarding.practice_screen(db, rater, k) for k in (0, 1)]
    for k, screen in enumerate(screens):
        assert f"Practice item {k + 1} of 2" in at.info[-1].value and len(at.image) == 16
        assert at.text[0].value == screen.prompt and not at.get("progress")  # not in the item count
        good = screen.expected["fidelity"] or screen.expected["alignment"]
        at = practice_answer(at, k, good, good)
        assert f"Practice {k + 1} of 2 (not counted)" in at.info[0].value and "Your answer matches." in at.info[0].value
    assert [s.mode for s in screens] == ["degrade", "mismatch"]
    assert screens[0].expected["alignment"] is None and screens[1].expected["fidelity"] is None
    assert "0 of 3" in at.get("progress")[0].proto.text  # now the items, still none counted
    with db.read() as s:
        row = s.execute(
            select(Rater.practice_done, Rater.consented_at, Rater.started_at).where(Rater.id == rater.id)
        ).one()
    assert row[0] == 2 and row[1] is not None and row[2] is not None and n_ratings(db) == 0
    again = app({"token": made.tokens.raters["rater-001"]})  # a new session goes straight to the items
    assert again.get("progress") and not at.checkbox


def test_without_owner_text_the_paper_wording_is_shown(study):
    from raters_ui.onboarding import DEFAULT_INSTRUCTIONS

    _, made = study
    at = app({"token": made.tokens.raters["rater-001"]}, start=False)
    text = " ".join(m.value for m in at.markdown)
    assert DEFAULT_INSTRUCTIONS.strip() in text and not at.checkbox  # no consent line asked
    assert "Which set of images is of higher quality?" in DEFAULT_INSTRUCTIONS
    assert "Which set of images better represents the text caption?" in DEFAULT_INSTRUCTIONS
    at.button(key="start").click().run()
    assert len(at.image) == 16 and at.expander[-1].label == "Instructions"
    assert any("Keyboard: A, I or B" in c.value for c in at.caption)  # the shortcuts are on screen
