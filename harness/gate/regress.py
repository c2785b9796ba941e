"""The regression gate behind ``imagen-bench regress``: two evaluated runs → one row per metric and group.

:func:`compare_runs` reads the two runs' ``results.json`` and ``samples.jsonl`` (and, for set outputs, the
features each run keeps and the cached reference features), refuses runs that are not
comparable — other prompts, seeds, metric versions, reference statistics or scoring layout, naming the
difference — and returns a :class:`~harness.formats.verdict.Verdict`. The statistics are in
:mod:`harness.gate.compare`; this module only lines the two runs up. It never knows which metric it gates: a
per-image output is paired image by image from ``samples.jsonl``; a set output is rebuilt, through its
metric's :meth:`~harness.metrics.base.Metric.set_statistic`, from the features and reference its
``results.json`` recorded (``metric_info.<output>.set``), checked to reproduce the reported number, and
resampled on the same prompts for both runs.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.formats.results import Results, read_samples
from harness.formats.values import OutputInfo, SetInputs
from harness.formats.verdict import EXIT_CODES, Verdict, VerdictRow, overall_verdict
from harness.gate.compare import (
    Difference,
    decide,
    group_seed,
    paired_mean_difference,
    paired_set_difference,
    prompts_to_decide,
)
from harness.metrics.base import Metric, SetStatistic
from harness.metrics.extractors.feature_spaces import load_features
from harness.metrics.extractors.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey
from harness.metrics.registry import METRICS, get_metric

#: How closely a set output rebuilt from the kept (float32) features must match the number the run reported.
REPRODUCE_RTOL = 1e-4


def check_comparable(base: Results, cand: Results) -> None:
    """Refuse two runs that did not score the same thing the same way, naming what differs."""
    checks = [
        ("benchmark", base.suite, cand.suite),
        ("prompts (sha256 of ids and texts)", base.prompts.get("sha256"), cand.prompts.get("sha256")),
        ("seeds", base.seeds, cand.seeds),
        ("scoring layout", _layout(base), _layout(cand)),
        ("interval unit", base.table.ci_unit, cand.table.ci_unit),
    ]
    for what, a, b in checks:
        if a != b:
            raise UserError(
                f"runs {base.run_id} and {cand.run_id} differ in {what} ({_short(a)} vs {_short(b)}); "
                "a regression test compares the same prompts and seeds scored the same way"
            )
    for out in sorted(set(base.metric_info) & set(cand.metric_info)):
        a, b = base.metric_info[out], cand.metric_info[out]
        if a.version != b.version:
            raise UserError(
                f"{out} was computed by metric version {a.version} in {base.run_id} but {b.version} in {cand.run_id}"
            )
        if a.set != b.set:  # features, reference set or options of a set output
            raise UserError(
                f"runs {base.run_id} and {cand.run_id} computed {out} from other features, reference "
                f"or options ({_short(a.set)} vs {_short(b.set)})"
            )


def _layout(r: Results) -> tuple[Any, ...]:
    return r.table.group_by, r.table.stage, [(row.group, row.stage, row.prompts) for row in r.table.rows]


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- per-image outputs ---------------------------------------------------------------------------------------


def _per_prompt(samples: list[dict[str, Any]], output: str, stage: str, prompts: set[str] | None) -> dict[str, dict]:
    """{prompt_id: {seed: value}} of one output at one stage (optionally a subset of prompts)."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for s in samples:
        if s.get("stage") == stage and s.get(output) is not None and (prompts is None or s["prompt_id"] in prompts):
            out[s["prompt_id"]][int(s["seed"])] = float(s[output])
    return out


def _aligned_means(base: dict[str, dict], cand: dict[str, dict], output: str) -> tuple[np.ndarray, np.ndarray, list]:
    if set(base) != set(cand) or any(set(base[p]) != set(cand[p]) for p in base):
        raise UserError(f"{output}: the runs did not score the same (prompt, seed) pairs")
    order = sorted(base)
    return (
        np.array([np.mean(list(base[p].values())) for p in order]),
        np.array([np.mean(list(cand[p].values())) for p in order]),
        order,
    )


# --- set outputs (FID, KID, CMMD, recall, ...) from the features each run keeps --------------------------------


