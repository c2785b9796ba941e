"""Study creation, the image store, controls, tokens, export and the `study` command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import func, select

from harness.errors import UserError
from harness.formats.study_pairs import read_pairs
from raters_ui import assign
from raters_ui.controls import ControlSpec, degrade
from raters_ui.db import Item, ItemImage, Rater, Study, System, open_db
from raters_ui.ratings import export_ratings, load_ratings
from raters_ui.studies import (
    StudySpec,
    add_raters,
    create_study,
    read_tokens_file,
    rotate_admin_token,
    write_tokens_file,
)
from raters_ui.synthetic import make_pairs, make_study, side_of
from raters_ui.tokens import current_links
from tests.helpers.cli import exit_code


def count(db, model, *where) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def test_create_makes_one_item_per_prompt_and_system_pair(tmp_path: Path):
    db, made = make_study(tmp_path, systems=("a", "b", "c"), n_prompts=5, raters=4)
    assert made.n_items == 5 * 3 and count(db, Item) == 15 and count(db, Rater) == 4
    with db.read() as s:
        pairs = set(s.execute(select(System.label, Item.system_2_id).join(Item, Item.system_1_id == System.id)).all())
        labels = dict(s.execute(select(System.id, System.label)).all())
    assert {(a, labels[b]) for a, b in pairs} == {("a", "b"), ("a", "c"), ("b", "c")}
    assert count(db, ItemImage) == 15 * 2 * 8


def test_baseline_and_filters_select_items(tmp_path: Path):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=8, systems=("a", "b", "c")))
    db = open_db(tmp_path / "s.db", create=True)
    spec = StudySpec(name="x", baseline="b", categories=["colors", "Text"])
    made = create_study(db, pairs, spec, tmp_path / "st")
    assert made.n_items == 4 * 2  # categories cycle over 4, so 2 + 2 prompts; 2 pairs with b
    spec = StudySpec(name="y", prompt_ids=["drawbench-0001", "drawbench-0003"])
    made = create_study(db, pairs, spec, tmp_path / "st")
    assert made.n_items == 2 * 3
    with pytest.raises(UserError, match="unknown prompt ids"):
        create_study(db, pairs, StudySpec(name="z", prompt_ids=["nope"]), tmp_path / "st")
    with pytest.raises(UserError, match="unknown categories"):
        create_study(db, pairs, StudySpec(name="z", categories=["Nope"]), tmp_path / "st")
    with pytest.raises(UserError, match="baseline"):
        create_study(db, pairs, StudySpec(name="z", baseline="q"), tmp_path / "st")
    with pytest.raises(UserError, match="already exists"):
        create_study(db, pairs, StudySpec(name="x"), tmp_path / "st")


def test_store_has_opaque_names_and_no_metadata(tmp_path: Path):
    db, made = make_study(tmp_path, systems=("imagen-xl", "rival"), n_prompts=2)
    files = sorted(made.store_dir.iterdir())
    assert files and all(len(f.stem) == 32 and f.suffix == ".png" for f in files)
    source = next((tmp_path / "src" / "drawbench-run-imagen-xl").glob("*.png"))
    assert b"imagen-xl" in source.read_bytes()  # the generator's text chunk is there...
    for f in files:
        data = f.read_bytes()
        assert b"imagen-xl" not in data and b"drawbench-run" not in data and b"tEXt" not in data
        assert Image.open(f).info == {}  # ...and nothing of it survives the import
    with db.read() as s:
        assert s.scalar(select(Study.store_dir)) == "store"  # relative to the database folder


def test_max_side_downscales_both_systems(tmp_path: Path):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=1, size=96))
    db = open_db(tmp_path / "s.db", create=True)
    made = create_study(db, pairs, StudySpec(name="x", max_side=48), tmp_path / "store")
    assert {Image.open(f).size for f in made.store_dir.iterdir()} == {(48, 48)}


def test_missing_image_fails_before_anything_is_stored(tmp_path: Path):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=2))
    Path(pairs.items[1].images["sys2"][3]).unlink()
    db = open_db(tmp_path / "s.db", create=True)
    with pytest.raises(UserError, match="missing"):
        create_study(db, pairs, StudySpec(name="x"), tmp_path / "store")
    assert count(db, Study) == 0 and not any((tmp_path / "store").glob("*.png"))


def test_unreadable_image_rolls_back_the_store(tmp_path: Path):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=2))
    Path(pairs.items[1].images["sys2"][3]).write_bytes(b"not a png")
    db = open_db(tmp_path / "s.db", create=True)
    with pytest.raises(UserError, match="cannot read image"):
        create_study(db, pairs, StudySpec(name="x"), tmp_path / "store")
    assert count(db, Study) == 0 and list((tmp_path / "store").glob("*.png")) == []


def test_malformed_pairs_file_is_a_user_error(tmp_path: Path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"format": "imagen-bench.study-pairs", "version": 1, "systems": [], "items": []}))
    with pytest.raises(UserError):
        read_pairs(bad)


def test_controls_degrade_and_mismatch(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=6, controls=ControlSpec(count=4, every=2, mode="both"))
    assert made.n_controls == 4
    with db.read() as s:
        rows = s.execute(
            select(Item.id, Item.control_mode, Item.prompt_id, Item.expected_fidelity, Item.expected_alignment).where(
                Item.kind == "control"
            )
        ).all()
        q = select(ItemImage.item_id, ItemImage.slot, ItemImage.position, ItemImage.file)
        images = {(i, slot, pos): f for i, slot, pos, f in s.execute(q)}
    modes = sorted(r.control_mode for r in rows)
    assert modes == ["degrade", "degrade", "mismatch", "mismatch"]
    for r in rows:
        if r.control_mode == "degrade":
            assert (r.expected_fidelity, r.expected_alignment) == (1, None)
            good = np.asarray(Image.open(made.store_dir / images[(r.id, 1, 0)]), dtype=float)
            bad = np.asarray(Image.open(made.store_dir / images[(r.id, 2, 0)]), dtype=float)
            assert np.abs(bad - good).mean() > 20  # visibly different
        else:
            assert (r.expected_fidelity, r.expected_alignment) == (None, 1)
            assert images[(r.id, 1, 0)] != images[(r.id, 2, 0)]


def test_degrade_removes_detail():
    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((64, 64, 3)) > 0.5).astype(np.uint8) * 255)
    out = np.asarray(degrade(img), dtype=float)
    # Detail = mean absolute difference of horizontal neighbours; noise is added, but the
    # pixelation still leaves far less structure than the original checker noise.
    src = np.asarray(img, dtype=float)
    assert np.abs(np.corrcoef(out.ravel(), src.ravel())[0, 1]) < 0.3


def test_tokens_are_stored_hashed_and_written_privately(tmp_path: Path):
    db, made = make_study(tmp_path, raters=2)
    raw = (tmp_path / "study.db").read_bytes()
    for tok in [made.tokens.admin, *made.tokens.raters.values()]:
        assert tok.encode() not in raw
    path = write_tokens_file(tmp_path / "tokens.csv", made.tokens)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    more = add_raters(db, "demo", 2)
    assert list(more.raters) == ["rater-003", "rater-004"]
    write_tokens_file(path, more)
    new_admin = rotate_admin_token(db, "demo")
    from raters_ui.studies import Tokens

    write_tokens_file(path, Tokens("demo", new_admin, {}))
    rows = current_links(db, read_tokens_file(path, "demo"), "demo")
    labels = [r["label"] for r in rows if r["role"] == "rater"]
    assert labels == ["rater-001", "rater-002", "rater-003", "rater-004"]
    assert [r["token"] for r in rows if r["role"] == "admin"] == [new_admin]  # the old one is gone
    assert assign.find_admin_study(db, made.tokens.admin) is None
    assert assign.find_admin_study(db, new_admin) == "demo"
    assert assign.find_rater(db, more.raters["rater-004"]).label == "rater-004"


def test_export_maps_screen_sides_back_to_systems(tmp_path: Path):
    db, made = make_study(tmp_path, n_prompts=6, raters=1, ratings_per_item=1)
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    sides = []
    while (screen := assign.current_screen(db, rater)) is not None:
        side = side_of(db, screen.assignment_id, "sys2")  # always prefer sys2, wherever it is shown
        sides.append(side)
        assert assign.submit(db, rater, screen.assignment_id, side, "indifferent")
    assert set(sides) == {"A", "B"}  # placement really varies
    for out in (tmp_path / "r.csv", tmp_path / "r.parquet"):
        export_ratings(db, "demo", out)
        df = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
        fid = df[df["question"] == "fidelity"]
        assert len(fid) == 6 and (fid["preferred_system"] == "sys2").all()
        assert set(fid["choice"]) == {"A", "B"}
        assert ((fid["choice"] == "A") == (fid["left_system"] == "sys2")).all()
        aln = df[df["question"] == "alignment"]
        assert aln["preferred_system"].isna().all()
    with pytest.raises(UserError, match="csv or .parquet"):
        export_ratings(db, "demo", tmp_path / "r.xlsx")
    with pytest.raises(UserError, match="no study named"):
        load_ratings(db, "other")


def test_study_command_create_export_analyze(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=4, systems=("a", "b", "c"))
    assert (
        exit_code(
            [
                "study",
                "create",
                "demo",
                f"pairs={pairs}",
                "raters=2",
                "ratings_per_item=1",
                "controls.count=2",
                "controls.every=3",
                "categories=[Colors,Counting]",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 items" in out and "2 controls" in out and out.count("?token=") == 2 and "?admin=" in out
    folder = tmp_path / "studies" / "demo"
    assert (folder / "study.db").is_file() and stat.S_IMODE(os.stat(folder / "tokens.csv").st_mode) == 0o600
    db = open_db(folder / "study.db")
    token = read_tokens_file(folder / "tokens.csv", "demo")[0]["token"]
    rater = assign.find_rater(db, token)
    while (screen := assign.current_screen(db, rater)) is not None:
        assign.submit(db, rater, screen.assignment_id, "A", "B")
    out = tmp_path / "r.parquet"
    assert exit_code(["study", "export", "demo", f"out={out}", "include_controls=false"]) == 0
    assert set(pd.read_parquet(tmp_path / "r.parquet")["kind"]) == {"main"}
    assert exit_code(["study", "analyze", "demo", "n_boot=50", f"out={tmp_path / 'an'}"]) == 0
    out = capsys.readouterr().out
    assert "Bradley–Terry" in out and "Krippendorff" in out
    doc = json.loads((tmp_path / "an" / "analysis.json").read_text())
    assert {"preferences", "bradley_terry", "agreement", "controls"} <= set(doc)
    assert exit_code(["study", "add-raters", "demo", "raters=3"]) == 0
    assert capsys.readouterr().out.count("?token=") == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["study", "frobnicate", "x"], "unknown study action"),
        (["study", "create", "x", "pairs=/no/such.json"], "not found"),
        (["study", "create", "x"], "exactly one of pairs"),
        (["study", "export", "nostudy", "out=x.csv"], "no study database"),
        (["study", "export", "x", "db=postgresql+psycopg://nobody@127.0.0.1:1/none", "out=x.csv"], "cannot open"),
        (["study", "export", "x", "db=notadialect://x/y", "out=x.csv"], "cannot use database URL"),
        (["study"], "missing action"),
        (["raters", "nostudy", "dry_run=true"], "no study database"),
        (["study", "sample-size", "rate_a=0.4", "rate_b=0.4"], "equal rates"),
        (["study", "sample-size", "rate_a=0.4"], "needs rate_a= and rate_b="),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    monkeypatch.chdir(tmp_path)
    assert exit_code(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("imagen-bench ")


def test_sample_size_command(capsys):
    assert exit_code(["study", "sample-size", "rate_a=0.6", "rate_b=0.4"]) == 0
    assert capsys.readouterr().out.startswith("194 ratings")
    assert exit_code(["study", "sample-size", "rate_a=0.6", "rate_b=0.4", "design_effect=1.5"]) == 0
    assert capsys.readouterr().out.startswith("291 ratings")


def test_create_from_runs_uses_drawbench_export(tmp_path: Path, monkeypatch, capsys):
    pairs_file = make_pairs(tmp_path / "src", n_prompts=3)
    calls = []

    def build_study_pairs(run_dirs, prompt_ids=None, categories=None, stage=None):
        calls.append((run_dirs, prompt_ids, categories, stage))
        return read_pairs(pairs_file)

    monkeypatch.setattr("raters_ui.commands.build_study_pairs", build_study_pairs)
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    assert (
        exit_code(
            [
                "study",
                "create",
                "r",
                f"runs=[{tmp_path}/ra,{tmp_path}/rb]",
                "stage=sr256",
                "prompts=[drawbench-0001,drawbench-0002]",
            ]
        )
        == 0
    )
    prompts = ["drawbench-0001", "drawbench-0002"]
    assert calls == [([tmp_path / "ra", tmp_path / "rb"], prompts, None, "sr256")]
    assert "2 items" in capsys.readouterr().out


def test_raters_command_prints_links(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=2)
    assert exit_code(["study", "create", "demo", f"pairs={pairs}", "raters=2"]) == 0
    capsys.readouterr()
    assert exit_code(["raters", "demo", "port=9123", "dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert out.count("http://127.0.0.1:9123/?token=") == 2 and out.count("http://127.0.0.1:9123/?admin=") == 1
    assert "--browser.gatherUsageStats false" in out and "--server.headless true" in out


def test_create_from_real_drawbench_runs(tmp_path: Path, monkeypatch, capsys):
    fakes = pytest.importorskip("drawbench.fakes")  # the run-folder writer of drawbench/
    from drawbench.suites import load_suite

    suite = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=2)
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    fakes.write_fake_run(a, suite, run_id="drawbench-imagen-t5xxl", suite="drawbench")
    fakes.write_fake_run(b, suite, run_id="drawbench-rival", suite="drawbench")
    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    assert exit_code(["study", "create", "real", f"runs=[{a},{b}]", "categories=[Text]", "raters=1"]) == 0
    assert "2 items from 2 systems" in capsys.readouterr().out
    db = open_db(tmp_path / "studies" / "real" / "study.db")
    with db.read() as s:
        assert set(s.scalars(select(System.run_id))) == {"drawbench-imagen-t5xxl", "drawbench-rival"}
        assert count(db, ItemImage) == 2 * 2 * 8


def test_practice_items_are_stored_like_every_image_and_are_not_items(tmp_path: Path):
    from raters_ui import onboarding
    from raters_ui.db import PracticeImage, PracticeItem

    db, made = make_study(tmp_path, systems=("small", "big"), sizes={"small": 64, "big": 96}, n_prompts=3, practice=2)
    files = sorted(made.store_dir.glob("*.png"))
    with db.read() as s:
        practice = s.execute(
            select(PracticeItem.mode, PracticeItem.expected_fidelity, PracticeItem.expected_alignment).order_by(
                PracticeItem.position
            )
        ).all()
        names = set(s.scalars(select(PracticeImage.file)))
        kinds = set(s.scalars(select(Item.kind)))
    assert practice == [("degrade", 1, None), ("mismatch", None, 1)] and kinds == {"main"}
    assert names <= {f.name for f in files} and len(names) == 32  # two practice items of two sets of 8
    assert {Image.open(f).size for f in files} == {(96, 96)} and len({f.stat().st_size for f in files}) == 1
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    assert onboarding.rater_status(db, rater).practice_total == 2
    assert assign.progress(db, rater) == (0, 3)  # practice is not in the item count
    with pytest.raises(UserError, match="practice must be 0, 1 or 2"):
        make_study(tmp_path / "x", practice=3)


def test_configure_changes_instructions_and_consent(tmp_path: Path, monkeypatch, capsys):
    from raters_ui import onboarding

    monkeypatch.setenv("IMAGEN_BENCH_STUDIES", str(tmp_path / "studies"))
    pairs = make_pairs(tmp_path / "src", n_prompts=2, n_images=2)
    text = tmp_path / "instructions.md"
    text.write_text("Look **closely**.\n", encoding="utf-8")
    assert (
        exit_code(
            [
                "study",
                "create",
                "demo",
                f"pairs={pairs}",
                "raters=1",
                f"instructions_file={text}",
                "consent=I agree.",
                "practice=1",
                "min_seconds=4",
            ]
        )
        == 0
    )
    db = open_db(tmp_path / "studies" / "demo" / "study.db")
    rater = assign.find_rater(db, read_tokens_file(tmp_path / "studies" / "demo" / "tokens.csv", "demo")[0]["token"])
    status = onboarding.rater_status(db, rater)
    assert (status.instructions, status.consent, status.practice_total) == ("Look **closely**.", "I agree.", 1)
    with db.read() as s:
        assert s.scalar(select(Study.min_seconds)) == 4.0
    capsys.readouterr()
    assert exit_code(["study", "configure", "demo", "instructions=", "consent='Yes, I agree.'"]) == 0  # Hydra quoting
    assert "instructions: the paper's wording; consent: 'Yes, I agree.'" in capsys.readouterr().out
    status = onboarding.rater_status(db, rater)
    assert status.instructions == onboarding.DEFAULT_INSTRUCTIONS and status.consent == "Yes, I agree."
