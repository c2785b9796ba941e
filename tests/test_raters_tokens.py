"""Rater links are never lost: tokens reach the tokens file before the study commits, `raters`
prints only this database's current links, and `study rotate-tokens` reissues a lost link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import exc, func, select

from harness.errors import UserError
from harness.formats.study_pairs import read_pairs
from raters_ui import assign
from raters_ui.db import Rating, Study, open_db
from raters_ui.studies import StudySpec, create_study, rotate_rater_tokens
from raters_ui.synthetic import make_pairs
from raters_ui.tokens import TokenSink, current_links, read_tokens_file
from tests.helpers.cli import exit_code


def printed_tokens(out: str) -> list[str]:
    return re.findall(r"\?(?:token|admin)=([A-Za-z0-9_-]+)", out)


def fail_at_commit(db, monkeypatch) -> None:
    """Make the next write transaction run to its end and then fail, as a commit can."""
    original = db.write

    def write(fn, **kwargs):
        def txn(session):
            fn(session)
            raise exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

        return original(txn, **kwargs)

    monkeypatch.setattr(db, "write", write)


def test_tokens_are_on_disk_before_the_commit_and_gone_if_it_fails(tmp_path: Path, monkeypatch):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=2, n_images=2))
    db = open_db(tmp_path / "s.db", create=True)
    path = tmp_path / "tokens.csv"
    seen = []

    class Watching(TokenSink):
        def write(self, tokens):
            super().write(tokens)
            with db.read() as s:  # the study is not committed yet, the tokens are on disk
                seen.append((s.scalar(select(func.count()).select_from(Study)), path.read_text()))

    made = create_study(db, pairs, StudySpec(name="a", raters=2), tmp_path / "st", sink=Watching(path))
    assert seen[0][0] == 0 and made.tokens.raters["rater-002"] in seen[0][1]
    kept = path.read_bytes()

    fail_at_commit(db, monkeypatch)
    sink = TokenSink(path)
    with pytest.raises(exc.OperationalError):
        create_study(db, pairs, StudySpec(name="b", raters=2), tmp_path / "st", sink=sink)
    sink.undo()
    assert path.read_bytes() == kept  # the appended rows are gone again
    new = TokenSink(tmp_path / "new.csv")
    with pytest.raises(exc.OperationalError):
        create_study(db, pairs, StudySpec(name="c", raters=1), tmp_path / "st", sink=new)
    new.undo()
    assert not (tmp_path / "new.csv").exists()
    monkeypatch.undo()
    with db.read() as s:
        assert s.scalars(select(Study.name)).all() == ["a"]


def test_raters_prints_only_the_current_links_of_this_database(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    shared = tmp_path / "shared-tokens.csv"
    # The same study name in two databases that share one tokens file ...
    for db in ("one.db", "two.db"):
        assert (
            exit_code(
                [
                    "study",
                    "create",
                    "demo",
                    f"pairs={pairs}",
                    f"db={tmp_path / db}",
                    "raters=2",
                    f"tokens_file={shared}",
                ]
            )
            == 0
        )
    two = printed_tokens(capsys.readouterr().out)[-3:]
    # ... and a study deleted and created again under its name.
    assert exit_code(["study", "create", "again", f"pairs={pairs}", "raters=1"]) == 0
    (tmp_path / "studies" / "again" / "study.db").unlink()
    capsys.readouterr()
    assert exit_code(["study", "create", "again", f"pairs={pairs}", "raters=1"]) == 0
    again = printed_tokens(capsys.readouterr().out)
    assert (
        len(read_tokens_file(shared, "demo")) == 6
        and len(read_tokens_file(tmp_path / "studies" / "again" / "tokens.csv")) == 4
    )

    assert exit_code(["raters", "demo", f"db={tmp_path / 'two.db'}", f"tokens_file={shared}", "dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert sorted(printed_tokens(out)) == sorted(two)  # not one.db's links, each once
    assert exit_code(["raters", "again", "dry_run=true"]) == 0
    assert sorted(printed_tokens(capsys.readouterr().out)) == sorted(again)


def test_rotate_tokens_issues_new_links_and_keeps_the_ratings(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=3, n_images=2)
    assert exit_code(["study", "create", "demo", f"pairs={pairs}", "raters=2", "ratings_per_item=1"]) == 0
    folder = tmp_path / "studies" / "demo"
    db = open_db(folder / "study.db")
    old = {r["label"]: r["token"] for r in read_tokens_file(folder / "tokens.csv", "demo") if r["role"] == "rater"}
    rater = assign.find_rater(db, old["rater-001"])
    for _ in range(2):
        screen = assign.current_screen(db, rater)
        assert assign.submit(db, rater, screen.assignment_id, "A", "B")
    open_item = assign.current_screen(db, rater).assignment_id
    capsys.readouterr()

    assert exit_code(["study", "rotate-tokens", "demo", "rater=rater-001"]) == 0
    new = printed_tokens(capsys.readouterr().out)
    assert len(new) == 1 and new[0] != old["rater-001"]
    assert assign.find_rater(db, old["rater-001"]) is None  # the lost link no longer works
    again = assign.find_rater(db, new[0])
    assert again.id == rater.id and assign.progress(db, again)[0] == 2
    assert assign.current_screen(db, again).assignment_id == open_item  # resumes where they were
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 4
    assert assign.find_rater(db, old["rater-002"]).label == "rater-002"  # others untouched

    assert exit_code(["raters", "demo", "dry_run=true"]) == 0
    shown = printed_tokens(capsys.readouterr().out)
    assert new[0] in shown and old["rater-001"] not in shown and len(shown) == 3
    assert exit_code(["study", "rotate-tokens", "demo", "rater=all"]) == 0
    assert len(printed_tokens(capsys.readouterr().out)) == 2
    with pytest.raises(UserError, match="no rater 'rater-009'"):
        rotate_rater_tokens(db, "demo", ["rater-009"])


def test_raters_names_the_raters_whose_link_is_missing(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    assert exit_code(["study", "create", "demo", f"pairs={pairs}", "raters=2"]) == 0
    tokens = tmp_path / "studies" / "demo" / "tokens.csv"
    lines = tokens.read_text().splitlines()
    tokens.write_text("\n".join(line for line in lines if "rater-002" not in line) + "\n")
    capsys.readouterr()
    assert exit_code(["raters", "demo", "dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert "1 rater(s) without a link" in out and "rater-002" in out and "rotate-tokens demo" in out
    db = open_db(tmp_path / "studies" / "demo" / "study.db")
    assert [r["label"] for r in current_links(db, read_tokens_file(tokens), "demo")] == ["rater-001", "admin"]
