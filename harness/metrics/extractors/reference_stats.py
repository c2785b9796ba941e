"""Cache of Inception statistics of reference image sets, under ``<cache_dir>/fid-stats/``.

A set's statistics are a pure function of what made them, so that is the key: dataset, split,
the image list hash (paths and contents), count, resolution, resize mode and the extractor's
sha256 (plus a format version). Each entry is two files named by the key's sha256:

    <digest>.npz    mu (d,), sigma (d, d) as float64; feats (n, d) float32 when kept, for KID
    <digest>.json   the key, the npz's sha256 and a creation time, written last

The JSON marks an entry complete (both files are written to a temporary name and renamed), and
a read verifies that the stored key equals the wanted key and that the npz hash matches, so a
hash collision, a torn write or an edited file reads as a miss and is recomputed. Unlike clean-fid,
nothing is ever written inside site-packages.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.formats.files import atomic_write_bytes
from harness.metrics.maths.frechet import feature_stats
from imagen.hashing import default_cache_dir

STATS_VERSION = 1
STATS_DIR = "fid-stats"


@dataclass(frozen=True)
class StatsKey:
    """Everything that determines a set's statistics."""

    dataset: str  # e.g. "coco2014", or "folder" for an ad-hoc folder
    split: str  # e.g. "val2014"; "" when not applicable
    image_list_sha256: str  # harness.metrics.extractors.images.image_list_sha256 of the files
    count: int
    resolution: str  # size the images were fed at before the mode's resize, e.g. "256x256" or "mixed"
    mode: str  # clean | legacy_tensorflow: the resize mode
    extractor_sha256: str
    version: int = STATS_VERSION

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


@dataclass
class FeatureStats:
    """Gaussian statistics of a feature set (and the features, for KID, when kept)."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int
    feats: np.ndarray | None = None

    @classmethod
    def from_features(cls, feats: np.ndarray, keep_features: bool = True) -> FeatureStats:
        mu, sigma = feature_stats(feats)
        kept = np.asarray(feats, dtype=np.float32) if keep_features else None  # the network's own precision
        return cls(mu=mu, sigma=sigma, count=len(feats), feats=kept)


class ReferenceStatsCache:
    """``get``/``put``/``get_or_compute`` over ``<cache_dir>/fid-stats``."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.root = self.cache_dir / STATS_DIR

    def paths(self, key: StatsKey) -> tuple[Path, Path]:
        digest = key.digest()
        return self.root / f"{digest}.npz", self.root / f"{digest}.json"

    def get(self, key: StatsKey) -> FeatureStats | None:
        """The cached statistics, or None when absent or failing verification."""
        npz_path, meta_path = self.paths(key)
        if not meta_path.is_file() or not npz_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            data = npz_path.read_bytes()
        except (OSError, json.JSONDecodeError):
            return None
        if meta.get("key") != key.as_dict():
            return None  # another key with the same digest: never return someone else's stats
        if meta.get("npz_sha256") != hashlib.sha256(data).hexdigest():
            warnings.warn(f"reference statistics {npz_path} fail their checksum; recomputing", stacklevel=2)
            return None
        with np.load(io.BytesIO(data)) as z:
            feats = z["feats"] if "feats" in z.files else None
            return FeatureStats(mu=z["mu"], sigma=z["sigma"], count=int(z["count"]), feats=feats)

    def put(self, key: StatsKey, stats: FeatureStats) -> Path:
        if stats.count != key.count:
            raise ValueError(f"stats hold {stats.count} images but the key says {key.count}")
        buf = io.BytesIO()
        arrays = {"mu": stats.mu, "sigma": stats.sigma, "count": np.int64(stats.count)}
        if stats.feats is not None:
            arrays["feats"] = stats.feats
        np.savez(buf, **arrays)
        data = buf.getvalue()
        npz_path, meta_path = self.paths(key)
        atomic_write_bytes(npz_path, data)
        meta = {"key": key.as_dict(), "npz_sha256": hashlib.sha256(data).hexdigest(), "created": time.time()}
        atomic_write_bytes(meta_path, (json.dumps(meta, indent=1) + "\n").encode())
        return npz_path

    def get_or_compute(
        self, key: StatsKey, compute: Callable[[], FeatureStats], need_features: bool = False
    ) -> tuple[FeatureStats, bool]:
        """(stats, hit): cached stats when present (and holding features if needed), else computed and stored.

        Computing holds an exclusive lock on the entry, so evaluations running side by side (a demo's two
        checkpoints, a sweep's points, a cluster's jobs on a shared cache) compute a reference once: the
        others wait and read it.
        """

        def usable(cached: FeatureStats | None) -> bool:
            return cached is not None and (cached.feats is not None or not need_features)

        cached = self.get(key)
        if usable(cached):
            return cached, True
        # the lock lives beside the entries' folder, so that folder only ever holds finished entries
        with _exclusive(self.root.parent / "locks" / f"{self.root.name}-{key.digest()}.lock"):
            cached = self.get(key)  # another process may have written it while we waited
            if usable(cached):
                return cached, True
            stats = compute()
            self.put(key, stats)
        return stats, False


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An advisory lock held across processes (POSIX ``flock``; where there is none, no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover — not POSIX: entries are still written atomically
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
