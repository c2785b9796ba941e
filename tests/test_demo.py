"""`make demo` end to end at smoke size: every phase runs as its own command on the shipped checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_every_phase_and_ends_with_a_report_a_verdict_and_the_rater_command(tmp_path):
    env = dict(os.environ, IMAGEN_BENCH_RUNS=str(tmp_path / "runs"), IMAGEN_BENCH_CACHE=str(tmp_path / "cache"))
    # Smoke size: every phase and command of the demo, each on the least data it accepts — one prompt per
    # category, 2 seeds per prompt (the study still pairs two sets per prompt; 8 seeds only make each phase
    # 4x longer: 117 s against 61 s on the AVX-512 VM), 2 sampler steps, 24 reference images.
    args = [
        "demo",
        "run_id=smoke",
        "steps=2",
        "world.n_test=24",
        "suite.limit_per_category=1",
        "suite.images_per_prompt=2",
        "sweep.limit_per_category=1",
        "sweep.guidance=[1,4]",
        "threads=1",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=1200,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    out = tmp_path / "runs" / "smoke"
    lines = r.stdout.splitlines()
    phases = [line.split(" ")[0] for line in lines if line.startswith("[")]
    assert list(dict.fromkeys(phases)) == [f"[{k}/7]" for k in range(1, 8)]  # study: create + simulate share [4/7]
    assert any(line.startswith("[7/7] summary") for line in lines)
    summary = json.loads(r.stdout[r.stdout.index("{") : r.stdout.index("\n}") + 2])
    assert summary["verdict"] in ("pass", "fail", "inconclusive")
    assert summary["verdict_exit_code"] == {"pass": 0, "fail": 1, "inconclusive": 3}[summary["verdict"]]
    for which in ("final", "early"):
        results = json.loads((out / which / "results.json").read_text())
        assert results["model"]["checkpoint"].endswith(f"checkpoints/{which}")
        assert set(summary[which]) == {"fid", "clip_score", "world_accuracy"} and summary[which]["fid"] > 0
    assert sorted(p.name for p in (out / "guidance").iterdir() if p.is_dir()) == ["guidance.base=1", "guidance.base=4"]
    assert {p.name for p in (out / "thresholding").iterdir() if p.is_dir()} == {
        f"thresholding.base={m}" for m in ("none", "static", "dynamic")
    }
    assert (out / "regress" / "junit.xml").is_file()
    assert (out / "report" / "plots" / "pareto-world.png").is_file()  # the guidance trade-off of a prompt suite
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "of the raters are SIMULATED" in html  # never mistaken for people
    assert f"imagen-bench raters demo studies_dir={out / 'studies'}" in r.stdout
    # the study's alignment votes as human labels: meta-eval's table at the end, its figure in the report
    agreement = r.stdout[r.stdout.index("Agreement with the study's raters") :]
    assert "world_accuracy" in agreement and "clip_score" in agreement and "pairwise_accuracy" in agreement
    rows = json.loads((out / "meta-eval" / "meta_eval.json").read_text())["rows"]
    assert {row["output"] for row in rows} >= {"clip_score", "world_accuracy"}
    assert (
        "Which metric agrees with people (meta-eval)" in html and (out / "report" / "plots" / "meta-eval.png").is_file()
    )
