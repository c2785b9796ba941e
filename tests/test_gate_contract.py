"""The gate's contract with every metric output, built from the registry (not a list here).

For each registered output, two synthetic runs hold that output alone (so none of them leans on FID being
there): per-image values in ``samples.jsonl``, or for a set output its features in ``features/`` and the
reference in the cache, with the number each run reports computed by the metric's own statistic. The gate
must judge a run against itself as improvement 0 and pass; and a degraded candidate with improvement =
±(candidate − baseline) by the output's direction, inside its interval, negative, and failing. A set
metric written in this file shows that a new one needs a class and a registry line, not a gate change.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.cli import main as cli
from harness.evaluation.scoring import aggregate
from harness.formats.manifest import ImageRecord
from harness.formats.results import Results, write_results
from harness.formats.values import OutputInfo
from harness.formats.verdict import read_verdict
from harness.gate.regress import build_verdict
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores, SetStatistic, SetValue
from harness.metrics.extractors.feature_spaces import save_features
from harness.metrics.extractors.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey
from harness.metrics.maths.set_statistics import FrechetStatistic
from harness.metrics.registry import METRICS, get_metric, register_metric

STAGE, PROMPTS, SEEDS, CATEGORIES = "base32", 16, 2, ("Colors", "Counting")
FEATURES = "synthetic-space"
OPTS = {"n_boot": 400, "n_boot_sets": 60, "seed": 0, "level": 0.95}


class MeanShiftStatistic(SetStatistic):
    """‖mean(generated) − mean(reference)‖: a set output simple enough to check by hand."""

    def __init__(self, generated: np.ndarray, reference: np.ndarray) -> None:
        self.x, self.mu = generated, reference.mean(axis=0)

    def value(self) -> float:
        return float(np.linalg.norm(self.x.mean(axis=0) - self.mu))

    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([np.linalg.norm(self.x[idx].mean(axis=0) - self.mu) for idx in index_sets])


@register_metric()
class MeanShift(Metric):
    """A user's set metric: one class and the decorator; the gate, report and study analysis unchanged."""

    name = "test_mean_shift"
    version = "test-mean-shift/1"
    outputs = (Output("mean_shift", higher_is_better=False, per_image=False, max_worse=0.1),)
    needs = frozenset({"images", "reference"})

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:  # pragma: no cover - not run here
        raise NotImplementedError

    @classmethod
    def set_statistic(cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Any) -> SetStatistic:
        return MeanShiftStatistic(generated, reference.feats)


ALL_OUTPUTS = [(name, o) for name in sorted(METRICS) for o in get_metric(name).outputs]


def _records() -> list[ImageRecord]:
    return [
        ImageRecord(f"p{p:02d}", f"prompt {p}", s, STAGE, 32, f"images/p{p:02d}-{s}.png", "0" * 64, CATEGORIES[p % 2])
        for p in range(PROMPTS)
        for s in range(SEEDS)
    ]


def _per_image(o: Output, rng: np.random.Generator, n: int) -> np.ndarray:
    lo, hi = o.bounds or (0.0, 1.0)
    if o.kind == "binary":
        return (rng.random(n) < 0.6).astype(float)
    if o.kind == "bounded":
        return lo + (hi - lo) * rng.uniform(0.3, 0.7, n)
    return rng.normal(50.0, 5.0, n) if o.bounds else rng.normal(10.0, 2.0, n)


def _degraded(o: Output, base: np.ndarray) -> np.ndarray:
    """Worse in the output's direction: 70% of the good binary outcomes flipped, else a shift of 0.2 of the range."""
    sign = 1.0 if o.higher_is_better else -1.0
    if o.kind == "binary":
        good = 1.0 if o.higher_is_better else 0.0
        out, idx = base.copy(), np.flatnonzero(base == good)
        out[idx[: int(0.7 * len(idx))]] = 1.0 - good
        return out
    lo, hi = o.bounds or (0.0, 20.0)
    return base - sign * 0.2 * (hi - lo)


