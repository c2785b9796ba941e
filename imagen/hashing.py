"""Content hashes that identify weights, data and code in result files.

Hashing multi-GB weight files on every run is slow, so file digests are memoised in
``<cache_dir>/file-hashes.json`` keyed by (real path, size, mtime): a changed file gets a
new digest, an unchanged one is read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imagen.files import atomic_write_text

if TYPE_CHECKING:  # torch is imported only where tensors are hashed: the rater UI uses this module too
    import torch

HASH_MEMO = "file-hashes.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get("IMAGEN_BENCH_CACHE", Path.home() / ".cache" / "imagen-bench"))


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_files_cached(paths: Iterable[str | Path], cache_dir: str | Path | None = None) -> list[str]:
    """sha256 of each file, memoised by (realpath, size, mtime_ns) in the cache folder.

    The memo is read once and written once per call (only when something was hashed), so a 40K-image
    reference folder costs one pass of ``stat`` calls after its first evaluation, not 40K re-hashes.
    """
    memo_path = Path(cache_dir or default_cache_dir()) / HASH_MEMO
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, json.JSONDecodeError):
        memo = {}
    out, changed = [], False
    for path in paths:
        real = Path(path).resolve()
        st = real.stat()
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        if key not in memo:
            memo[key], changed = sha256_file(real), True
        out.append(memo[key])
    if changed:
        atomic_write_text(memo_path, json.dumps(memo, indent=0))
    return out


def file_sha256_cached(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """sha256 of one file through the memo of :func:`sha256_files_cached`."""
    return sha256_files_cached([path], cache_dir)[0]


def files_sha256(paths: Iterable[str | Path], cache_dir: str | Path | None = None) -> str:
    """One digest over several files (sorted by name), e.g. sharded weights."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        h.update(file_sha256_cached(p, cache_dir).encode())
    return h.hexdigest()


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Digest of tensor names, dtypes, shapes and bytes, independent of dict order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def git_revision(repo: str | Path | None = None) -> str | None:
    """Commit hash of the code (with '+dirty' when the work tree differs), or None outside git."""
    cwd = str(repo or Path(__file__).resolve().parents[1])
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")
