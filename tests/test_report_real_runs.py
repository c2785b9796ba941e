"""The report over runs the real commands wrote: a DrawBench guidance sweep of the micro cascade and a study
created from it with ``imagen-bench study create`` (simulated raters). Guards the report against drift in
what ``drawbench`` and ``study`` write."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.cli import main as cli
from harness.formats.results import read_results
from reports.collect import find_results
from tests.helpers.fixtures import tiny_clip_folder
from tests.helpers.report_runs import simulate


def call(args: list[str]) -> None:
    try:
        cli(args)
    except SystemExit as err:
        if err.code:
            pytest.fail(f"{args[0]} exited with {err.code}")


def test_report_of_a_real_drawbench_sweep_and_study(tmp_path):
    from raters_ui.db import open_db
    from raters_ui.studies import add_raters
    from raters_ui.synthetic import side_of

    clip = tiny_clip_folder(tmp_path / "clip", seed=1)  # a seed whose CLIP scores are not all clamped to 0
    runs = tmp_path / "runs"
    call(
        [
            "drawbench",
            "-m",
            "model=imagen_micro",
            "checkpoint=random",
            "benchmark.categories=[Colors,Counting]",
            "benchmark.limit_per_category=2",
            f"clip.model={clip}",
            "clip.pretrained=",
            "sampler=ddim",
            "sampler.steps=2",
            "progress=false",
            f"paths.runs_dir={runs}",
            "run_id=sweep",
            "guidance.base=1,5",
        ]
    )
    points = [p.parent for p in find_results([str(runs / "sweep")])]
    ids = [read_results(p).run_id for p in points]
    assert len(points) == 2
    db_path = tmp_path / "study" / "study.db"
    call(
        [
            "study",
            "create",
            "demo",
            f"runs=['{points[0]}','{points[1]}']",
            f"db={db_path}",
            "raters=0",
            "ratings_per_item=1",
            f"tokens_file={tmp_path / 'tokens.csv'}",
        ]
    )
    db = open_db(db_path)
    made = SimpleNamespace(tokens=add_raters(db, "demo", 1))  # what simulate reads
    simulate(db, made, lambda label, aid, kind, rng: ("indifferent", side_of(db, aid, "sys1")))
    db.dispose()
    out = tmp_path / "report"
    call(["report", str(runs / "sweep"), "study=demo", f"db={db_path}", f"out={out}", "study_analysis.n_boot=100"])
    md = (out / "report.md").read_text(encoding="utf-8")
    for run_id in ids:
        assert run_id in md
    assert "model.stages.base16.guidance" in md and "## Prompt suites per category" in md
    assert "## Human study: demo" in md and "Automatic metrics vs raters" in md
    assert f"sys1 = {ids[0]}" in md  # the study's systems are the runs, by run id
    assert (out / "plots" / "categories-drawbench-clip_score.png").is_file() and list((out / "grids").iterdir())
