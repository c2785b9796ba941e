"""``imagen-bench regress``: a checkpoint against itself passes, against a damaged copy fails, with too
little evidence it is inconclusive — each with its exit code — and an evaluated run folder is reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from harness.formats.verdict import read_verdict
from harness.gate.compare import decide, paired_mean_difference, prompts_to_decide
from imagen.checkpoints import read_record, save_stage
from tests.helpers.cli import run_cli
from tests.helpers.fixtures import mini_coco

COMMON = [
    "model=imagen_micro",
    "sampler=ddim",
    "sampler.steps=3",
    "progress=false",
    "benchmark=coco_fid30k",
    "benchmark.num_prompts=12",
    "clip.enabled=false",
    "fid.kid_subset_size=6",
    "fid.min_images=2",
]
BOOT = ["n_boot=400", "n_boot_sets=60"]


run = run_cli


def damaged_copy(cascade: Path, dest: Path, scale: float) -> Path:
    """The same cascade with Gaussian noise of ``scale`` × each tensor's std added to every weight."""
    dest.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for f in sorted(cascade.glob("*.safetensors")):
        rec = read_record(f)
        state = {
            k: v + scale * v.float().std().nan_to_num() * torch.randn(v.shape, generator=gen)
            if v.is_floating_point() and v.numel() > 1
            else v
            for k, v in load_file(str(f)).items()
        }
        save_stage(
            dest / f.name,
            state,
            stage=rec.stage,
            unet=rec.unet,
            spec=rec.spec,
            step=rec.step,
            ema=rec.ema,
            text_encoder=rec.text_encoder,
        )
    return dest


@pytest.fixture(scope="module")
def setup(tmp_path_factory, micro_cascade):
    root = tmp_path_factory.mktemp("regress")
    return {
        "coco": mini_coco(root / "coco", n_images=12),
        "cascade": micro_cascade,
        "damaged": damaged_copy(micro_cascade, root / "damaged", scale=3.0),
    }


@pytest.mark.slow
def test_gate_pass_fail_inconclusive_and_reuse(tmp_path, capsys, setup):
    runs = tmp_path / "runs"
    base = [*COMMON, f"coco.root={setup['coco']}", f"paths.runs_dir={runs}"]
    code, out, err = run(["eval", *base, f"checkpoint={setup['cascade']}", "run_id=main"], capsys)
    assert code == 0, err
    main_run = runs / "main"
    images_before = {p: p.stat().st_mtime_ns for p in (main_run / "images").rglob("*.png")}

    # the checkpoint against itself (its evaluated run reused as the baseline): pass, exit 0
    code, out, err = run(
        ["regress", *base, *BOOT, f"baseline={main_run}", f"candidate={setup['cascade']}", "run_id=self"], capsys
    )
    assert code == 0, out + err
    assert any(ln.startswith("baseline: run main (") and ln.endswith(" reused") for ln in out.splitlines()), out
    verdict = read_verdict(runs / "self")
    assert verdict.overall == "pass" and {r.output for r in verdict.rows} == {"fid", "kid"}
    assert all(r.improvement == 0.0 and r.verdict == "pass" for r in verdict.rows)
    assert {p: p.stat().st_mtime_ns for p in (main_run / "images").rglob("*.png")} == images_before

    # a damaged copy: FID much worse, the whole interval beyond the tolerated 0.5 → fail, exit 1
    code, out, err = run(
        ["regress", *base, *BOOT, f"baseline={main_run}", f"candidate={setup['damaged']}", "run_id=damaged"], capsys
    )
    assert code == 1, out + err
    verdict = read_verdict(runs / "damaged")
    fid = next(r for r in verdict.rows if r.output == "fid" and r.group == "sr32")
    assert verdict.overall == "fail" and fid.verdict == "fail" and fid.ci_high < -0.5 and fid.delta > 0
    assert fid.baseline == json.loads((main_run / "results.json").read_text())["metrics"]["sr32"]["fid"]["value"]
    junit = (runs / "damaged" / "junit.xml").read_text()
    assert "<failure" in junit and 'name="fid"' in junit and "OVERALL: FAIL" not in junit
    assert "overall: FAIL (exit code 1)" in out

    # the same two runs, reused, with the tolerated regression set near the estimate: inconclusive, exit 3
    near = -0.9 * fid.improvement
    code, out, err = run(
        [
            "regress",
            *base,
            *BOOT,
            f"baseline={main_run}",
            f"candidate={runs / 'damaged' / 'candidate'}",
            "run_id=near",
            f"thresholds.fid.max_worse={near}",
            "thresholds.kid.max_worse=1",
        ],
        capsys,
    )
    assert code == 3, out + err
    row = next(r for r in read_verdict(runs / "near").rows if r.output == "fid" and r.group == "sr32")
    assert row.verdict == "inconclusive" and row.prompts_to_decide and row.prompts_to_decide > 0
    assert "prompts to decide" in out


def test_refuses_runs_on_other_prompts_and_unknown_thresholds(tmp_path, capsys, setup):
    runs = tmp_path / "runs"
    base = [*COMMON, f"coco.root={setup['coco']}", f"paths.runs_dir={runs}", "checkpoint=random"]
    for rid, n in (("ten", 10), ("eleven", 11)):
        assert run(["eval", *base, f"run_id={rid}", f"benchmark.num_prompts={n}"], capsys)[0] == 0
    base += ["n_boot=50", "n_boot_sets=10"]
    code, _, err = run(
        ["regress", *base, f"baseline={runs / 'ten'}", f"candidate={runs / 'eleven'}", "run_id=x"], capsys
    )
    assert code == 2 and "differ in prompts" in err and not (runs / "x" / "verdict.json").exists()
    code, _, err = run(
        [
            "regress",
            *base,
            f"baseline={runs / 'ten'}",
            f"candidate={runs / 'ten'}",
            "run_id=y",
            "+thresholds.fidd.max_worse=1",
        ],
        capsys,
    )
    assert code == 2 and "fidd" in err and "no registered metric" in err
    code, _, err = run(["regress", *base, f"baseline={tmp_path / 'nothing'}", f"candidate={runs / 'ten'}"], capsys)
    assert code == 2 and "neither an evaluated run folder" in err


def test_paired_statistics_and_decision_rule():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, size=40)
    same = paired_mean_difference(base, base.copy(), True)
    assert same.improvement == 0 and (same.ci_low, same.ci_high) == (0.0, 0.0) and decide(same, 0.1) == "pass"
    worse = paired_mean_difference(base, base - 1.0 + rng.normal(0, 0.1, 40), True, seed=1)
    assert worse.ci_high < -0.5 and decide(worse, 0.5) == "fail"
    lower_better = paired_mean_difference(base, base - 1.0, False)  # lower is better: a decrease improves
    assert lower_better.improvement == pytest.approx(1.0)
    spread = np.array([-1.3, 0.7, -0.3, -1.0, 0.4])  # mean -0.3: right on a 0.3 boundary
    noisy = paired_mean_difference(base[:5], base[:5] + spread, True, seed=2)
    assert noisy.improvement == pytest.approx(-0.3) and noisy.ci_low < -0.3 < noisy.ci_high
    assert decide(noisy, 0.3) == "inconclusive" and prompts_to_decide(noisy, 0.3) is None
    assert prompts_to_decide(noisy, 0.1) == int(np.ceil(5 * ((noisy.ci_high - noisy.ci_low) / 2 / 0.2) ** 2)) - 5
