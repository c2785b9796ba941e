"""The layout is the architecture: the rater UI and reports never import model code or torch."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOWED_FROM_IMAGEN = {"imagen.hashing"}  # torch-free content hashing shared with result files


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ui_and_reports_source_never_imports_model_code():
    for folder in ("raters_ui", "reports"):
        for path in (REPO / folder).rglob("*.py"):
            for name in imported_modules(path):
                assert not name.startswith(("torch", "torchvision", "open_clip", "transformers")), (path, name)
                if name == "imagen" or name.startswith("imagen."):
                    assert name in ALLOWED_FROM_IMAGEN, (path, name)


def test_importing_the_ui_loads_no_torch():
    modules = [p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
               for p in (REPO / "raters_ui").glob("*.py") if p.name != "app.py"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
