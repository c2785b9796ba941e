"""The layout is the architecture: one table of allowed imports between our packages, checked over every
module, so an import against the layers fails CI (and the UI and reports never load model code)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARTS = ("imagen", "harness", "benchmarks", "drawbench", "raters_ui", "reports")
# part -> the parts (or modules) it may import; everything not listed is refused. DEVELOPERS.md shows
# the same table. The model layer imports nothing of ours; the UI and reports only the low shared
# modules of the harness (formats, errors, the Hydra command wrapper, intervals) and each other's analysis.
ALLOWED: dict[str, tuple[str, ...]] = {
    "imagen": (),
    "harness": ("imagen",),
    "drawbench": ("harness", "imagen"),
    # the rater-app benchmarks start the app and build synthetic studies the way the tests do
    "benchmarks": (
        "harness",
        "imagen",
        "drawbench",
        "raters_ui.stats",
        "raters_ui.commands",
        "raters_ui.db",
        "raters_ui.synthetic",
    ),
    "raters_ui": (
        "harness.errors",
        "harness.formats",
        "harness.cli.hydra_app",
        "harness.metrics.maths.intervals",
        "harness.registry",
        "harness.validation",
    ),
    "reports": (
        "harness.errors",
        "harness.formats",
        "harness.cli.hydra_app",
        "harness.metrics.maths.intervals",
        "harness.validation",
        "raters_ui.admin",
        "raters_ui.agreement",
        "raters_ui.analysis",
        "raters_ui.db",
        "raters_ui.stats",
        "raters_ui.ratings",
        "raters_ui.studies",
    ),
}
MODEL_LIBRARIES = ("torch", "torchvision", "open_clip", "transformers")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(root: Path = REPO) -> list[str]:
    """Every import from one of our packages into another that the table does not allow."""
    found = []
    for part in PARTS:
        for path in sorted((root / part).rglob("*.py")):
            for name in sorted(imported_modules(path)):
                top = name.split(".")[0]
                if top not in PARTS or top == part:
                    continue
                if not any(name == a or name.startswith(a + ".") for a in ALLOWED[part]):
                    found.append(f"{path.relative_to(root)} imports {name}")
            if part in ("raters_ui", "reports"):
                found += [
                    f"{path.relative_to(root)} imports {n}"
                    for n in imported_modules(path)
                    if n.split(".")[0] in MODEL_LIBRARIES
                ]
    return found


def test_every_import_between_parts_is_allowed_by_the_table():
    assert violations() == []


def test_the_table_has_no_cycle():
    edges = {p: {a.split(".")[0] for a in ALLOWED[p]} - {p} for p in PARTS}

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    assert not [p for p in PARTS if reaches(p, p)]


def test_a_wrong_import_is_caught(tmp_path):
    """The check is not vacuous: a model-layer module importing the harness is reported."""
    for part in PARTS:
        (tmp_path / part).mkdir()
    (tmp_path / "imagen" / "bad.py").write_text("from harness.errors import UserError\n")
    (tmp_path / "raters_ui" / "bad.py").write_text("import torch\nfrom harness.generation.generate import generate\n")
    assert violations(tmp_path) == [
        "imagen/bad.py imports harness.errors",
        "raters_ui/bad.py imports harness.generation.generate",
        "raters_ui/bad.py imports torch",
    ]


def test_commands_never_import_each_other():
    from harness.cli import COMMANDS

    modules = {spec.target.split(":")[0] for spec in COMMANDS.values()}
    for module in modules:
        path = REPO / (module.replace(".", "/") + ".py")
        others = {n for n in imported_modules(path) if n in modules and n != module}
        assert not others, f"{module} imports the command module(s) {sorted(others)}"


@pytest.mark.parametrize("part", ["raters_ui", "reports"])
def test_importing_the_ui_and_reports_loads_no_torch(part):
    modules = [
        p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
        for p in (REPO / part).rglob("*.py")
        if p.name != "app.py" and "migrations" not in p.parts
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip', 'transformers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
