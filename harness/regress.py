"""The regression gate behind ``imagen-bench regress``: two evaluated runs → one row per metric and group.

:func:`compare_runs` reads the two runs' ``results.json`` and ``samples.jsonl`` (and, for FID/KID, the
Inception features each run keeps and the cached reference statistics), refuses runs that are not
comparable — other prompts, seeds, metric versions, reference statistics or scoring layout, naming the
difference — and returns a :class:`~harness.formats.verdict.Verdict`. The statistics are in
:mod:`harness.compare`; this module only lines the two runs up.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.compare import (
    Difference,
    decide,
    group_seed,
    paired_mean_difference,
    paired_set_difference,
    prompts_to_decide,
)
from harness.errors import UserError
from harness.formats.results import Results, read_samples
from harness.formats.verdict import EXIT_CODES, Verdict, VerdictRow, overall_verdict
from harness.metrics.frechet import frechet_distance_resampled, kid_from_kernels, polynomial_kernel, reference_factor
from harness.metrics.inception_metrics import FEATURES_DIR
from harness.metrics.reference_stats import FeatureStats, ReferenceStatsCache, StatsKey

OVERALL = "overall"


def check_comparable(base: Results, cand: Results) -> None:
    """Refuse two runs that did not score the same thing the same way, naming what differs."""
    checks = [
        ("benchmark", base.suite, cand.suite),
        ("prompts (sha256 of ids and texts)", base.prompts.get("sha256"), cand.prompts.get("sha256")),
        ("seeds", base.seeds, cand.seeds),
        ("scoring layout", _layout(base), _layout(cand)),
        ("interval unit", base.benchmark.get("table", {}).get("ci_unit"), cand.benchmark.get("table", {}).get("ci_unit")),
    ]
    for what, a, b in checks:
        if a != b:
            raise UserError(f"runs {base.run_id} and {cand.run_id} differ in {what} ({_short(a)} vs {_short(b)}); "
                            "a regression test compares the same prompts and seeds scored the same way")
    for out in set(base.metric_info) & set(cand.metric_info):
        va, vb = base.metric_info[out].get("version"), cand.metric_info[out].get("version")
        if va != vb:
            raise UserError(f"{out} was computed by metric version {va} in {base.run_id} but {vb} in {cand.run_id}")
    ra, rb = _reference(base), _reference(cand)
    if ra != rb:
        raise UserError(f"runs {base.run_id} and {cand.run_id} use other FID reference statistics or extractor "
                        f"({_short(ra)} vs {_short(rb)})")


def _layout(r: Results) -> tuple[Any, Any]:
    table = r.benchmark.get("table") or {}
    return table.get("group_by"), table.get("stage")


def _reference(r: Results) -> Any:
    fid = r.extractors.get("fid") or {}
    ref = fid.get("reference") or {}
    return (fid.get("sha256"), fid.get("mode"), ref.get("image_list_sha256"), ref.get("count")) if fid else None


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
    return (np.array([np.mean(list(base[p].values())) for p in order]),
            np.array([np.mean(list(cand[p].values())) for p in order]), order)


# --- set outputs (FID, KID) from the features each run keeps ---------------------------------------------------

def _features(run_dir: Path, mode: str, stage: str) -> dict[tuple[str, int], np.ndarray]:
    path = run_dir / FEATURES_DIR / f"inception-{mode}-{stage}.npz"
    if not path.is_file():
        raise UserError(f"{path} is missing: re-run the evaluation of {run_dir.name} to keep its Inception features")
    with np.load(io.BytesIO(path.read_bytes())) as z:
        return {(str(p), int(s)): f for p, s, f in zip(z["prompt_id"], z["seed"], z["feats"])}


def _reference_stats(r: Results, cache_dir: str | Path | None) -> FeatureStats:
    fid = r.extractors["fid"]
    ref = fid["reference"]
    key = StatsKey(ref["dataset"], ref["split"], ref["image_list_sha256"], int(ref["count"]), ref["resolution"],
                   fid["mode"], fid["sha256"])
    stats = ReferenceStatsCache(cache_dir).get(key)
    if stats is None or stats.feats is None:
        raise UserError(f"the reference statistics of {r.run_id} are not in the cache ({cache_dir}); evaluate it on "
                        "this machine (or with the same IMAGEN_BENCH_CACHE) first")
    return stats


def _set_statistic(output: str, base_f: np.ndarray, cand_f: np.ndarray, ref: FeatureStats, seed: int):
    if output == "fid":
        factor = reference_factor(ref.mu, ref.sigma)
        return lambda sets: np.stack([frechet_distance_resampled(base_f, factor, sets),
                                      frechet_distance_resampled(cand_f, factor, sets)], axis=1)

    def kid(sets: list[np.ndarray]) -> np.ndarray:
        # the kernels once per side; each replicate's subsets only index them (same values, far fewer products)
        m = min(1000, len(ref.feats))
        k_rr = polynomial_kernel(ref.feats, ref.feats)
        sides = [(polynomial_kernel(f, f), polynomial_kernel(f, ref.feats)) for f in (base_f, cand_f)]
        return np.array([[kid_from_kernels(k_ff, k_rr, k_fr, idx, num_subsets=10, max_subset_size=m, seed=seed)[0]
                          for k_ff, k_fr in sides] for idx in sets])
    return kid


def _set_difference(output: str, higher_is_better: bool, base: Results, dirs: tuple[Path, Path], stage: str,
                    prompts: set[str] | None, opts: dict[str, Any]) -> Difference:
    mode = base.extractors["fid"]["mode"]
    fb, fc = _features(dirs[0], mode, stage), _features(dirs[1], mode, stage)
    keys = sorted(k for k in fb if prompts is None or k[0] in prompts)
    if set(keys) != {k for k in fc if prompts is None or k[0] in prompts}:
        raise UserError(f"{output}: the runs' features do not cover the same (prompt, seed) pairs at {stage}")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (pid, _) in enumerate(keys):
        by_prompt[pid].append(i)
    base_f = np.stack([fb[k] for k in keys]).astype(np.float64)
    cand_f = np.stack([fc[k] for k in keys]).astype(np.float64)
    ref = _reference_stats(base, opts.get("cache_dir"))
    stat = _set_statistic(output, base_f, cand_f, ref, int(opts["seed"]))
    return paired_set_difference(stat, [np.array(v) for v in by_prompt.values()], higher_is_better,
                                 n_boot=int(opts["n_boot_sets"]), seed=group_seed(opts["seed"], stage),
                                 level=float(opts["level"]))


# --- rows ------------------------------------------------------------------------------------------------------

def _groups(r: Results, samples: list[dict[str, Any]]) -> list[tuple[str, str, set[str] | None]]:
    """(group, stage, prompts) per row of the baseline's table."""
    table = r.benchmark.get("table") or {}
    if table.get("group_by") == "stage":
        return [(row["group"], row["group"], None) for row in table.get("rows", [])]
    stage = table.get("stage")
    cats: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        if s.get("stage") == stage:
            cats[s.get("category") or "(uncategorised)"].add(s["prompt_id"])
    rows = [row["group"] for row in table.get("rows", [])]
    return [(g, stage, None if g == OVERALL else cats.get(g, set())) for g in rows]


