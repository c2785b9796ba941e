"""Every file that a tracked config or code path names is tracked by git.

A commit once left out a file that a config needed: the suite passed on the machine that had the file and
CI failed on its clean clone. Two checks close that class of failure:

* on any checkout: a path named by a string in a tracked config, Python file, Makefile or CI script that
  exists here must not be (or hold) a file git does not track (ignored files are runtime output: fine);
* on a clean clone too: every file a config names outright (a prompt list, a shipped checkpoint, the tiny
  CLIP) exists, so a missing one fails here with its name rather than deep inside another test.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO

PKG_DIR = re.compile(r"\$\{pkg_dir:([\w.]+)\}")
# where a config's relative file names are read from: the repository, and the prompt suites' data folder
BASES = (REPO, REPO / "drawbench" / "data")
SHELL_PATH = re.compile(r"[\w.${}:/-]*/[\w.${}:/-]+")


def _git(*args: str) -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def _yaml_strings(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _yaml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _yaml_strings(value)
    elif isinstance(node, str):
        yield node


def _strings(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.value
    elif path.suffix == ".yaml":
        yield from _yaml_strings(OmegaConf.to_container(OmegaConf.create(text), resolve=False))
    else:
        yield from SHELL_PATH.findall(text)


def _candidates(name: str, source: Path) -> Iterator[Path]:
    """Existing paths inside the repository that ``name`` may mean, read from ``source``."""
    name = PKG_DIR.sub(lambda m: str(REPO / m[1].replace(".", "/")), name.strip()).removeprefix("./")
    if not name or len(name) > 300 or "\n" in name or "://" in name or "*" in name or name in {".", ".."}:
        return
    for base in (*BASES, source.parent):
        try:
            path = (base / name).resolve()
        except (OSError, ValueError):
            continue
        try:
            exists = path.exists()
        except OSError:  # a sentence, not a path (name too long)
            continue
        if exists and path.is_relative_to(REPO) and path != REPO:
            yield path


def _sources(tracked: list[str]) -> list[Path]:
    keep = (".py", ".yaml", ".sh", ".toml")
    return [REPO / f for f in tracked if f.endswith(keep) or f in ("Makefile",) or f.startswith(".ci/")]


def test_no_named_path_is_an_untracked_file():
    tracked = _git("ls-files")
    untracked = {REPO / f for f in _git("ls-files", "--others", "--exclude-standard")}
    untracked_dirs = {p for f in untracked for p in f.parents}
    missing: set[str] = set()
    for source in _sources(tracked):
        if not source.is_file():
            continue
        for name in _strings(source):
            for path in _candidates(name, source):
                if path in untracked or (path.is_dir() and path in untracked_dirs):
                    missing.add(f"{source.relative_to(REPO)} names {path.relative_to(REPO)}")
    assert not missing, "named but not tracked (git add them): " + "; ".join(sorted(missing))


def _config_files(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, value) of config entries that name a file or folder the project ships."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _config_files(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _config_files(v, key)
    elif isinstance(node, str) and (PKG_DIR.search(node) or key == "file"):
        yield key, node


def test_every_file_a_config_names_exists():
    configs = sorted((REPO / "conf").rglob("*.yaml"))
    named = [
        (c, k, v) for c in configs for k, v in _config_files(OmegaConf.to_container(OmegaConf.load(c), resolve=False))
    ]
    assert len(named) > 20  # the prompt suites' files, the shipped checkpoints, the tiny CLIP: the check bites
    absent = [f"{c.relative_to(REPO)}: {k}={v!r}" for c, k, v in named if not any(_candidates(v, c))]
    assert not absent, "named by a config but not in this checkout (is it committed?): " + "; ".join(absent)
