"""The new metrics inside the one evaluation pipeline: missing weights stop a run before any image is
generated, and the offline world runs CMMD and precision/recall on a tiny CLIP end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.errors import MissingWeightsError
from harness.evaluation.evaluate import run_benchmark
from harness.formats.results import read_results, read_samples
from tests.helpers.fixtures import tiny_clip_folder
from tests.helpers.tiny_hf import world_images

CONF = str(Path(__file__).resolve().parents[1] / "conf")
NEW = ["cmmd", "fd_dinov2", "prdc_dinov2", "prdc_clip", "pickscore", "hpsv2", "hpsv21", "imagereward"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("world-ref")
    for i, im in enumerate(world_images(24, start=1000)):
        im.save(folder / f"{i:04d}.png")
    return folder


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("eval", overrides=list(overrides))


@pytest.mark.parametrize("metric", NEW)
def test_missing_weights_stop_the_run_before_any_image_is_generated(metric, reference, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    cfg = _compose(
        "benchmark=drawbench",
        "benchmark.categories=[Colors]",
        "benchmark.limit_per_category=1",
        f"+benchmark.reference={{root: {reference}, dataset: world, split: test}}",
        f"benchmark.metrics=[{metric}]",
        "checkpoint=random",
        f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "progress=false",
    )
    run_dir = tmp_path / "runs" / "r"
    with pytest.raises(MissingWeightsError) as err:
        run_benchmark(cfg, run_dir)
    msg = str(err.value)
    assert "hf download" in msg and ".enabled=false" in msg and "\n" not in msg
    assert not (run_dir / "manifest.jsonl").exists() and not list(run_dir.rglob("*.png"))


def _world_images_from(folder: Path, categories: list[str], per_category: int) -> None:
    """The world suite's ground-truth images for a subset, in the ``images_from`` layout."""
    from benchmarks.world.suite import ground_truth_image, read_suite

    seen: dict[str, int] = {}
    for row in read_suite():
        if row["category"] in categories and seen.get(row["category"], 0) < per_category:
            seen[row["category"]] = seen.get(row["category"], 0) + 1
            for seed in range(8):
                (folder / row["id"]).mkdir(parents=True, exist_ok=True)
                ground_truth_image(row, seed, 64).save(folder / row["id"] / f"{seed}.png")


def _world_clip(tmp_path: Path) -> str:
    """The tiny CLIP the world ships when present, else one with random weights of the same kind."""
    from benchmarks.world import tiny_clip

    if (tiny_clip.TINY_CLIP_DIR / tiny_clip.WEIGHTS_NAME).is_file():
        return tiny_clip.MODEL_NAME
    return tiny_clip_folder(tmp_path / "clip")


def test_the_offline_world_runs_cmmd_and_precision_recall_on_a_tiny_clip(reference, tmp_path):
    folder = tmp_path / "world-images"
    _world_images_from(folder, ["colors", "counting"], 2)
    cfg = _compose(
        "benchmark=world",
        "benchmark.categories=[colors,counting]",
        "benchmark.limit_per_category=2",
        f"+benchmark.reference={{root: {reference}, dataset: world, split: test}}",
        "benchmark.metrics=[clip_score,cmmd,prdc_clip]",
        f"clip.model={_world_clip(tmp_path)}",
        "clip.pretrained=",
        "cmmd.model=null",
        "cmmd.pretrained=null",
        "cmmd.n_boot=50",
        "prdc.n_boot=50",
        f"images_from={folder}",
        "checkpoint=random",
        f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "progress=false",
    )
    run_dir = tmp_path / "runs" / "world"
    run_benchmark(cfg, run_dir)
    r = read_results(run_dir)
    overall = r.metrics["overall"]
    assert overall["cmmd"].n == 32 and overall["cmmd"].extra["n_reference"] == 24 and overall["cmmd"].ci_low is not None
    for name in ("recall_clip", "coverage_clip"):
        assert 0 <= overall[name].value <= 1 and overall[name].ci_low <= overall[name].ci_high
    for cat in ("colors", "counting"):  # per-image precision and density are reported per category
        assert r.metrics[cat]["precision_clip"].method in ("wilson", "bootstrap")
        assert r.metrics[cat]["density_clip"].n == 16
    assert r.metric_info["cmmd"].higher_is_better is False and r.metric_info["recall_clip"].per_image is False
    assert r.extractors["cmmd"]["sigma"] == 10.0 and r.extractors["prdc_clip"]["k"] == 5
    assert all("precision_clip" in s and "density_clip" in s for s in read_samples(run_dir))


def test_every_new_metric_declares_version_direction_and_needs():
    from harness.metrics.registry import get_metric

    lower = {"cmmd", "fd_dinov2"}  # distances; every other output is better when higher
    for name in NEW:
        cls = get_metric(name)
        assert cls.version.startswith("imagen-bench-") and cls.outputs and cls.config_key
        assert all(o.higher_is_better is (o.name not in lower) for o in cls.outputs), name
        assert cls.needs == (
            {"images", "prompts"}
            if name in ("pickscore", "hpsv2", "hpsv21", "imagereward")
            else {"images", "reference"}
        )