def _set_inputs(out: str, r: Results) -> SetInputs:
    recorded = r.metric_info[out].set
    if recorded is None:
        raise UserError(
            f"{out} of run {r.run_id} records no set inputs (scored before results recorded them, or "
            f"by a metric that cannot be resampled): re-score it with imagen-bench eval (its images are "
            "reused)"
        )
    return recorded


def _metric_class(out: str, info: OutputInfo) -> type[Metric]:
    cls = get_metric(info.registry_name)
    if not any(o.name == out and not o.per_image for o in cls.outputs):
        raise UserError(f"{out}: metric {cls.name!r} no longer reports it as a set output; re-score both runs")
    return cls


def _reference_features(inputs: SetInputs, r: Results, cache_dir: str | Path | None) -> FeatureStats:
    stats = ReferenceStatsCache(cache_dir).get(StatsKey(**inputs.reference))
    if stats is None or stats.feats is None:
        raise UserError(
            f"the reference features of {r.run_id} ({inputs.features}) are not in the cache "
            f"({cache_dir}); evaluate it on this machine (or with the same IMAGEN_BENCH_CACHE) first"
        )
    return stats


def _check_reproduced(out: str, stat: SetStatistic, recorded: float, run_id: str) -> None:
    """The statistic rebuilt from the kept features must give the number the run reported: a gate that
    resampled another statistic than the one it reports would judge one metric by another's interval."""
    again = stat.value()
    if not np.isclose(again, recorded, rtol=REPRODUCE_RTOL, atol=1e-9):
        raise UserError(
            f"{out}: the features kept in run {run_id} give {again:.6g}, but the run reports "
            f"{recorded:.6g}; re-score it with imagen-bench eval"
        )


def _set_difference(
    out: str,
    sides: tuple[Results, Results],
    dirs: tuple[Path, Path],
    stage: str,
    prompts: set[str] | None,
    recorded: tuple[float, float],
    opts: dict[str, Any],
) -> Difference:
    info = sides[0].metric_info[out]
    inputs = _set_inputs(out, sides[0])
    cls = _metric_class(out, info)
    kept = [load_features(d, inputs.features, stage) for d in dirs]
    keys = sorted(k for k in kept[0] if prompts is None or k[0] in prompts)
    if set(keys) != {k for k in kept[1] if prompts is None or k[0] in prompts}:
        raise UserError(f"{out}: the runs' features do not cover the same (prompt, seed) pairs at {stage}")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (pid, _) in enumerate(keys):
        by_prompt[pid].append(i)
    ref = _reference_features(inputs, sides[0], opts.get("cache_dir"))
    stats = []
    for feats, r, value in zip(kept, sides, recorded):
        try:
            stat = cls.set_statistic(out, np.stack([feats[k] for k in keys]).astype(np.float64), ref, inputs.options)
        except NotImplementedError as err:  # a user's set metric without Metric.set_statistic
            raise UserError(f"{err}: implement Metric.set_statistic to gate it") from None
        _check_reproduced(out, stat, value, r.run_id)
        stats.append(stat)
    return paired_set_difference(
        stats[0],
        stats[1],
        [np.array(v) for v in by_prompt.values()],
        info.higher_is_better,
        full=recorded,
        n_boot=int(opts["n_boot_sets"]),
        seed=group_seed(opts["seed"], stage),
        level=float(opts["level"]),
    )


# --- rows ------------------------------------------------------------------------------------------------------


def _row(
    output: str, group: str, info: OutputInfo, base_value: float, cand_value: float, diff: Difference, max_worse: float
) -> VerdictRow:
    verdict = decide(diff, max_worse)
    return VerdictRow(
        output=output,
        group=group,
        metric=info.metric,
        metric_version=info.version,
        higher_is_better=info.higher_is_better,
        baseline=base_value,
        candidate=cand_value,
        delta=cand_value - base_value,
        improvement=diff.improvement,
        ci_low=diff.ci_low,
        ci_high=diff.ci_high,
        n_prompts=diff.n_prompts,
        max_worse=max_worse,
        verdict=verdict,
        note=diff.note,
        prompts_to_decide=prompts_to_decide(diff, max_worse) if verdict == "inconclusive" else None,
    )


