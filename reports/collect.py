"""Read runs (results.json + samples.jsonl) and a regression verdict into one model for the report.

Reports never import model code: everything comes from the files a run wrote. Each :class:`Run`
keeps the path and sha256 of the results.json it was read from, so every number in the report is
traceable to a run id and one file.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.formats.results import RESULTS_NAME, Results, read_results
from harness.formats.values import MetricValue, ResultTable
from harness.formats.verdict import VERDICT_NAME, Verdict, read_verdict

GLOB_CHARS = "*?["
# Config keys that never make two runs different (names, folders, console settings).
IGNORED_PREFIXES = ("run_id", "task_name", "progress", "paths.", "hydra.")
SAMPLE_KEYS = ("prompt_id", "prompt", "category", "seed", "stage", "path")
SHORT = 8  # characters of a hash shown in tables


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for a nested dict; lists stay values."""
    if not isinstance(config, dict):
        return {prefix: config} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def ignored(key: str) -> bool:
    return any(key == p or key.startswith(p if p.endswith(".") else p + ".") for p in IGNORED_PREFIXES)


def is_guidance_key(key: str) -> bool:
    parts = key.split(".")
    return (len(parts) == 2 and parts[0] == "guidance") or (
        len(parts) == 4 and parts[0] == "model" and parts[1] == "stages" and parts[3] == "guidance"
    )


def show(value: Any) -> str:
    """A config value as a table cell."""
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class Run:
    """One run's results.json (and, on demand, its samples.jsonl)."""

    results: Results
    path: Path  # the results.json
    sha256: str  # of the results.json bytes read
    _samples: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.results.run_id

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def suite(self) -> str:
        return self.results.suite or "(unnamed suite)"

    @cached_property
    def config(self) -> dict[str, Any]:
        return flatten(self.results.config if isinstance(self.results.config, dict) else {})

    @property
    def model_name(self) -> str:
        m = self.results.model
        return str(m.get("model") or m.get("name") or m.get("folder") or m.get("kind") or "?")

    @property
    def checkpoints(self) -> dict[str, str]:
        hashes = self.results.model.get("checkpoint_sha256") or {}
        return {str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {}

    def checkpoint_short(self) -> str:
        return " ".join(f"{k}:{v[:SHORT]}" for k, v in self.checkpoints.items()) or "—"

    @property
    def fingerprint(self) -> str:
        return str(self.results.model.get("fingerprint") or "—")

    @property
    def git(self) -> str:
        return str((self.results.environment or {}).get("git") or "unknown")

    @property
    def stages(self) -> list[str]:
        stages = self.results.model.get("stages")
        if isinstance(stages, list):
            return [str(s) for s in stages]
        return (
            list((self.results.config.get("model") or {}).get("stages") or {})
            if isinstance(self.results.config, dict)
            else []
        )

    @property
    def guidance(self) -> dict[str, float]:
        """Guidance weight per cascade stage as sampled (config.model.stages.<s>.guidance)."""
        out = {}
        for key, value in self.config.items():
            parts = key.split(".")
            if (
                len(parts) == 4
                and parts[:2] == ["model", "stages"]
                and parts[3] == "guidance"
                and isinstance(value, (int, float))
            ):
                out[parts[2]] = float(value)
        return out

    @property
    def table(self) -> ResultTable:
        return self.results.table

    @property
    def group_by(self) -> str:
        """ "stage" (COCO: one row per cascade stage) or "category" (prompt suites)."""
        return self.table.group_by

    def groups(self) -> list[str]:
        return self.results.groups()

    def value(self, group: str, output: str) -> MetricValue | None:
        return self.results.value(group, output)

    def outputs(self) -> list[str]:
        """Outputs with metric_info, in the order the run lists them."""
        return [o for o in self.results.metric_info if any(self.value(g, o) for g in self.groups())]

    def provenance(self) -> str:
        return f"{self.run_id} (checkpoint {self.checkpoint_short()}; git {self.git}; {self.path})"

    # --- samples.jsonl -------------------------------------------------------------------------

    def samples(self) -> pd.DataFrame:
        """The run's samples.jsonl as a frame (read once, one pass: keys plus per-image metrics)."""
        if self._samples is None:
            self._samples = read_sample_frame(
                self.run_dir / (self.results.samples_file or "samples.jsonl"), per_image_outputs(self)
            )
        return self._samples

    def final_stage(self) -> str | None:
        """The stage whose images a study or a grid shows: the table's stage, else the last cascade
        stage with samples, else the last stage seen in samples.jsonl."""
        samples = self.samples()
        if samples.empty:
            return None
        present = list(dict.fromkeys(samples["stage"].astype(str)))
        if self.table.stage in present:
            return str(self.table.stage)
        ordered = [s for s in self.stages if s in present]
        return ordered[-1] if ordered else present[-1]


def per_image_outputs(run: Run) -> list[str]:
    return [o for o, info in run.results.metric_info.items() if info.per_image]


def read_sample_frame(path: Path, outputs: Iterable[str]) -> pd.DataFrame:
    """One row per image of ``samples.jsonl``: the sample keys and ``outputs``, in one linear pass."""
    keep = list(SAMPLE_KEYS) + [o for o in outputs if o not in SAMPLE_KEYS]
    rows = []
    if path.is_file():
        try:
            with path.open(encoding="utf-8") as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise UserError(
                            f"{path} line {number} is not JSON ({err.msg}): the run's samples "
                            "file is damaged; re-score the run"
                        ) from None
                    if not isinstance(rec, dict):
                        raise UserError(f"{path} line {number} is not a JSON object")
                    rows.append(tuple(rec.get(k) for k in keep))
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    frame = pd.DataFrame.from_records(rows, columns=keep)
    frame["stage"] = frame["stage"].astype(str)
    return frame


# --- finding and reading runs --------------------------------------------------------------------


def _results_under(folder: Path) -> list[Path]:
    """results.json files under ``folder``; a run folder is not searched below (its images are many)."""
    found = []
    for root, dirs, files in os.walk(folder):
        if RESULTS_NAME in files:
            found.append(Path(root) / RESULTS_NAME)
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found)


