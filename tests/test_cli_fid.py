"""``imagen-bench fid DIR_A DIR_B``: one JSON line, any folder path, one error line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from harness import cli
from harness.cli.commands.fid import hydra_quote, translate_args
from harness.cli.hydra_app import CONF_DIR
from harness.metrics.extractors.inception import load_fid_extractor
from harness.metrics.synthetic import write_images
from tests.helpers.cli import run_cli as in_process

# Spaces, '=', a comma, a quote, a backslash and '${': all legal in folder names, all special to Hydra.
AWKWARD = "my imgs, a=b 'q' \\x ${oc.env:HOME}"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "fid", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_fid_of_a_folder_with_itself_is_zero(tmp_path: Path) -> None:
    folder = tmp_path / AWKWARD
    write_images(folder, 12, seed=1)
    proc = run_cli(str(folder), str(folder), "batch_size=6")
    assert proc.returncode == 0, proc.stderr
    (line,) = _lines(proc.stdout)  # exactly one line on stdout
    result = json.loads(line)
    assert abs(result["fid"]) < 1e-3
    assert result["count_a"] == result["count_b"] == 12
    assert result["a"]["source"] == str(folder)  # the path survived Hydra's override grammar intact
    assert result["mode"] == "clean" and result["metric_version"].startswith("imagen-bench-fid/")
    assert result["extractor"]["sha256"] == load_fid_extractor().sha256
    assert result["kid"] is not None and result["kid_std"] is not None
    assert all(ln.startswith("imagen-bench fid: warning: ") for ln in _lines(proc.stderr))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, damage: str, capsys: pytest.CaptureFixture) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_images(good, 10, seed=2)
    bad.mkdir()
    culprit: Path = bad
    if damage != "empty":
        files = write_images(bad, 10, seed=3)
        culprit = files[5]
        data = culprit.read_bytes()
        culprit.write_bytes(b"\x89PNG not really" * 8 if damage == "garbage" else data[: len(data) // 2])
    if damage == "garbage":  # one case as its own process: the exit code and the only stderr line a user sees
        proc = run_cli(str(good), str(bad))
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:  # the others through the same entry point in this process (no torch import per case)
        code, out, err = in_process(["fid", str(good), str(bad)], capsys)
    assert code == 2
    assert out == ""
    (line,) = _lines(err)
    assert line.startswith("imagen-bench fid: error: ") and str(culprit) in line


def test_mode_override_is_recorded(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    folder = tmp_path / "imgs"
    write_images(folder, 4, seed=4, sizes=(64, 64))
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # cli.main replaces it
    cli.main(["fid", str(folder), str(folder), "mode=legacy_tensorflow", "min_images=4", "kid_subsets=3"])
    result = json.loads(_lines(capsys.readouterr().out)[-1])
    assert result["mode"] == "legacy_tensorflow" and "TF1" in result["resize"]
    assert abs(result["fid"]) < 1e-3 and result["kid_subsets"] == 3


def test_too_few_images_bad_mode_and_one_folder_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    write_images(tmp_path / "few", 3, seed=5)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    few = str(tmp_path / "few")
    for args, message in (
        ([few, few], "has 3 image(s); FID needs at least 10"),
        ([few, few, "mode=fast"], "unknown mode 'fast'"),
        ([few], "missing image folder; usage: imagen-bench fid DIR_A DIR_B"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["fid", *args])
        assert exit_info.value.code == 2
        (line,) = _lines(capsys.readouterr().err)
        assert message in line


@pytest.mark.parametrize("path", [AWKWARD, "plain/dir", "trailing\\", "it's", "x=y,z", "a\\'b"])
def test_hydra_quote_round_trips(path: str) -> None:
    (override,) = OverridesParser.create().parse_overrides([f"a={hydra_quote(path)}"])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("fid", overrides=[f"a={hydra_quote(path)}", "b=x"])
    assert cfg.a == path
    assert override.value() in (path, path.replace("${", "\\${"))


def test_translate_args_splits_positionals_from_overrides() -> None:
    args = translate_args(["/data/x=1", "mode=legacy_tensorflow", "rel dir", "batch_size=4", "--cfg", "job"])
    assert args[:2] == [f"a={hydra_quote('/data/x=1')}", f"b={hydra_quote('rel dir')}"]
    assert args[2:] == ["mode=legacy_tensorflow", "batch_size=4", "--cfg", "job"]
    assert translate_args(["a=/x", "b=/y"]) == ["a=/x", "b=/y"]
    with pytest.raises(Exception, match="expected two image folders, got 3"):
        translate_args(["d1", "d2", "d3"])