def resolve_thresholds(base: Results, cand: Results, given: dict[str, float]) -> dict[str, dict[str, Any]]:
    """{output: {max_worse, source}} for every output both runs report: the one given
    (``thresholds.<output>.max_worse=``) or the default its metric declares (``Output.max_worse``)."""
    outputs = [o for o in base.metric_info if o in cand.metric_info]
    extra = sorted(set(given) - set(outputs))
    if extra:
        raise UserError(
            f"thresholds name {', '.join(extra)}, which runs {base.run_id} and {cand.run_id} do not both "
            f"report (they report: {', '.join(outputs) or 'nothing'})"
        )
    out: dict[str, dict[str, Any]] = {}
    for name in outputs:
        if name in given:
            out[name] = {"max_worse": given[name], "source": "given"}
            continue
        cls = get_metric(base.metric_info[name].registry_name)
        default = next((o.max_worse for o in cls.outputs if o.name == name), None)
        if default is None:
            raise UserError(
                f"{name}: its metric {cls.name!r} declares no default tolerance; pass "
                f"thresholds.{name}.max_worse=<tolerated regression in its units>"
            )
        out[name] = {"max_worse": float(default), "source": "default"}
    return out


def compare_runs(
    base: Results, cand: Results, dirs: tuple[Path, Path], thresholds: dict[str, dict[str, Any]], opts: dict[str, Any]
) -> list[VerdictRow]:
    """Every output both runs report, in every group of the table, as a verdict row (thresholds: as
    :func:`resolve_thresholds` gives them)."""
    check_comparable(base, cand)
    sb, sc = read_samples(dirs[0]), read_samples(dirs[1])
    rows = []
    for row in base.table.rows:  # the rows the scorer grouped, with the prompts of each category
        group, stage, prompts = row.group, row.stage, None if row.prompts is None else set(row.prompts)
        for out, limit in thresholds.items():
            info = base.metric_info[out]
            bv, cv = base.value(group, out), cand.value(group, out)
            if bv is None or cv is None:
                continue  # e.g. OCR only in its categories, FID only on the overall row
            values = (float(bv.value or 0.0), float(cv.value or 0.0))  # Results.value: never None there
            if info.per_image:
                b, c, _ = _aligned_means(
                    _per_prompt(sb, out, stage, prompts), _per_prompt(sc, out, stage, prompts), out
                )
                diff = paired_mean_difference(
                    b,
                    c,
                    info.higher_is_better,
                    n_boot=int(opts["n_boot"]),
                    seed=group_seed(opts["seed"], group),
                    level=float(opts["level"]),
                )
            else:
                diff = _set_difference(out, (base, cand), dirs, stage, prompts, values, opts)
            rows.append(_row(out, group, info, *values, diff, float(limit["max_worse"])))
    return rows


def check_threshold_names(thresholds: dict[str, float]) -> None:
    """A threshold for an output no registered metric reports is a typo, never silently ignored."""
    known = {o.name for name in METRICS for o in get_metric(name).outputs}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise UserError(
            f"thresholds name {', '.join(unknown)}, which no registered metric reports "
            f"(known: {', '.join(sorted(known))})"
        )


def side_record(r: Results, run_dir: Path) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "run_dir": str(run_dir),
        "fingerprint": r.model.get("fingerprint"),
        "checkpoint_sha256": r.model.get("checkpoint_sha256"),
        "model": r.model.get("model"),
        "git": r.environment.get("git"),
    }


def build_verdict(
    base: Results,
    cand: Results,
    dirs: tuple[Path, Path],
    thresholds: dict[str, float],
    opts: dict[str, Any],
    environment: dict[str, Any],
) -> Verdict:
    """The verdict of ``cand`` against ``base``; ``thresholds`` are the ones given (the rest: defaults)."""
    limits = resolve_thresholds(base, cand, thresholds)
    rows = compare_runs(base, cand, dirs, limits, opts)
    overall = overall_verdict(rows)
    return Verdict(
        baseline=side_record(base, dirs[0]),
        candidate=side_record(cand, dirs[1]),
        benchmark=base.suite,
        prompts=base.prompts,
        seeds=base.seeds,
        level=float(opts["level"]),
        n_boot=int(opts["n_boot"]),
        seed=int(opts["seed"]),
        thresholds=limits,
        rows=rows,
        overall=overall,
        exit_code=EXIT_CODES[overall],
        environment=environment,
    )
