"""Metrics by registry: a new metric is one class plus one line in a benchmark config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from drawbench.fakes import write_external_folder
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.evaluation.evaluate import run_benchmark
from harness.formats.files import open_rgb
from harness.formats.results import read_results, read_samples
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.metrics.registry import METRICS, get_metric, plan_metrics, register_metric

CONF = str(Path(__file__).resolve().parents[1] / "conf")
SUITE = dict(categories=["Colors", "Text"], limit_per_category=2)


@pytest.fixture
def toy_metric():
    @register_metric()
    class Brightness(Metric):
        """Mean pixel value in [0, 1]; lower is better (a toy: it exists only in this test)."""

        name = "toy_brightness"
        version = "toy-brightness/3"
        outputs = (Output("brightness", higher_is_better=False, kind="bounded", bounds=(0.0, 1.0)),)

        def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
            values = {
                r.sample_key: float(np.asarray(open_rgb(p)).mean() / 255)
                for r, p in zip(images.records, images.paths())
            }
            return Scores(per_image={"brightness": values})

    yield Brightness
    METRICS.unregister("toy_brightness")


def _cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                "benchmark=drawbench",
                "benchmark.categories=[Colors,Text]",
                "benchmark.limit_per_category=2",
                "checkpoint=random",
                f"paths.runs_dir={tmp_path / 'runs'}",
                "progress=false",
                *overrides,
            ],
        )


def test_a_metric_registered_in_a_test_lands_in_results_with_direction_and_version(tmp_path, toy_metric):
    folder = tmp_path / "ext"
    write_external_folder(folder, load_suite("drawbench", **SUITE))
    cfg = _cfg(tmp_path, f"images_from={folder}", "benchmark.metrics=[ocr,toy_brightness]")
    run_dir = tmp_path / "runs" / "toy"
    run_benchmark(cfg, run_dir, task="eval")
    r = read_results(run_dir)
    assert r.metric_info["brightness"].to_json() == {
        "metric": "toy_brightness",
        "entry": "toy_brightness",
        "version": "toy-brightness/3",
        "higher_is_better": False,
        "kind": "bounded",
        "per_image": True,
        "bounds": [0.0, 1.0],
        "label": "brightness",
        "unit": None,
    }
    assert r.metric_info["ocr_exact_match"].higher_is_better is True
    colors = r.metrics["Colors"]["brightness"]
    assert 0 < colors.value < 1 and colors.method == "bootstrap" and colors.n == 16
    assert colors.ci_low <= colors.value <= colors.ci_high
    assert "ocr_exact_match" in r.metrics["Text"] and "ocr_exact_match" not in r.metrics["Colors"]
    samples = read_samples(run_dir)
    assert len(samples) == 32 and all(0 < s["brightness"] < 1 for s in samples)


def test_disabled_metric_is_recorded_as_skipped(tmp_path, toy_metric):
    cfg = _cfg(tmp_path, "clip.enabled=false", "benchmark.metrics=[clip_score,toy_brightness]")
    plan = plan_metrics(cfg.benchmark.metrics, MetricEnv(cfg), {"images", "prompts"})
    assert [m.name for m in plan.active] == ["toy_brightness"]
    assert plan.skipped == {"clip_score": "disabled (clip.enabled=false)"}


def test_unknown_duplicate_and_unprovided_metrics_are_refused(tmp_path):
    cfg = _cfg(tmp_path)
    env = MetricEnv(cfg)
    with pytest.raises(UserError, match="unknown metric 'fidd'"):
        plan_metrics(["fidd"], env, {"images"})
    with pytest.raises(UserError, match="twice"):
        plan_metrics(["ocr", "ocr"], env, {"images", "prompts"})
    with pytest.raises(UserError, match=r"'fid' needs \['reference'\]"):
        plan_metrics(["fid"], env, {"images", "prompts"})
    with pytest.raises(UserError, match="cannot be imported"):
        get_metric("nowhere.module:Metric")


def test_builtin_metrics_declare_direction_and_version():
    for name in ("fid", "kid", "clip_score", "ocr"):
        cls = get_metric(name)
        assert cls.version and cls.outputs
        assert all(isinstance(o.higher_is_better, bool) for o in cls.outputs)
    assert get_metric("fid").outputs[0].higher_is_better is False
    assert get_metric("harness.metrics.clip_score:ClipScore").name == "clip_score"
