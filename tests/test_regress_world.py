"""The gate on real runs of the shipped cascade: early against final on the demo world, with the set metrics
of the issue that found the gate judging them by KID (CMMD, recall and coverage on the world's tiny CLIP),
and no FID in the run at all.

Smallest size that still decides: one prompt per category and 2 seeds (14 images per run) at the base stage,
against 24 held-out world images; the early checkpoint is far enough behind that CLIP score and coverage
already fail at that size, and every row's improvement is its own metric's signed difference.
"""

from __future__ import annotations

import json

import pytest

from harness.formats.verdict import read_verdict
from tests.conftest import REPO
from tests.helpers.cli import exit_code

WORLD = REPO / "benchmarks" / "world"
METRICS = "[kid,cmmd,prdc_clip,clip_score]"


_cli = exit_code


@pytest.fixture(scope="module")
def world_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("world-gate")
    common = [f"paths.runs_dir={root / 'runs'}", f"paths.cache_dir={root / 'cache'}", "progress=false"]
    assert (
        _cli(
            [
                "data",
                "world",
                f"out={root / 'world'}",
                "n_train=0",
                "n_test=24",
                "suite_gt=false",
                "run_id=data",
                *common,
            ]
        )
        == 0
    )
    gen = [
        "model=imagen_tiny",
        "sampler=dpmpp_2m",
        "sampler.steps=4",
        f"clip.model=local-dir:{WORLD / 'data' / 'tiny_clip'}",
        "clip.pretrained=",
        "cmmd.model=null",
        "cmmd.pretrained=null",
        "stop_at=base32",
        "threads=1",
        *common,
    ]
    suite = [
        "benchmark=world",
        f"benchmark.metrics={METRICS}",
        "benchmark.limit_per_category=1",
        "benchmark.images_per_prompt=2",
        "benchmark.seeds=[0,1]",
        "prdc.k=3",
        f"benchmark.reference={{root:'{root / 'world' / 'test' / 'images'}',dataset:world,split:test}}",
    ]
    for which in ("final", "early"):
        assert _cli(["eval", *suite, *gen, f"run_id={which}", f"checkpoint={WORLD / 'checkpoints' / which}"]) == 0
    return root, gen


def test_early_against_final_without_fid_judges_each_metric_by_its_own_numbers(world_runs, capsys):
    root, gen = world_runs
    runs = root / "runs"
    code = _cli(
        [
            "regress",
            "benchmark=world",
            "run_id=gate",
            f"baseline={runs / 'final'}",
            f"candidate={runs / 'early'}",
            "n_boot_sets=50",
            *gen,
        ]
    )
    out = capsys.readouterr().out
    assert code in (1, 3), out  # early is worse: fail (or, on some row, too little evidence)
    verdict = read_verdict(runs / "gate")
    outputs = {r.output for r in verdict.rows}
    assert {"kid", "cmmd", "recall_clip", "coverage_clip", "clip_score", "precision_clip"} <= outputs
    assert "fid" not in outputs
    results = {w: json.loads((runs / w / "results.json").read_text()) for w in ("final", "early")}
    for row in verdict.rows:
        sign = 1.0 if row.higher_is_better else -1.0
        assert row.improvement == pytest.approx(sign * (row.candidate - row.baseline), rel=1e-12, abs=1e-15)
        if row.n_prompts < 2:  # a category of one prompt: no interval, said so, and never a pass
            assert row.ci_low is None and row.note.startswith("undefined") and row.verdict == "inconclusive"
            continue
        assert row.ci_low <= row.improvement <= row.ci_high, row
        if row.group == "overall":  # the columns are the runs' own reported numbers, metric by metric
            assert row.baseline == results["final"]["metrics"]["overall"][row.output]["value"]
            assert row.candidate == results["early"]["metrics"]["overall"][row.output]["value"]
    assert next(r for r in verdict.rows if r.output == "clip_score" and r.group == "overall").verdict == "fail"
    cmmd = results["final"]["metric_info"]["cmmd"]
    assert cmmd["label"] == "CMMD (V-statistic, as google-research/cmmd)" and cmmd["set"]["options"] == {
        "estimator": "v_statistic"
    }
