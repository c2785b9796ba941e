"""Sweeps that report themselves: point folders named by their swept values, and a summary at the end.

A multirun puts each point in ``runs/<run_id>/<key=value,...>`` (only the swept keys, e.g.
``guidance.base=1.5``) instead of Hydra's ``0``, ``1``, ...: a point's folder says what it is, and rerunning
the sweep with more values adds folders beside the old ones instead of reusing a folder for another value.
The CLI records which keys a command line sweeps (:data:`ENV_SWEPT`); the ``sweep_point`` resolver reads the
job's own overrides for them. When the sweep ends, :class:`SweepSummary` writes ``sweep_summary.csv``: one
row per point with its swept values and its headline numbers.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ENV_SWEPT = "IMAGEN_BENCH_SWEPT"
SUMMARY_NAME = "sweep_summary.csv"


def swept_keys(args_keys: list[str], sweeper_params: Any) -> list[str]:
    """The keys a multirun varies: sweeps on the command line and the sweeper's params (experiments)."""
    keys = list(args_keys) + [str(k) for k in (sweeper_params or {})]
    return list(dict.fromkeys(keys))


def sweep_point(default: Any) -> str:
    """``key=value,...`` of this job's swept keys (file-name safe), or ``default`` (Hydra's job number)."""
    from hydra.core.hydra_config import HydraConfig

    keys = [k for k in os.environ.get(ENV_SWEPT, "").split(",") if k]
    if not keys or not HydraConfig.initialized():
        return str(default)
    parts = []
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.lstrip("+~").partition("=")
        if key in keys:
            parts.append(f"{key}={value}")
    name = ",".join(sorted(parts))
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)[:200] if name else str(default)


def summary_rows(sweep_dir: Path, keys: list[str]) -> list[dict[str, Any]]:
    """One row per point folder: its swept values (from the folder name) and its metrics with intervals."""
    from harness.formats.results import RESULTS_NAME, read_results

    rows = []
    for point in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        values = dict(part.split("=", 1) for part in point.name.split(",") if "=" in part)
        row: dict[str, Any] = {"point": point.name, **{k: values.get(k) for k in keys}}
        if (point / RESULTS_NAME).is_file():
            r = read_results(point)
            row["run_id"] = r.run_id
            for group, metrics in r.metrics.items():
                for name, v in metrics.items():
                    if name in r.metric_info:
                        row[f"{name}[{group}]"] = v.value
                        row[f"{name}[{group}].ci_low"] = v.ci_low
                        row[f"{name}[{group}].ci_high"] = v.ci_high
        rows.append(row)
    return rows


def write_summary(sweep_dir: Path, keys: list[str]) -> Path | None:
    from harness.formats.files import atomic_write_bytes

    rows = summary_rows(sweep_dir, keys)
    if not rows:
        return None
    columns = list(dict.fromkeys(c for row in rows for c in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / SUMMARY_NAME
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return path


class SweepSummary(Callback):
    """Hydra callback: ``sweep_summary.csv`` in the sweep folder once every point has run."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        keys = [k for k in os.environ.get(ENV_SWEPT, "").split(",") if k]
        path = write_summary(Path(config.hydra.sweep.dir), keys)
        if path is not None:
            print(f"sweep summary: {path}")
