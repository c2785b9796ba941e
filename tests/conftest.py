"""Shared fixtures: every test gets its own cache and runs folders, and the hub is never reached."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

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


# --- built once per test run, shared by every module and xdist worker, only read ---------------------------------


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != ".built":
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` run once per test run, whichever worker asks first; the others wait on a file lock.

    Under xdist each worker has its own base temp folder inside one per run (``pytest-N/popen-gwK``), so the
    shared copy lives beside them in ``pytest-N/shared``. A ``.built`` file marks it complete: a worker that
    died while building leaves no marker and the next one starts over.
    """
    base = factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")), pytest.MonkeyPatch.context() as env:
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            # session fixtures start before the per-test isolated_dirs: keep the build's caches in the run's
            # temp folder, never the user's ~/.cache/imagen-bench
            env.setenv("IMAGEN_BENCH_CACHE", str(root / f"{name}.cache"))
            build(folder)
            (folder / ".built").write_text(_digest(folder))
    return folder


def _read_only(folder: Path) -> Iterator[Path]:
    """Yield the shared folder and check after the session that no test changed it (tests run as root here,
    so file modes cannot enforce it)."""
    before = (folder / ".built").read_text()
    yield folder
    assert _digest(folder) == before, f"a test changed the shared {folder.name} (shared fixtures are read-only)"


@pytest.fixture(scope="session")
def micro_cascade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cascade folder of imagen_micro after 3 training steps per stage (non-zero outputs; ~3 s to make)."""
    from tests.helpers.fixtures import trained_micro_cascade

    for folder in _read_only(built_once(tmp_path_factory, "micro_cascade", trained_micro_cascade)):
        yield folder / "cascade"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``clip.model`` value of an open_clip folder with a tiny random CLIP (seed 0)."""
    from tests.helpers.fixtures import tiny_clip_folder

    folder = built_once(tmp_path_factory, "tiny_clip", tiny_clip_folder)
    for path in _read_only(folder):
        yield f"local-dir:{path}"


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
LONGEST = {
    "test_demo": 120,
    "test_raters_concurrency": 60,
    "test_guidance_learning": 90,
    "test_regress": 60,
    "test_eval_coco": 45,
    "test_training": 38,
    "test_drawbench_command": 29,
    "test_runner": 26,
}
