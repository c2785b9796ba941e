"""The generation runner: deterministic, resumable after kill -9, sharded over torchrun ranks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.formats.manifest import MANIFEST_NAME, read_manifest, verified_records
from harness.generation.generators import ShapesGenerator
from harness.generation.runner import plan_work, run_generation

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [
    f"a {c} {s} number {i}"
    for i, (c, s) in enumerate(
        [(c, s) for c in ("red", "blue", "green", "yellow") for s in ("square", "circle", "triangle", "square")]
    )
]


def work(prompts=PROMPTS, seeds=(0, 1)):
    return plan_work(((f"p{i:03d}", p, "cat") for i, p in enumerate(prompts)), list(seeds))


def pngs(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted((run_dir / "images").rglob("*.png"))}


def test_runner_writes_every_stage_and_resume_skips_complete_images(tmp_path):
    gen = ShapesGenerator((16, 32))
    first = run_generation(gen, work(), tmp_path, batch_size=5, progress=False)
    assert first.complete and first.generated == 32 and len(first.records) == 64
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert len(lines) == 64 and '"category": "cat"' in lines[0]
    again = run_generation(gen, work(), tmp_path, batch_size=5, progress=False)
    assert again.generated == 0 and again.skipped == 32 and again.complete
    # a damaged image (checksum mismatch) and a deleted one are regenerated, nothing else
    victim = tmp_path / first.records[3].path
    victim.write_bytes(b"not a png")
    (tmp_path / first.records[40].path).unlink()
    fixed = run_generation(gen, work(), tmp_path, batch_size=5, progress=False)
    assert fixed.complete and fixed.generated == 10  # the two groups of 5 that held them
    assert len(verified_records(tmp_path)) == 64


def test_torn_manifest_line_is_ignored_and_repaired(tmp_path):
    gen = ShapesGenerator((16,))
    run_generation(gen, work(PROMPTS[:4]), tmp_path, batch_size=4, progress=False)
    with open(tmp_path / MANIFEST_NAME, "a") as f:
        f.write('{"prompt_id": "p0')  # killed mid-write
    assert len(read_manifest(tmp_path)) == 8
    again = run_generation(gen, work(PROMPTS[:4]), tmp_path, batch_size=4, progress=False)
    assert again.complete and again.generated == 0
    assert all(line.endswith("}") for line in (tmp_path / MANIFEST_NAME).read_text().splitlines())


def _sample_cmd(run_id: str, *extra: str) -> list[str]:
    prompts = "[" + ",".join(PROMPTS) + "]"
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "sample",
        "model=imagen_micro",
        "checkpoint=random",
        "sampler=ddpm",
        "sampler.steps=6",
        f"prompts={prompts}",
        "seeds=[0,1]",
        "batch_size=4",
        "threads=1",
        "progress=false",
        f"run_id={run_id}",
        *extra,
    ]


@pytest.mark.slow
def test_one_process_and_two_torchrun_processes_give_byte_identical_pngs(tmp_path):
    tmp_path = tmp_path / "runs"
    env = dict(os.environ, IMAGEN_BENCH_RUNS=str(tmp_path), OMP_NUM_THREADS="1")
    one = subprocess.run(_sample_cmd("one"), env=env, capture_output=True, text=True, cwd=REPO)
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = subprocess.run(torchrun + _sample_cmd("two")[1:], env=env, capture_output=True, text=True, cwd=REPO)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = pngs(tmp_path / "one"), pngs(tmp_path / "two")
    assert len(a) == 16 * 2 * 2 and a == b  # 16 prompts x 2 seeds x 2 stages, every byte equal
    assert (tmp_path / "one" / MANIFEST_NAME).read_text() == (tmp_path / "two" / MANIFEST_NAME).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # both ranks wrote into one folder


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    env = dict(os.environ, IMAGEN_BENCH_RUNS=str(tmp_path))
    subprocess.run(_sample_cmd("straight", "sampler.steps=20"), env=env, check=True, capture_output=True, cwd=REPO)
    proc = subprocess.Popen(
        _sample_cmd("killed", "sampler.steps=20"),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    images = tmp_path / "killed" / "images"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(images.rglob("*.png"))) < 10:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(list(images.rglob("*.png")))
    assert 0 < partial < 64
    out = subprocess.run(_sample_cmd("killed", "sampler.steps=20"), env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"skipped": 0' not in out.stdout  # it resumed rather than starting over
    assert pngs(tmp_path / "killed") == pngs(tmp_path / "straight")
