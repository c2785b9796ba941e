"""Reading the project's versioned JSON files with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError


def read_versioned_json(path: Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object at ``path`` after checking its ``format`` and ``version`` fields."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a valid {what} ({err})") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise UserError(f"{path} is not a {what} (format must be {fmt!r})")
    if raw.get("version") != version:
        raise UserError(f"{path} has {what} version {raw.get('version')!r}; this build reads {version}")
    return raw
