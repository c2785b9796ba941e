"""Shared fixtures: every test gets its own cache and runs folders, and the hub is never reached."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
ON_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    monkeypatch.setenv("IMAGEN_BENCH_CACHE", str(cache))
    monkeypatch.setenv("IMAGEN_BENCH_RUNS", str(runs))
    return {"cache": cache, "runs": runs}


def _skip_or_fail(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: `make test` must provide it)")
    pytest.skip(reason)


def require_postgres(host: str = "127.0.0.1", port: int = 5432) -> str:
    """URL of the test database, or skip (fail on CI) when PostgreSQL is not reachable."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        _skip_or_fail(f"PostgreSQL is not reachable on {host}:{port}")
    return f"postgresql+psycopg://postgres@{host}:{port}/test"


def require_chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not path:
        _skip_or_fail("Debian chromium is not installed at /usr/bin/chromium")
    return path  # type: ignore[return-value]