def _info(metric_name: str, o: Output, ref_key: StatsKey) -> OutputInfo:
    cls = get_metric(metric_name)
    info = {"metric": cls.name, "entry": metric_name, "version": cls.version, **o.describe()}
    if not o.per_image:
        options = cls.from_config(MetricEnv(OmegaConf.create({}), progress=False)).set_options(o.name)
        info["set"] = {"features": FEATURES, "reference": ref_key.as_dict(), "options": options}
    return OutputInfo.from_json(info)


def _write_run(
    run_dir: Path, o: Output, info: OutputInfo, values: np.ndarray | None, feats: np.ndarray | None, ref: FeatureStats
) -> None:
    records, per_image, sets = _records(), {}, {}
    if o.per_image:
        per_image = {o.name: {(STAGE, r.sample_key): float(v) for r, v in zip(records, values)}}
    else:
        save_features(ImageSet(run_dir, STAGE, records), feats, FEATURES, "f" * 64)
        stat = get_metric(info.registry_name).set_statistic(o.name, feats, ref, info.set.options)
        sets = {(STAGE, o.name): SetValue(stat.value(), n=len(records))}
    table = aggregate(records, [STAGE], [o], per_image, sets, group_by="category", category_order=CATEGORIES)
    samples = [
        {
            "prompt_id": r.prompt_id,
            "seed": r.seed,
            "stage": STAGE,
            "category": r.category,
            **({o.name: float(v)} if o.per_image else {}),
        }
        for r, v in zip(records, values if o.per_image else [None] * len(records))
    ]
    results = Results(
        run_id=run_dir.name,
        task="eval",
        suite="world",
        benchmark={"stages": [STAGE]},
        table=table.table,
        metrics=table.values,
        model={},
        seeds={"image_seeds": list(range(SEEDS))},
        prompts={"sha256": "synthetic"},
        extractors={},
        config={},
        environment={},
        metric_info={o.name: info},
    )
    write_results(run_dir, results, samples)


def _runs(tmp_path: Path, metric_name: str, o: Output) -> tuple[Path, Path, Path, Path]:
    """(cache, baseline, same, degraded) run folders for one output."""
    rng = np.random.default_rng(zlib.crc32(o.name.encode()))  # not hash(): salted per process
    cache = tmp_path / "cache"
    ref_feats = rng.normal(size=(48, 8))
    ref = FeatureStats.from_features(ref_feats)
    key = StatsKey("synthetic", "test", "0" * 64, 48, "32x32", FEATURES, "f" * 64)
    ReferenceStatsCache(cache).put(key, ref)
    info = _info(metric_name, o, key)
    n = PROMPTS * SEEDS
    base_v = _per_image(o, rng, n) if o.per_image else None
    base_f = None if o.per_image else rng.normal(size=(n, 8))
    dirs = [tmp_path / rid for rid in ("baseline", "same", "degraded")]
    _write_run(dirs[0], o, info, base_v, base_f, ref)
    _write_run(dirs[1], o, info, base_v, base_f, ref)
    worse_v = _degraded(o, base_v) if o.per_image else None
    worse_f = None if o.per_image else base_f + 2.0  # the whole set moved off the reference
    _write_run(dirs[2], o, info, worse_v, worse_f, ref)
    return cache, *dirs


def _verdict(cache: Path, a: Path, b: Path):
    from harness.formats.results import read_results

    return build_verdict(read_results(a), read_results(b), (a, b), {}, {**OPTS, "cache_dir": str(cache)}, {})


@pytest.mark.parametrize(("metric_name", "output"), ALL_OUTPUTS, ids=[o.name for _, o in ALL_OUTPUTS])
def test_every_output_is_judged_by_its_own_numbers(tmp_path, metric_name, output):
    assert output.max_worse is not None, f"{output.name} declares no default tolerance (Output.max_worse)"
    cache, base, same, worse = _runs(tmp_path, metric_name, output)
    itself = _verdict(cache, base, same)
    assert itself.overall == "pass" and itself.rows
    assert all(r.improvement == 0.0 and r.verdict == "pass" for r in itself.rows)
    assert itself.thresholds[output.name] == {"max_worse": output.max_worse, "source": "default"}

    degraded = _verdict(cache, base, worse)
    sign = 1.0 if output.higher_is_better else -1.0
    for row in degraded.rows:
        assert row.improvement == pytest.approx(sign * (row.candidate - row.baseline), rel=1e-12, abs=1e-15)
        assert row.ci_low <= row.improvement <= row.ci_high, row
    overall = next(r for r in degraded.rows if r.group == "overall")
    assert overall.improvement < 0 and overall.verdict == "fail" and degraded.overall == "fail"
    if not output.per_image:  # the statistic rebuilt from the kept features is the metric's, not another's
        assert overall.method == "paired bootstrap over prompts" and overall.n_prompts == PROMPTS


