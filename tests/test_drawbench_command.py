"""``imagen-bench drawbench``: a tiny model on a subset, resume after kill, external folders."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drawbench.fakes import write_external_folder
from drawbench.suites import load_suite
from harness.formats.results import read_results, read_samples

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets(micro_cascade, tiny_clip):
    return micro_cascade, tiny_clip


def cmd(runs: Path, clip: str, *extra: str) -> tuple[list[str], dict]:
    env = dict(os.environ, IMAGEN_BENCH_RUNS=str(runs))
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "drawbench",
        "model=imagen_micro",
        "benchmark.categories=[Colors,Text]",
        "benchmark.limit_per_category=2",
        f"clip.model={clip}",
        "clip.pretrained=",
        "sampler=ddim",
        "sampler.steps=4",
        "progress=false",
        "batch_size=4",
        *extra,
    ], env


def test_subset_run_writes_images_grids_manifest_and_category_table(tmp_path, assets):
    cascade, clip = assets
    c, env = cmd(tmp_path, clip, f"checkpoint={cascade}", "run_id=db")
    out = subprocess.run(c, env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "db"
    assert len(list((run / "images" / "sr32").rglob("*.png"))) == 4 * 8  # 4 prompts x 8 seeds
    assert sorted(p.name for p in (run / "grids").iterdir()) == [
        "drawbench-0001.png",
        "drawbench-0002.png",
        "drawbench-0180.png",
        "drawbench-0181.png",
    ]
    r = read_results(run)
    assert set(r.metrics) == {"Colors", "Text", "overall"} and r.table.row("overall").n_images == 32
    assert "ocr_char_similarity" in r.metrics["Text"] and "ocr_char_similarity" not in r.metrics["Colors"]
    assert r.seeds["image_seeds"] == list(range(8)) and r.benchmark["subset"] is True
    samples = read_samples(run)
    assert {s["category"] for s in samples} == {"Colors", "Text"} and all(s["stage"] == "sr32" for s in samples)
    assert "| **overall** | 4 | 32 |" in out.stdout  # the per-category table is printed


@pytest.mark.slow
def test_rerun_after_kill_completes_only_what_is_missing(tmp_path, assets):
    cascade, clip = assets
    c, env = cmd(tmp_path, clip, f"checkpoint={cascade}", "run_id=killed", "sampler.steps=30")
    proc = subprocess.Popen(c, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    images = tmp_path / "killed" / "images" / "sr32"
    deadline = time.time() + 180
    while time.time() < deadline and len(list(images.rglob("*.png"))) < 8:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p: p.stat().st_mtime_ns for p in images.rglob("*.png")}
    assert 0 < len(done_before) < 32 and not (tmp_path / "killed" / "results.json").exists()
    out = subprocess.run(c, env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items())  # complete images untouched
    assert len(list(images.rglob("*.png"))) == 32 and read_results(tmp_path / "killed").metrics["overall"]


def test_external_folder_is_scored_and_a_missing_image_is_named(tmp_path, assets):
    _, clip = assets
    suite = load_suite("drawbench", categories=["Colors", "Text"], limit_per_category=2)
    folder = tmp_path / "ext"
    write_external_folder(folder, suite.items)
    c, env = cmd(tmp_path / "runs", clip, f"images_from={folder}", "checkpoint=random", "run_id=ext")
    ok = subprocess.run(c, env=env, capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert read_results(tmp_path / "runs" / "ext").model["kind"] == "folder"
    victim = next(folder.rglob("3.png"))
    victim.unlink()
    c, env = cmd(tmp_path / "runs", clip, f"images_from={folder}", "checkpoint=random", "run_id=ext2")
    bad = subprocess.run(c, env=env, capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    pid = victim.parent.name
    assert pid in bad.stderr and "seed 3" in bad.stderr, bad.stderr[-500:]
