"""The session fixtures of tests/conftest.py: built once per test run whichever worker asks, rebuilt when a
build never finished, and a test that changes what it was given fails the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _read_only, built_once


def test_a_shared_folder_is_built_once_and_rebuilt_only_when_unfinished(tmp_path_factory, micro_cascade):
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / "data.txt").write_text("x")

    first = built_once(tmp_path_factory, "counted", build)
    assert built_once(tmp_path_factory, "counted", build) == first and len(calls) == 1
    (first / ".built").unlink()  # a worker died mid-build: no marker
    (first / "stale.txt").write_text("half")
    assert built_once(tmp_path_factory, "counted", build) == first and len(calls) == 2
    assert not (first / "stale.txt").exists()  # started over, not built on top of the half-made folder
    assert sorted(p.name for p in micro_cascade.iterdir()) == ["base16.safetensors", "sr32.safetensors"]


def test_a_test_that_changes_a_shared_folder_is_caught(tmp_path_factory):
    folder = built_once(tmp_path_factory, "guarded", lambda f: (f.mkdir(parents=True), (f / "a").write_text("1")))
    guard = _read_only(folder)
    next(guard)
    (folder / "a").write_text("2")
    with pytest.raises(AssertionError, match="a test changed the shared guarded"):
        next(guard)