def test_a_user_set_metric_needs_no_gate_change(tmp_path):
    cache, base, _, worse = _runs(tmp_path, "test_mean_shift", MeanShift.outputs[0])
    row = _verdict(cache, base, worse).rows[0]
    assert row.baseline < 1.0 < row.candidate and row.verdict == "fail"  # moved by 2.0 in each of 8 dims
    assert row.candidate - row.baseline == pytest.approx(-row.improvement)


def test_a_user_set_metric_needs_no_report_change(tmp_path):
    """The same one-class metric in the comparison report: its label, direction and both runs' values."""
    from harness.formats.results import read_results
    from reports.command import make_report

    _, base, _, worse = _runs(tmp_path, "test_mean_shift", MeanShift.outputs[0])
    written = make_report([str(base), str(worse)], tmp_path / "report")
    md = written.markdown.read_text(encoding="utf-8")
    values = [read_results(d).metrics["overall"]["mean_shift"].value for d in (base, worse)]
    assert "| run | mean_shift ↓ |" in md  # its own table in Runs (one per metric family), direction from metric_info
    for run, value in zip(("baseline", "degraded"), values):
        assert md.count(f"| {run} | {value:.3f} n=32 |") == 2  # its row at a glance and in the mean_shift table
    assert "per category" not in md  # overall values only: no bar chart of one group, the Runs table has them


def test_a_run_whose_features_do_not_reproduce_its_number_is_refused(tmp_path):
    import json

    cache, base, same, _ = _runs(tmp_path, "cmmd", get_metric("cmmd").outputs[0])
    path = same / "results.json"
    data = json.loads(path.read_text())
    data["metrics"]["overall"]["cmmd"]["value"] *= 1.5  # what a gate mixing up metrics would have compared
    path.write_text(json.dumps(data))
    from harness.errors import UserError

    with pytest.raises(UserError, match="cmmd: the features kept in run same give"):
        _verdict(cache, base, same)


def test_thresholds_for_any_output_from_the_command_line(tmp_path, capsys):
    cache, base, _, worse = _runs(tmp_path, "cmmd", get_metric("cmmd").outputs[0])
    common = [
        "regress",
        "benchmark=world",
        f"baseline={base}",
        f"candidate={worse}",
        f"paths.cache_dir={cache}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        "n_boot_sets=30",
    ]

    def run(*extra: str) -> tuple[int, str]:
        try:
            cli([*common, *extra])
            code = 0
        except SystemExit as err:
            code = int(err.code or 0)
        return code, capsys.readouterr().err

    code, err = run("run_id=loose", "thresholds.cmmd.max_worse=1000")  # no '+' needed for any output
    assert code == 0, err
    assert read_verdict(tmp_path / "runs" / "loose").thresholds["cmmd"] == {"max_worse": 1000.0, "source": "given"}
    code, err = run("run_id=lacks", "thresholds.fid.max_worse=1")  # registered, but these runs have no FID
    assert code == 2 and "thresholds name fid, which runs baseline and degraded do not both report" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs" / "lacks" / "verdict.json").exists()
    code, err = run("run_id=typo", "thresholds.cmdd.max_worse=1")
    assert code == 2 and "cmdd" in err and "no registered metric" in err


def test_frechet_statistic_is_the_one_fid_and_fd_dinov2_resample():
    assert (
        get_metric("fd_dinov2").set_statistic("fd_dinov2", np.zeros((3, 2)), None, {}).__class__
        is FrechetStatistic
        is get_metric("fid").set_statistic("fid", np.zeros((3, 2)), None, {}).__class__
    )
