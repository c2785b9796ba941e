"""The typed pieces every reader of ``results.json`` shares: a reported number with its interval and n
(:class:`MetricValue`), what an output is (:class:`OutputInfo`, with the :class:`SetInputs` of a set
output), and the score table's layout (:class:`ResultTable` of :class:`TableRow`).

Each type has one writer (``to_json``) and one reader (``from_json``, which names the bad field in one
line). The scorer builds them, :mod:`harness.formats.results` stores them, and the gate, the report and the
study analysis read their attributes: nobody rebuilds a writer's meaning from ``.get`` chains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import UserError

GroupBy = Literal["stage", "category"]
OVERALL = "overall"
UNCATEGORISED = "(uncategorised)"
_VALUE_FIELDS = ("value", "ci_low", "ci_high", "n", "level", "method", "note", "std")


def _number(raw: Any, what: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise UserError(f"{what} must be a number, got {raw!r}")
    return float(raw)


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UserError(f"{what} must be a JSON object, got {type(raw).__name__}")
    return raw


@dataclass(frozen=True)
class MetricValue:
    """One reported number: ``value`` with its interval (None where undefined: ``note`` says why), the
    number of observations ``n``, the interval's ``level`` and ``method``; ``std`` for outputs reported as
    a mean ± sd (KID over subsets); ``extra`` holds the metric's own facts (n_reference, estimator, ...)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    level: float | None = None
    method: str | None = None
    note: str | None = None
    std: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def defined(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "level": self.level,
            "method": self.method,
        }
        out.update({k: getattr(self, k) for k in ("note", "std") if getattr(self, k) is not None})
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, raw: Any, what: str = "value") -> MetricValue:
        d = _object(raw, what)
        n = d.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            raise UserError(f"{what}.n must be an integer, got {n!r}")
        return cls(
            value=_number(d.get("value"), f"{what}.value"),
            ci_low=_number(d.get("ci_low"), f"{what}.ci_low"),
            ci_high=_number(d.get("ci_high"), f"{what}.ci_high"),
            n=n,
            level=_number(d.get("level"), f"{what}.level"),
            method=d.get("method"),
            note=d.get("note"),
            std=_number(d.get("std"), f"{what}.std"),
            extra={k: v for k, v in d.items() if k not in _VALUE_FIELDS},
        )

    def format(self, digits: int = 3) -> str:
        """``0.512 [0.470, 0.550]``; ``0.5 [undefined]`` when the interval is; ``0.01 ± 0.002 (sd)`` for a std."""
        if self.value is None:
            return "–"
        value = f"{self.value:.{digits}f}"
        if self.has_interval:
            return f"{value} [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
        if self.std is not None:
            return f"{value} ± {self.std:.{digits}g} (sd)"
        return f"{value} [undefined]" if self.note else value


@dataclass(frozen=True)
class SetInputs:
    """What a set output was computed from, recorded in ``metric_info.<output>.set`` so the regression gate
    can recompute it on resampled prompts without loading the metric's network.

    ``features``: the key of the generated features kept in the run folder
    (``features/<features>-<stage>.npz``, rows keyed by prompt id and seed); ``reference``: the cache key
    (:class:`~harness.metrics.extractors.reference_stats.StatsKey` fields) of the reference features; ``options``:
    whatever else changes the value (KID's subsets, CMMD's estimator, PRDC's k), handed back to
    :meth:`~harness.metrics.base.Metric.set_statistic`. Two runs are comparable on the output only if all
    three agree.
    """

    features: str
    reference: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"features": self.features, "reference": dict(self.reference), "options": dict(self.options)}

    to_json = as_dict

    @staticmethod
    def from_dict(d: Mapping[str, Any], what: str = "set") -> SetInputs:
        try:
            return SetInputs(str(d["features"]), dict(d["reference"]), dict(d.get("options") or {}))
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{what} must hold features, reference and options ({err})") from None


