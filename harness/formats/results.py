"""Result files: ``results.json`` (typed, versioned) and ``samples.jsonl`` (per image), and a
query helper that loads many runs into one pandas DataFrame.

Schema (``format: imagen-bench.results``, ``version: 3``; version 2 files are still read, see
:func:`_upgrade_v2`)::

    run_id        the run folder's id
    task          the command that produced it: eval | drawbench | ...
    suite         prompt suite or benchmark name (coco_fid30k, drawbench, ...)
    created       UTC time the file was written (ISO 8601)
    benchmark     protocol facts: caption source and seed, counts, stop stage, reference set, ...
    table         the score table's layout (:class:`~harness.formats.values.ResultTable`): group_by (stage
                  or category), stage, ci_unit, level, outputs, and rows {group, stage, n_prompts, n_images,
                  prompts (the prompt ids of a category row; null: every prompt at the stage)}
    metrics       {group: {output: MetricValue}}, each {value, ci_low, ci_high, n, level, method, note?, std?,
                  ...}; a group is a row of the table; ci_low/ci_high are null where the interval is undefined
                  (note says why)
    metric_info   {output: OutputInfo}: {metric, entry, version, higher_is_better, kind, per_image, bounds,
                  label, unit, set (a set output's features, reference and options)}: what each number is
                  and which direction is better, so readers need not know the metric
    skipped_metrics {metric: reason} for metrics listed by the benchmark but not run (e.g. disabled)
    model         what generated the images: model name, checkpoint path and per-stage content
                  hashes, text encoder identity, sampler settings (or the folder of an external system)
    seeds         how image seeds were chosen ({"image_seeds": [...]} or a rule, caption seed, ...)
    prompts       {count, sha256 (harness.formats.files.prompts_sha256 of (id, text) in order: the same hash
                  for every benchmark), source}
    extractors    per metric, what produced its numbers: {"fid": {extractor: {name, sha256, mode}, reference},
                  "clip_score": {model, pretrained, weights_sha256, ...}, ...}
    details       per-stage metric details (warnings, truncated prompts, ...)
    caches        reference-statistics and text-embedding cache hits/misses
    timings       seconds per phase (generate, fid, clip, total)
    config        the fully resolved Hydra config
    environment   git revision, Python, platform, torch threads, package versions
    samples_file  "samples.jsonl": one JSON object per image with its per-image scores

Version 2 kept the table (with a copy of every value) in ``benchmark.table``, allowed bare numbers as
values and counted ``n_prompts``/``n_images`` as if they were outputs.

The file is written once, atomically, after every metric succeeded: a failed or interrupted run
leaves no results.json that could be mistaken for a valid one.
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.jsonio import in_folder, read_versioned_json
from harness.formats.values import OVERALL, MetricValue, OutputInfo, ResultTable, category_prompts

if TYPE_CHECKING:  # pandas loads only when a reader asks for a frame
    import pandas as pd

RESULTS_NAME = "results.json"
SAMPLES_NAME = "samples.jsonl"
FORMAT = "imagen-bench.results"
VERSION = 3
READABLE = (2, 3)  # the versions read_results still reads


@dataclass
class Results:
    """One run's ``results.json``, typed: see the module docstring for each field."""

    run_id: str
    task: str
    suite: str
    benchmark: dict[str, Any]
    table: ResultTable
    metrics: dict[str, dict[str, MetricValue]]
    model: dict[str, Any]
    seeds: dict[str, Any]
    prompts: dict[str, Any]
    extractors: dict[str, Any]
    config: dict[str, Any]
    environment: dict[str, Any]
    metric_info: dict[str, OutputInfo] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    caches: dict[str, Any] = field(default_factory=dict)
    samples_file: str = SAMPLES_NAME
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    format: str = FORMAT
    version: int = VERSION

    def value(self, group: str, output: str) -> MetricValue | None:
        """``output`` in row ``group`` when the run reports a defined number there, else None."""
        v = self.metrics.get(group, {}).get(output)
        return v if v is not None and v.value is not None else None

    def groups(self) -> list[str]:
        return self.table.groups() or list(self.metrics)

    def metrics_json(self, group: str | None = None) -> dict[str, Any]:
        """``metrics`` (or one group of it) as plain JSON, for summaries printed by the commands."""
        plain = {g: {o: v.to_json() for o, v in vals.items()} for g, vals in self.metrics.items()}
        return plain if group is None else plain.get(group, {})

    def to_json(self) -> dict[str, Any]:
        plain = {f: getattr(self, f) for f in self.__dataclass_fields__}
        plain["table"] = self.table.to_json()
        plain["metrics"] = self.metrics_json()
        plain["metric_info"] = {o: i.to_json() for o, i in self.metric_info.items()}
        return plain

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str = "results.json") -> Results:
        """The typed results of a version-3 object (one line naming the bad field otherwise)."""
        for key in ("run_id", "task", "suite", "table", "metrics"):
            if key not in raw:
                raise UserError(f"{where} is missing result field {key!r}")
        for key in ("benchmark", "metrics", "metric_info", "model", "config"):
            if not isinstance(raw.get(key, {}), dict):
                raise UserError(f"{where}: {key} must be a JSON object")
        metrics = {
            str(g): {str(o): MetricValue.from_json(v, f"{where}: metrics.{g}.{o}") for o, v in vals.items()}
            for g, vals in raw["metrics"].items()
        }
        info = {
            str(o): OutputInfo.from_json(i, f"{where}: metric_info.{o}")
            for o, i in (raw.get("metric_info") or {}).items()
        }
        plain = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and k not in ("metrics", "metric_info")}
        plain["table"] = ResultTable.from_json(raw["table"], f"{where}: table")
        try:
            return cls(**plain, metrics=metrics, metric_info=info)
        except TypeError as err:
            raise UserError(f"{where} is missing result fields ({err})") from None


