"""A normal (non-editable) install works outside the source tree: configs and data ship in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [
    "harness/conf/eval.yaml",
    "harness/conf/generation/default.yaml",
    "harness/conf/benchmark/drawbench.yaml",
    "harness/conf/model/imagen_tiny.yaml",
    "drawbench/data/drawbench_prompts.csv",
    "drawbench/data/parti/PartiPrompts.tsv",
    "benchmarks/data/coco/val2014_30k_captions.csv",
    "raters_ui/migrations/script.py.mako",
]


def _source_copy(dest: Path) -> Path:
    """The tracked files (and new ones git does not ignore), so the build never writes into the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.splitlines()
    for rel in listed:
        src, dst = REPO / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, dst)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    source = _source_copy(tmp_path_factory.mktemp("src"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source), "-w", str(out)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (found,) = out.glob("imagen_bench-*.whl")
    return found


def test_the_wheel_holds_configs_and_shipped_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [s for s in SHIPPED if s not in names] == []
    assert any(n.startswith("imagen_bench-") and n.endswith("entry_points.txt") for n in names)


def test_installed_wheel_runs_commands_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    # PYTHONPATH comes before the editable install's finder, so the installed copy is the one imported.
    env = dict(os.environ, PYTHONPATH=str(target), IMAGEN_BENCH_RUNS=str(work / "runs"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=work, env=env
        )

    where = subprocess.run(
        [sys.executable, "-c", "import harness, drawbench; print(harness.__file__, drawbench.__file__)"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert str(REPO) not in where.stdout and str(target) in where.stdout
    info = run("info", "model=imagen_tiny")
    assert info.returncode == 0 and '"model": "imagen_tiny"' in info.stdout, info.stderr[-2000:]
    job = run("eval", "--cfg", "job", "benchmark=drawbench")
    assert job.returncode == 0 and "_target_: drawbench.evaluate.PromptSuiteBenchmark" in job.stdout, job.stderr[-2000:]
    from_suite = subprocess.run(
        [sys.executable, "-c", ("from drawbench.suites import load_suite; print(len(load_suite('drawbench')))")],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert from_suite.stdout.strip() == "200", from_suite.stderr[-2000:]