@dataclass(frozen=True)
class OutputInfo:
    """What one output is: the metric (registered ``entry`` and its ``version``) that reports it, its
    direction and kind, and for a set output the inputs it was computed from (None: it cannot be rebuilt)."""

    metric: str
    version: str
    higher_is_better: bool
    kind: str = "continuous"
    per_image: bool = True
    entry: str | None = None  # the registry name, when it differs from ``metric``
    bounds: tuple[float, float] | None = None
    label: str | None = None
    unit: str | None = None
    set: SetInputs | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def registry_name(self) -> str:
        return self.entry or self.metric

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "entry": self.registry_name,
            "version": self.version,
            "higher_is_better": self.higher_is_better,
            "kind": self.kind,
            "per_image": self.per_image,
            "bounds": list(self.bounds) if self.bounds else None,
            "label": self.label,
            "unit": self.unit,
            **({} if self.per_image else {"set": None if self.set is None else self.set.to_json()}),
            **self.extra,
        }

    @classmethod
    def from_json(cls, raw: Any, what: str = "metric_info") -> OutputInfo:
        d = _object(raw, what)
        for key in ("metric", "version", "higher_is_better"):
            if key not in d:
                raise UserError(f"{what} lacks {key!r}")
        bounds = d.get("bounds")
        known = {
            "metric",
            "entry",
            "version",
            "higher_is_better",
            "kind",
            "per_image",
            "bounds",
            "label",
            "unit",
            "set",
        }
        return cls(
            metric=str(d["metric"]),
            version=str(d["version"]),
            higher_is_better=bool(d["higher_is_better"]),
            kind=str(d.get("kind") or "continuous"),
            per_image=bool(d.get("per_image", True)),
            entry=d.get("entry"),
            bounds=(float(bounds[0]), float(bounds[1])) if bounds else None,
            label=d.get("label"),
            unit=d.get("unit"),
            set=SetInputs.from_dict(d["set"], f"{what}.set") if d.get("set") else None,
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True)
class TableRow:
    """One row of the score table: a cascade stage (COCO) or a prompt category / overall (suites).
    ``prompts``: the prompt ids a category row covers (None: every prompt at the stage), so the gate
    pairs exactly the prompts the scorer grouped."""

    group: str
    stage: str
    n_prompts: int
    n_images: int
    prompts: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "stage": self.stage,
            "n_prompts": self.n_prompts,
            "n_images": self.n_images,
            "prompts": None if self.prompts is None else list(self.prompts),
        }

    @classmethod
    def from_json(cls, raw: Any, what: str = "table row") -> TableRow:
        d = _object(raw, what)
        try:
            prompts = d.get("prompts")
            return cls(
                str(d["group"]),
                str(d["stage"]),
                int(d["n_prompts"]),
                int(d["n_images"]),
                None if prompts is None else tuple(str(p) for p in prompts),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{what} must hold group, stage, n_prompts and n_images ({err})") from None


@dataclass(frozen=True)
class ResultTable:
    """The layout the scorer used: rows by ``group_by`` (stage, or category at ``stage``), intervals over
    ``ci_unit`` (image or prompt) at ``level``, and the outputs in column order."""

    group_by: GroupBy
    stage: str | None
    ci_unit: str
    level: float
    outputs: tuple[str, ...]
    rows: tuple[TableRow, ...]

    def groups(self) -> list[str]:
        return [r.group for r in self.rows]

    def row(self, group: str) -> TableRow | None:
        return next((r for r in self.rows if r.group == group), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "group_by": self.group_by,
            "stage": self.stage,
            "ci_unit": self.ci_unit,
            "level": self.level,
            "outputs": list(self.outputs),
            "rows": [r.to_json() for r in self.rows],
        }

    @classmethod
    def from_json(cls, raw: Any, what: str = "table") -> ResultTable:
        d = _object(raw, what)
        if d.get("group_by") not in ("stage", "category"):
            raise UserError(f"{what}.group_by must be 'stage' or 'category', got {d.get('group_by')!r}")
        rows = tuple(TableRow.from_json(r, f"{what}.rows[{i}]") for i, r in enumerate(d.get("rows") or []))
        return cls(
            d["group_by"],
            d.get("stage"),
            str(d.get("ci_unit") or "image"),
            float(d.get("level") or 0.95),
            tuple(str(o) for o in d.get("outputs") or []),
            rows,
        )


def category_prompts(items: Iterable[tuple[str, str | None]]) -> dict[str, set[str]]:
    """{category: prompt ids} from (prompt id, category) pairs; a prompt without one is ``(uncategorised)``."""
    out: dict[str, set[str]] = {}
    for prompt_id, category in items:
        out.setdefault(category or UNCATEGORISED, set()).add(prompt_id)
    return out