def _row(output: str, group: str, info: dict[str, Any], base_value: float, cand_value: float,
         diff: Difference, max_worse: float) -> VerdictRow:
    verdict = decide(diff, max_worse)
    return VerdictRow(
        output=output, group=group, metric=info.get("metric", output), metric_version=info.get("version", ""),
        higher_is_better=bool(info["higher_is_better"]), baseline=base_value, candidate=cand_value,
        delta=cand_value - base_value, improvement=diff.improvement, ci_low=diff.ci_low, ci_high=diff.ci_high,
        n_prompts=diff.n_prompts, max_worse=max_worse, verdict=verdict, note=diff.note,
        prompts_to_decide=prompts_to_decide(diff, max_worse) if verdict == "inconclusive" else None)


def compare_runs(base: Results, cand: Results, dirs: tuple[Path, Path], thresholds: dict[str, float],
                 opts: dict[str, Any]) -> list[VerdictRow]:
    """Every output both runs report, in every group of the table, as a verdict row."""
    check_comparable(base, cand)
    check_threshold_names(thresholds)
    outputs = [o for o in base.metric_info if o in cand.metric_info]
    missing = [o for o in outputs if o not in thresholds]
    if missing:
        raise UserError(f"no threshold for {', '.join(missing)}: pass thresholds.{missing[0]}.max_worse=<tolerated "
                        "regression in its units>")
    sb, sc = read_samples(dirs[0]), read_samples(dirs[1])
    rows = []
    for group, stage, prompts in _groups(base, sb):
        for out in outputs:
            info = base.metric_info[out]
            bv, cv = (base.metrics.get(group) or {}).get(out), (cand.metrics.get(group) or {}).get(out)
            if bv is None or cv is None or bv.get("value") is None or cv.get("value") is None:
                continue  # e.g. OCR only in its categories, FID only on the overall row
            if info.get("per_image", True):
                b, c, _ = _aligned_means(_per_prompt(sb, out, stage, prompts), _per_prompt(sc, out, stage, prompts), out)
                diff = paired_mean_difference(b, c, info["higher_is_better"], n_boot=int(opts["n_boot"]),
                                              seed=group_seed(opts["seed"], group), level=float(opts["level"]))
            else:
                diff = _set_difference(out, bool(info["higher_is_better"]), base, dirs, stage, prompts, opts)
            rows.append(_row(out, group, info, float(bv["value"]), float(cv["value"]), diff, thresholds[out]))
    return rows


def check_threshold_names(thresholds: dict[str, float]) -> None:
    """A threshold for an output no registered metric reports is a typo, never silently ignored."""
    from harness.metrics.registry import METRICS, get_metric

    known = {o.name for name in METRICS for o in get_metric(name).outputs}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise UserError(f"thresholds name {', '.join(unknown)}, which no registered metric reports "
                        f"(known: {', '.join(sorted(known))})")


def side_record(r: Results, run_dir: Path) -> dict[str, Any]:
    return {"run_id": r.run_id, "run_dir": str(run_dir), "fingerprint": r.model.get("fingerprint"),
            "checkpoint_sha256": r.model.get("checkpoint_sha256"), "model": r.model.get("model"),
            "git": r.environment.get("git")}


def build_verdict(base: Results, cand: Results, dirs: tuple[Path, Path], thresholds: dict[str, float],
                  opts: dict[str, Any], environment: dict[str, Any]) -> Verdict:
    rows = compare_runs(base, cand, dirs, thresholds, opts)
    overall = overall_verdict(rows)
    return Verdict(baseline=side_record(base, dirs[0]), candidate=side_record(cand, dirs[1]), benchmark=base.suite,
                   prompts=base.prompts, seeds=base.seeds, level=float(opts["level"]), n_boot=int(opts["n_boot"]),
                   seed=int(opts["seed"]), thresholds={k: {"max_worse": v} for k, v in thresholds.items()},
                   rows=rows, overall=overall, exit_code=EXIT_CODES[overall], environment=environment)