def find_results(specs: Iterable[str]) -> list[Path]:
    """Result files named by ``specs``: files, run folders, sweep/runs folders (searched), or globs."""
    out: list[Path] = []
    for spec in specs:
        spec = str(spec)
        if any(ch in spec for ch in GLOB_CHARS) and not Path(spec).exists():
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                raise UserError(f"runs: nothing matches {spec!r}")
            paths = [Path(m) for m in matches]
        else:
            paths = [Path(os.path.expanduser(spec))]
        for p in paths:
            if p.is_dir():
                found = [p / RESULTS_NAME] if (p / RESULTS_NAME).is_file() else _results_under(p)
                if not found and (p / VERDICT_NAME).is_file():
                    continue  # a regress folder: its verdict is read by find_verdict
                if not found:
                    raise UserError(f"runs: no {RESULTS_NAME} in or under {p} (is the run finished?)")
                out += found
            elif p.is_file():
                out.append(p)
            else:
                raise UserError(f"runs: {p} does not exist")
    unique = list(dict.fromkeys(p.resolve() for p in out))
    if not unique:
        raise UserError("runs: give at least one run folder, results.json, sweep folder or glob")
    return unique


def read_run(path: Path) -> Run:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    return Run(read_results(path), path, hashlib.sha256(data).hexdigest())


def load_runs(specs: Iterable[str]) -> list[Run]:
    """Every run named by ``specs`` (see :func:`find_results`); run ids must be distinct."""
    runs = [read_run(p) for p in find_results(specs)]
    seen: dict[str, Run] = {}
    for run in runs:
        if run.run_id in seen:
            raise UserError(
                f"two runs share the run id {run.run_id!r} ({seen[run.run_id].path} and {run.path}); "
                "their numbers could not be told apart: give each run once"
            )
        seen[run.run_id] = run
    return runs


