"""``benchmarks/scripts/gpu_check.py --device cpu --dry``: the prepared GPU check runs end to end here, at toy size,
so it cannot rot between the sessions that have a GPU (it proves the wiring, not the GPU's numbers)."""

from __future__ import annotations

import pytest

from benchmarks.scripts import gpu_check


@pytest.mark.slow
def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path, capsys):
    code = gpu_check.main(["--device", "cpu", "--dry", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| check")]
    checks = [ln.split(" | ")[0].lstrip("| ") for ln in lines]
    assert "tests marked gpu" in checks and "deterministic=true reruns byte-identical" in checks
    assert sum(c.startswith("world ") and "interval" in c for c in checks) == 3  # FID, CLIP score, accuracy
    assert any("guided step" in c and "float32" in c for c in checks) and any("bf16" in c for c in checks)
    assert "| FAIL |" not in out


def test_a_bad_device_is_one_line_and_exit_2(tmp_path, capsys):
    assert gpu_check.main(["--device", "tpu", "--dry", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "device must be auto, cpu, cuda" in err[0]
