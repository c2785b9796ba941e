"""A reference folder is hashed once: later evaluations read file digests back by (path, size, mtime)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.metrics.extractors.images import image_list_sha256
from imagen import hashing


def test_a_second_listing_hashes_nothing_and_a_changed_file_is_hashed_again(tmp_path: Path, monkeypatch):
    folder = tmp_path / "ref"
    folder.mkdir()
    files = []
    for i in range(30):
        f = folder / f"{i:03d}.png"
        f.write_bytes(bytes([i]) * (100 + i))
        files.append(f)
    read: list[Path] = []
    real_sha = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: (read.append(Path(p)), real_sha(p))[1])
    cache = tmp_path / "cache"
    first = image_list_sha256(files, folder, cache_dir=cache)
    assert len(read) == 30
    read.clear()
    assert image_list_sha256(files, folder, cache_dir=cache) == first and read == []
    # the same size, a new content and mtime: only that file is read again, and the digest follows it
    files[7].write_bytes(bytes([200]) * 107)
    st = files[7].stat()
    os.utime(files[7], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    changed = image_list_sha256(files, folder, cache_dir=cache)
    assert read == [files[7].resolve()] and changed != first
    expect = hashlib.sha256()
    for f in sorted(files):
        expect.update(f"{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert changed == expect.hexdigest()
