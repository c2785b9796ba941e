"""``meta_eval.json``: each metric's agreement with human labels, as ``imagen-bench meta-eval`` wrote it.

Schema (``format: imagen-bench.meta-eval``, ``version: 1``)::

    labels, kind     the label file and its kind (likert | pairwise)
    images, labels_n labelled images; ratings or votes read
    metrics          the registered metrics that scored the images
    created, git
    rows             one per (output, statistic): see :class:`AgreementRow`

An undefined value or bound (too few items, no decided pair) is ``null`` in the file and NaN once read. The
written ``meta_eval.csv`` beside it holds the rows only. One writer, one reader: the command writes, the demo
and the report read.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.formats.files import atomic_write_text
from harness.formats.jsonio import in_folder, read_versioned_json
from harness.formats.results import finite_json

META_EVAL_NAME = "meta_eval.json"
FORMAT = "imagen-bench.meta-eval"
VERSION = 1
CEILING = "(one rater vs the rest)"  # the output name of the inter-rater ceiling row


@dataclass(frozen=True)
class AgreementRow:
    output: str  # a metric output, or CEILING
    statistic: str  # spearman | kendall | pairwise_accuracy
    value: float
    ci_low: float
    ci_high: float
    n: int  # images (ratings) or decided pairs (votes) behind the value
    method: str

    @property
    def is_ceiling(self) -> bool:
        return self.output == CEILING

    def interval(self, digits: int = 3) -> str:
        if not math.isfinite(self.ci_low):
            return "(undefined)"
        return f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


@dataclass
class MetaEval:
    labels: str
    kind: str
    images: int
    labels_n: int
    metrics: list[str]
    rows: list[AgreementRow] = field(default_factory=list)
    created: str = ""
    git: str | None = None

    def statistics(self) -> list[str]:
        return list(dict.fromkeys(r.statistic for r in self.rows))


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def write_meta_eval(folder: str | Path, result: MetaEval) -> Path:
    """``meta_eval.json`` and ``meta_eval.csv`` in ``folder``; returns the JSON's path."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not result.created:
        result.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    columns = [f.name for f in fields(AgreementRow)]
    frame = pd.DataFrame([asdict(r) for r in result.rows], columns=columns)
    atomic_write_text(folder / "meta_eval.csv", frame.to_csv(index=False))
    body = {"format": FORMAT, "version": VERSION, **finite_json(asdict(result))}
    atomic_write_text(folder / META_EVAL_NAME, json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False))
    return folder / META_EVAL_NAME


def read_meta_eval(path: str | Path) -> MetaEval:
    """The agreement rows of a ``meta_eval.json`` (or the folder holding one)."""
    path = in_folder(path, META_EVAL_NAME)
    raw = read_versioned_json(path, FORMAT, VERSION, "meta-eval result")
    try:
        rows = [
            AgreementRow(
                str(r["output"]),
                str(r["statistic"]),
                _nan(r["value"]),
                _nan(r["ci_low"]),
                _nan(r["ci_high"]),
                int(r["n"]),
                str(r["method"]),
            )
            for r in raw.pop("rows")
        ]
        known = {f.name for f in fields(MetaEval)} - {"rows"}
        return MetaEval(rows=rows, **{k: v for k, v in raw.items() if k in known})
    except (TypeError, KeyError, ValueError) as err:
        raise UserError(f"{path} is not a complete meta-eval result ({err})") from None


def ordered(rows: Sequence[AgreementRow]) -> list[AgreementRow]:
    """Per statistic, the best output first and the ceiling last (an undefined value sorts below any number)."""
    return sorted(rows, key=lambda r: (r.statistic, r.is_ceiling, -(r.value if math.isfinite(r.value) else -9.0)))


def agreement_table(rows: Sequence[AgreementRow]) -> str:
    """The rows as aligned text: output, statistic, value, 95% interval, n."""
    lines = [f"{'output':<28} {'statistic':<18} {'value':>7}  {'95% interval':<17} {'n':>6}"]
    for r in ordered(rows):
        value = f"{r.value:>7.3f}" if math.isfinite(r.value) else f"{'–':>7}"
        lines.append(f"{r.output:<28} {r.statistic:<18} {value}  {r.interval():<17} {r.n:>6}")
    return "\n".join(lines)