def finite_json(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by None: JSON has no NaN, and a reader must never get one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return finite_json(obj.item())  # numpy / torch scalars
    return obj


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(finite_json(obj), ensure_ascii=False, allow_nan=False, default=_json_default, **kwargs)


def write_results(run_dir: str | Path, results: Results, samples: Iterable[dict[str, Any]] | None = None) -> Path:
    """Write samples.jsonl (when given) and then results.json, each atomically (never a NaN)."""
    run_dir = Path(run_dir)
    if samples is not None:
        lines = "".join(_dumps(s) + "\n" for s in samples)
        atomic_write_bytes(run_dir / results.samples_file, lines.encode("utf-8"))
    data = _dumps(results.to_json(), indent=2)
    atomic_write_bytes(run_dir / RESULTS_NAME, data.encode("utf-8"))
    return run_dir / RESULTS_NAME


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()  # numpy / torch scalars
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_results(path: str | Path) -> Results:
    """Load and check one results.json (a file, or a run folder holding one); version 2 is upgraded."""
    path = in_folder(path, RESULTS_NAME)
    raw = read_versioned_json(path, FORMAT, READABLE, "results file")
    if raw["version"] == 2:
        raw = _upgrade_v2(raw, path.parent)
    return Results.from_json(raw, str(path))


def _upgrade_v2(raw: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """A version-2 object as version 3: the table out of ``benchmark`` (its value copies dropped, a category
    row's prompts from samples.jsonl), every value an object, ``n_prompts``/``n_images`` out of ``metrics``."""
    raw = dict(raw)
    benchmark = dict(raw.get("benchmark") or {})
    old = benchmark.pop("table", None) or {}
    metrics = {g: dict(vals) for g, vals in (raw.get("metrics") or {}).items() if isinstance(vals, dict)}
    counts = {
        g: {k: (vals.pop(k, None) or {}).get("value", 0) for k in ("n_prompts", "n_images")}
        for g, vals in metrics.items()
    }
    raw["metrics"] = {
        g: {o: v if isinstance(v, dict) else {"value": v} for o, v in vals.items()} for g, vals in metrics.items()
    }
    stages = raw.get("model", {}).get("stages") or []
    group_by = old.get("group_by") or ("stage" if set(metrics) <= set(stages) else "category")
    cats = (
        category_prompts(
            (s["prompt_id"], s.get("category")) for s in read_samples(run_dir) if s.get("stage") == old.get("stage")
        )
        if group_by == "category"
        else {}
    )
    rows = old.get("rows") or [
        {"group": g, "stage": g if group_by == "stage" else old.get("stage"), **c} for g, c in counts.items()
    ]
    raw["table"] = {
        **{k: old.get(k) for k in ("group_by", "stage", "ci_unit", "level", "outputs")},
        "group_by": group_by,
        "rows": [
            {
                **{k: r.get(k) for k in ("group", "stage", "n_prompts", "n_images")},
                "prompts": None if group_by == "stage" or r["group"] == OVERALL else sorted(cats.get(r["group"], ())),
            }
            for r in rows
        ],
    }
    raw["benchmark"], raw["version"] = benchmark, VERSION
    return raw


def read_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / SAMPLES_NAME
    return (
        [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()] if path.exists() else []
    )


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not (p / RESULTS_NAME).exists():
            out.extend(sorted(p.rglob(RESULTS_NAME)))  # a runs folder or a sweep folder
        elif any(ch in str(p) for ch in "*?["):
            out.extend(Path(x) for x in sorted(glob.glob(str(p), recursive=True)))
        else:
            out.append(p / RESULTS_NAME if p.is_dir() else p)
    return out


def _stage_guidance(config: dict[str, Any]) -> dict[str, Any]:
    stages = (config.get("model") or {}).get("stages") or {}
    return {f"guidance.{name}": s.get("guidance") for name, s in stages.items() if isinstance(s, dict)}


def load_results(paths: Iterable[str | Path] | str | Path) -> pd.DataFrame:
    """Many runs as one long pandas DataFrame: one row per (run, group, metric).

    Columns: run_id, task, suite, group, metric, value, ci_low, ci_high, n, higher_is_better,
    metric_version, model, generator, fingerprint, checkpoint_sha256, source (the folder of imported
    images), sampler, sampler_steps, guidance.<stage>... (the last three only for our cascade), created,
    path. ``paths`` may be result files, run folders, a runs/sweep folder (searched recursively) or globs.
    """
    import pandas as pd

    if isinstance(paths, (str, Path)):
        paths = [paths]
    rows = []
    for path in _expand(paths):
        r = read_results(path)
        rows += _rows(r, path)
    columns = ["run_id", "task", "suite", "group", "metric", "value", "ci_low", "ci_high", "n"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    return frame[columns + [c for c in frame.columns if c not in columns]]


def _rows(r: Results, path: Path) -> list[dict[str, Any]]:
    """One row per (group, metric); the generator's identity, or an external source for imported images."""
    generated = r.model.get("kind") == "imagen-cascade"
    sampler = (r.config.get("sampler") or {}) if generated and isinstance(r.config, dict) else {}
    hashes = r.model.get("checkpoint_sha256") or {}
    common = {
        "run_id": r.run_id,
        "task": r.task,
        "suite": r.suite,
        "model": r.model.get("model"),
        "generator": r.model.get("kind"),
        "fingerprint": r.model.get("fingerprint"),
        "checkpoint_sha256": ",".join(f"{k}:{v}" for k, v in hashes.items()) or None,
        "source": None if generated else r.model.get("folder") or r.model.get("source"),
        "sampler": sampler.get("name"),
        "sampler_steps": sampler.get("steps"),
        "created": r.created,
        "path": str(path),
        **(_stage_guidance(r.config) if generated else {}),
    }
    rows = []
    for group, metrics in r.metrics.items():
        for metric, val in metrics.items():
            info = r.metric_info.get(metric)
            rows.append(
                {
                    **common,
                    "group": group,
                    "metric": metric,
                    "value": val.value,
                    "ci_low": val.ci_low,
                    "ci_high": val.ci_high,
                    "n": val.n,
                    "higher_is_better": None if info is None else info.higher_is_better,
                    "metric_version": None if info is None else info.version,
                }
            )
    return rows
