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