def find_verdict(specs: Iterable[str], explicit: str | None) -> tuple[Verdict, Path] | None:
    """The verdict given (``verdict=``: a file or a folder holding verdict.json), else one found
    directly in a folder given as ``runs=``."""
    if explicit:
        path = Path(explicit)
        path = path / VERDICT_NAME if path.is_dir() else path
        return read_verdict(path), path
    for spec in specs:
        p = Path(str(spec))
        if p.is_dir() and (p / VERDICT_NAME).is_file():
            return read_verdict(p / VERDICT_NAME), p / VERDICT_NAME
    return None


# --- comparing configs ---------------------------------------------------------------------------

MISSING = object()


def differing_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between the runs (ignoring names and folders), in config order."""
    keys = list(dict.fromkeys(k for r in runs for k in r.config if not ignored(k)))
    return [
        k for k in keys if len({json.dumps(r.config.get(k, "<absent>"), sort_keys=True, default=str) for r in runs}) > 1
    ]


def family_key(run: Run) -> str:
    """Runs of one family differ only in guidance: the same config otherwise, checkpoint contents
    (not path) included."""
    cfg = {k: v for k, v in run.config.items() if not ignored(k) and not is_guidance_key(k) and k != "checkpoint"}
    return json.dumps(
        {"suite": run.suite, "task": run.results.task, "checkpoints": run.checkpoints, "config": cfg},
        sort_keys=True,
        default=str,
    )


@dataclass
class Family:
    label: str  # short: the run ids' common folder (``guidance``) or the one run's id
    runs: list[Run]
    differs: str = ""  # what sets it apart from the other families (config fields, checkpoints), in full

    def varying_stages(self) -> list[str]:
        stages = list(dict.fromkeys(s for r in self.runs for s in r.guidance))
        varying = [s for s in stages if len({r.guidance.get(s) for r in self.runs}) > 1]
        return varying or stages[:1]

    def point_label(self, run: Run) -> str:
        values = [run.guidance.get(s) for s in self.varying_stages()]
        return "w=" + "/".join("?" if v is None else f"{v:g}" for v in values) if values else run.run_id


def families(runs: list[Run]) -> list[Family]:
    """Runs grouped into families (identical but for guidance), labelled by what tells them apart."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(family_key(run), []).append(run)
    members = list(groups.values())
    if len(members) == 1:
        return [Family("all runs", members[0])]
    firsts = [m[0] for m in members]
    keys = [k for k in differing_keys(firsts) if not is_guidance_key(k)]
    out = []
    for m in members:
        parts = [f"{k}={_short_value(k, m[0].config.get(k))}" for k in keys if k != "checkpoint"]
        stages = list(dict.fromkeys(s for f in firsts for s in f.checkpoints))
        differ = [s for s in stages if len({f.checkpoints.get(s) for f in firsts}) > 1]
        if differ:
            parts.insert(0, "ckpt " + " ".join(f"{s}:{(m[0].checkpoints.get(s) or '—')[:SHORT]}" for s in differ))
        out.append(Family(_id_label(m), m, ", ".join(parts)))
    if len({f.label for f in out}) < len(out):  # run ids do not tell them apart: name them by what differs
        out = [Family(f.differs or f.runs[0].run_id, f.runs, f.differs) for f in out]
    return out


def _id_label(runs: list[Run]) -> str:
    """``guidance`` for runs ``guidance/guidance.base=1`` and ``guidance/guidance.base=4``; a lone run's id; the
    ids joined when they share no leading name part."""
    ids = [r.run_id for r in runs]
    if len(ids) == 1:
        return ids[0]
    prefix = os.path.commonprefix(ids)
    cut = max(prefix.rfind(sep) for sep in "/-_")  # a whole name part: ``c0`` of ``c0-w1``/``c0-w3``, not ``c0-w``
    return prefix[:cut] if cut > 0 else " + ".join(ids)


def _short_value(key: str, value: Any) -> str:
    text = show(value)
    return text if len(text) <= 30 else "…" + text[-29:]
