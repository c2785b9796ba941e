"""``imagen-bench data world``: the splits on disk, idempotent reruns, one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.world.dataset import WorldSettings, write_world
from harness.errors import UserError
from harness.formats.files import sha256_file
from imagen.training.data import read_examples

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "data", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
            "PYTHONPATH": str(REPO),
            "IMAGEN_BENCH_RUNS": str(cwd / "runs"),
            "HF_HUB_OFFLINE": "1",
        },
    )


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_writes_train_test_and_suite_and_a_rerun_changes_nothing(tmp_path):
    out = tmp_path / "world"
    first = _cli("world", f"out={out}", "n_train=24", "n_test=8", "progress=false", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["up_to_date"] is False and summary["counts"] == {"train": 24, "test": 8}
    train = read_examples(out / "train")  # the layout `imagen-bench train data.root=` reads
    assert len(train) == 24 and len(read_examples(out / "test")) == 8
    rows = [json.loads(line) for line in (out / "train" / "scenes.jsonl").read_text().splitlines()]
    with open(out / "train" / "captions.csv", newline="") as f:
        captions = list(csv.DictReader(f))
    assert [r["caption"] for r in rows] == [c["caption"] for c in captions]
    assert all(sha256_file(out / "train" / r["file"]) == r["sha256"] for r in rows)
    assert {"spec", "scene", "category", "kind", "style"} <= set(rows[0])
    world = json.loads((out / "world.json").read_text())
    assert world["settings"]["seed"] == 0 and world["version"] >= 1 and world["environment"]["pillow"]
    assert sum(world["splits"]["train"]["categories"].values()) == 24
    assert (out / "suite.jsonl").read_bytes() == (REPO / "benchmarks/world/data/world_suite.jsonl").read_bytes()
    assert len(list((out / "suite_gt").glob("*/*.png"))) == 56 * 8

    before = {p: (p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    again = _cli("world", f"out={out}", "n_train=24", "n_test=8", "progress=false", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["up_to_date"] is True
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["world", "n_train=-1"], "n_train=-1 must be 0 or a positive number"),
        (["world", "n_test=0"], "n_test=0 must be a positive number"),
        (["world", "seed=abc"], "seed='abc' must be an integer"),
        (["world", "resolution=4"], "resolution=4 must be between"),
        (["world", "world.rare_rate=1.5"], "world.rare_rate=1.5 must be a rate"),
        (["world", "world.mix.text=-1"], "world.mix weights must be non-negative"),
        (["world", "world.mix.sky=1"], "unknown key 'world.mix.sky'"),
        (["planets"], "unknown dataset 'planets'"),
    ],
)
def test_bad_values_are_one_line_errors_with_exit_code_2(tmp_path, args, message):
    r = _cli(*args, f"out={tmp_path / 'w'}", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagen-bench data: error:") and message in lines[0], r.stderr
    assert not (tmp_path / "w" / "world.json").exists()


def test_out_is_required(tmp_path):
    r = _cli("world", cwd=tmp_path)
    assert r.returncode == 2 and "out is required" in r.stderr


def test_same_settings_same_bytes_and_growing_keeps_the_first_images(tmp_path):
    a = write_world(tmp_path / "a", WorldSettings(seed=5), 20, 5, suite_gt=False)
    b = write_world(tmp_path / "b", WorldSettings(seed=5), 30, 5, suite_gt=False)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    images = [k for k in ha if "/images/" in k]
    assert len(images) == 25 and all(ha[k] == hb[k] for k in images)
    assert a["splits"]["test"]["sha256"] == b["splits"]["test"]["sha256"]


def test_a_world_is_not_overwritten_silently(tmp_path):
    write_world(tmp_path / "w", WorldSettings(seed=1), 12, 4, suite_gt=False)
    with pytest.raises(UserError, match=r"made differently \(seed: 1 → 2\)"):
        write_world(tmp_path / "w", WorldSettings(seed=2), 12, 4, suite_gt=False)
    smaller = write_world(tmp_path / "w", WorldSettings(seed=2), 6, 4, suite_gt=False, overwrite=True)
    assert smaller["settings"]["seed"] == 2
    assert len(list((tmp_path / "w" / "train" / "images").glob("*.png"))) == 6  # stale images removed
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds other files"):
        write_world(tmp_path / "other", WorldSettings(), 4, 2, suite_gt=False)


def test_a_damaged_world_is_repaired_by_a_rerun(tmp_path):
    write_world(tmp_path / "w", WorldSettings(), 10, 4, suite_gt=False)
    victim = tmp_path / "w" / "train" / "images" / "000003.png"
    good = victim.read_bytes()
    victim.write_bytes(b"not a png")
    again = write_world(tmp_path / "w", WorldSettings(), 10, 4, suite_gt=False)
    assert again["up_to_date"] is False and victim.read_bytes() == good


def test_missing_suite_images_are_rewritten(tmp_path):
    write_world(tmp_path / "w", WorldSettings(), 4, 2, suite_gt=True)
    gone = next((tmp_path / "w" / "suite_gt").glob("*/3.png"))
    gone.unlink()
    assert write_world(tmp_path / "w", WorldSettings(), 4, 2, suite_gt=True)["up_to_date"] is False
    assert gone.is_file()
    assert write_world(tmp_path / "w", WorldSettings(), 4, 2, suite_gt=True)["up_to_date"] is True
