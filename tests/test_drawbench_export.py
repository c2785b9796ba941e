"""Study export: pairs of 8-image sets from two runs, in the rater app's format, revealing no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drawbench.external import import_external_run
from drawbench.fakes import write_external_folder, write_fake_run
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.formats.study_pairs import build_study_pairs, export_study_pairs, read_pairs

SUITE = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=2)  # 4 prompts


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    a, b = tmp_path / "runs/a", tmp_path / "runs/b"
    write_fake_run(a, SUITE, run_id="drawbench-imagen-t5xxl", suite="drawbench")
    write_fake_run(b, SUITE)  # no results.json: the folder name is the run id
    return [a, b]


def test_pairs_cover_every_prompt_with_eight_seeds_per_system(two_runs):
    pairs = build_study_pairs(two_runs)
    assert pairs.suite == "drawbench"
    assert [(s.id, s.run_id, s.source) for s in pairs.systems] == [
        ("sys1", "drawbench-imagen-t5xxl", str(two_runs[0].resolve())),
        ("sys2", "b", str(two_runs[1].resolve())),
    ]
    assert [i.prompt_id for i in pairs.items] == [
        "drawbench-0001",
        "drawbench-0002",
        "drawbench-0180",
        "drawbench-0181",
    ]
    item = pairs.items[2]
    assert item.category == "Text" and item.seeds == list(range(8))
    assert item.prompt == "A storefront with 'Hello World' written on it."
    for sys_id, run in zip(("sys1", "sys2"), two_runs):
        paths = [Path(p) for p in item.images[sys_id]]
        assert all(p.is_absolute() and p.is_file() for p in paths)
        final = run.resolve() / "images/sr256/drawbench-0180"  # the final stage by default
        assert paths == [final / f"{s}.png" for s in range(8)]


def test_explicit_stage_and_selection(two_runs):
    pairs = build_study_pairs(two_runs, categories=["Text"], stage="base64")
    assert [i.prompt_id for i in pairs.items] == ["drawbench-0180", "drawbench-0181"]
    assert "/images/base64/" in pairs.items[0].images["sys2"][0]
    pairs = build_study_pairs(two_runs, prompt_ids=["drawbench-0002"])
    assert [i.prompt_id for i in pairs.items] == ["drawbench-0002"]
    with pytest.raises(UserError, match="prompt 'drawbench-0003' is in none of the runs"):
        build_study_pairs(two_runs, prompt_ids=["drawbench-0003"])
    with pytest.raises(UserError, match="category 'Reddit' is in none of the runs"):
        build_study_pairs(two_runs, categories=["Reddit"])
    with pytest.raises(UserError, match="no images at stage 'sr1024'"):
        build_study_pairs(two_runs, stage="sr1024")


def test_a_run_missing_an_image_is_named(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_fake_run(a, SUITE)
    write_fake_run(b, SUITE, seeds=range(7))  # killed before seed 7
    with pytest.raises(
        UserError,
        match=r"run b \(.*\) has no sr256 image for drawbench-0001 seed 7, "
        r"which run a has \(4 such images missing\)",
    ):
        build_study_pairs([a, b])


def test_a_corrupted_image_counts_as_missing(two_runs):
    (two_runs[0] / "images/sr256/drawbench-0181/2.png").write_bytes(b"truncated")
    with pytest.raises(UserError, match="drawbench-0181 seed 2"):
        build_study_pairs(two_runs)


def test_runs_of_different_prompt_files_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_fake_run(a, SUITE)
    other = load_suite("drawbench", prompt_ids=["drawbench-0001", "drawbench-0002", "drawbench-0180", "drawbench-0181"])
    changed = [type(i)(i.prompt_id, i.prompt + " (edited)", i.category, i.index) for i in other]
    write_fake_run(b, changed)
    with pytest.raises(UserError, match="drawbench-0001 is a different prompt in different runs"):
        build_study_pairs([a, b])


def test_bad_run_lists_are_refused(two_runs, tmp_path):
    with pytest.raises(UserError, match="at least two runs"):
        build_study_pairs(two_runs[:1])
    with pytest.raises(UserError, match="given twice"):
        build_study_pairs([two_runs[0], two_runs[0]])
    with pytest.raises(UserError, match="not a run folder"):
        build_study_pairs([two_runs[0], tmp_path])


def test_run_id_from_hydra_config(two_runs):
    (two_runs[1] / ".hydra").mkdir()
    config = "run_id: drawbench-dalle-mini\nbenchmark:\n  name: drawbench\n"
    (two_runs[1] / ".hydra/config.yaml").write_text(config)
    assert build_study_pairs(two_runs).systems[1].run_id == "drawbench-dalle-mini"


def test_export_writes_a_file_the_rater_app_reads_back(two_runs, tmp_path):
    path = export_study_pairs(two_runs, tmp_path / "study/pairs.json", categories=["Colors"])
    raw = json.loads(path.read_text())
    assert raw["format"] == "imagen-bench.study-pairs"
    assert [s["id"] for s in raw["systems"]] == ["sys1", "sys2"]
    item_keys = {k for item in raw["items"] for k in item}
    assert item_keys == {"prompt_id", "prompt", "category", "seeds", "images"}  # nothing about the model
    back = read_pairs(path)
    assert len(back.items) == 2 and all(len(v) == 8 for i in back.items for v in i.images.values())


def test_an_external_system_pairs_with_our_run(two_runs, tmp_path):
    write_external_folder(tmp_path / "ext", SUITE, size=64)
    ext = import_external_run(tmp_path / "ext", SUITE, None, tmp_path / "runs/closed", "closed-model-x")
    pairs = build_study_pairs([two_runs[0], ext])  # each run at its own final stage: sr256 vs external
    assert pairs.systems[1].run_id == "closed-model-x"
    assert "/images/external/" in pairs.items[0].images["sys2"][0]
    assert "/images/sr256/" in pairs.items[0].images["sys1"][0]
