"""Reading the project's versioned JSON files with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError


def read_versioned_json(path: Path, fmt: str, version: int | tuple[int, ...], what: str) -> dict[str, Any]:
    """The JSON object at ``path`` after checking its ``format`` and ``version`` (one, or the ones still read)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a valid {what} ({err})") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise UserError(f"{path} is not a {what} (format must be {fmt!r})")
    versions = version if isinstance(version, tuple) else (version,)
    if raw.get("version") not in versions:
        readable = " and ".join(str(v) for v in versions)
        raise UserError(f"{path} has {what} version {raw.get('version')!r}; this build reads {readable}")
    return raw


def in_folder(path: str | Path, name: str) -> Path:
    """``path``, or the file ``name`` inside it when ``path`` is a folder (a run folder holding its results)."""
    path = Path(path)
    return path / name if path.is_dir() else path


def read_jsonl_objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; a line that is not a JSON object is one
    ``UserError`` naming ``path:line``."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{n}: not JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        out.append((n, obj))
    return out
