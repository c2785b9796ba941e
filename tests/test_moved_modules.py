"""The 0.2 layout keeps the documented Python entry points of 0.1 for one release (README, "Moved modules")."""

from __future__ import annotations

import importlib
import sys

import pytest

ALIASES = [
    ("harness.evaluate", "harness.evaluation.evaluate", ("run_benchmark", "Benchmark")),
    ("harness.generate", "harness.generation.generate", ("generate",)),
]


@pytest.mark.parametrize(("old", "new", "names"), ALIASES, ids=[a[0] for a in ALIASES])
def test_an_old_entry_point_is_the_new_one_and_says_it_moved(old, new, names):
    sys.modules.pop(old, None)  # the warning fires on first import
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        alias = importlib.import_module(old)
    moved = importlib.import_module(new)
    assert all(getattr(alias, n) is getattr(moved, n) for n in names)


def test_nothing_of_ours_imports_an_alias():
    """The aliases are for users' notebooks only: the code and the configs use the new names."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    old = re.compile(r"\bharness[./](evaluate|generate)\b")
    aliases = {repo / "harness" / "evaluate.py", repo / "harness" / "generate.py"}
    hits = [
        str(p.relative_to(repo))
        for part in ("imagen", "harness", "benchmarks", "drawbench", "raters_ui", "reports", "conf", "tests")
        for p in sorted((repo / part).rglob("*"))
        if p.suffix in (".py", ".yaml")
        and p not in aliases
        and p.name != "test_moved_modules.py"
        and p.is_file()
        and old.search(p.read_text(encoding="utf-8"))
    ]
    assert hits == []
