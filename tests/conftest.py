"""Shared fixtures: every test gets its own cache and runs folders, and the hub is never reached."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread per xdist worker (and per command a test starts, through the environment): `make test`
# runs one worker per core, and two workers each spinning two OpenMP threads on two cores ran the training and
# guidance tests 2.5x slower than one thread each. Generation pins its own threads (threads=1) regardless.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long tests first (those marked ``slow``, longest known first), then the rest in file order.

    With ``make test``'s ``--maxschedchunk=2`` xdist hands tests out two at a time in this order, so the long
    ones start at once on both workers and the short ones fill in around them, instead of one long test
    starting last and running alone (longest-processing-time-first scheduling).
    """
    def cost(item: pytest.Item) -> tuple[int, int]:
        if item.get_closest_marker("slow") is None:
            return (1, 0)
        return (0, -LONGEST.get(item.module.__name__.rpartition(".")[2], 0))

    items.sort(key=cost)  # stable: file order within each class


# Seconds of the longest test of each module on the AVX-512 VM under the suite's load (--durations): the
# order in which slow modules start. Approximate on purpose; a missing module only starts later.
LONGEST = {"test_demo": 120, "test_raters_concurrency": 60, "test_guidance_learning": 90, "test_regress": 60,
           "test_eval_coco": 45, "test_training": 38, "test_drawbench_command": 29, "test_runner": 26}
