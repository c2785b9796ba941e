"""Metrics by name: a lazy registry of ``"module:Class"`` strings, as lm-eval registers models and tasks.

Built-in metrics are listed here as strings, so importing the registry imports no metric (and no
torch, open_clip or OCR engine) until a benchmark asks for one. A user adds a metric with the
:func:`register_metric` decorator, or names it in a benchmark config by its path
(``metrics: [clip_score, mypkg.metrics:Sharpness]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from harness.errors import UserError
from harness.formats.values import OutputInfo
from harness.metrics.base import NEEDS, Metric, MetricEnv
from harness.registry import Registry

_BUILT_IN: dict[str, str] = {
    "fid": "harness.metrics.fid:Fid",
    "kid": "harness.metrics.fid:Kid",
    "clip_score": "harness.metrics.clip_score:ClipScore",
    "ocr": "drawbench.ocr_metric:OcrJudgeMetric",
    "world_accuracy": "benchmarks.world.metric:WorldAccuracy",
    "question_graph": "drawbench.question_graph:QuestionGraph",
    "vqascore": "harness.metrics.vqascore:VqaScore",
    "cmmd": "harness.metrics.cmmd:Cmmd",
    "fd_dinov2": "harness.metrics.fd_dinov2:FdDinov2",
    "prdc_inception": "harness.metrics.prdc:PrdcInception",
    "prdc_dinov2": "harness.metrics.prdc:PrdcDinov2",
    "prdc_clip": "harness.metrics.prdc:PrdcClip",
    "pickscore": "harness.metrics.preference:PickScore",
    "hpsv2": "harness.metrics.preference:Hpsv2",
    "hpsv21": "harness.metrics.preference:Hpsv21",
    "imagereward": "harness.metrics.preference:ImageReward",
}
METRICS: Registry[type[Metric]] = Registry(
    "metric",
    _BUILT_IN,
    check=lambda c: isinstance(c, type) and issubclass(c, Metric),
    expected="a harness.metrics.base.Metric subclass",
    paths=True,
)

M = TypeVar("M", bound=type[Metric])


def register_metric(name: str | None = None) -> Callable[[M], M]:
    """Class decorator: make the metric available under ``name`` (default: its ``name`` attribute)."""

    def wrap(cls: M) -> M:
        METRICS.register(name or cls.name, cls)
        return cls

    return wrap


def get_metric(name: str) -> type[Metric]:
    """The metric class registered as ``name``, or named by a ``module:Class`` path."""
    cls = METRICS[name]
    unknown = set(cls.needs) - NEEDS
    if unknown:
        raise UserError(f"metric {name!r} needs {sorted(unknown)}, which no benchmark provides")
    return cls


@dataclass
class MetricPlan:
    """The metrics of one evaluation: those that run and those skipped, with the reason."""

    active: list[Metric]
    skipped: dict[str, str]
    entries: dict[str, str] = field(default_factory=dict)  # metric name → how the benchmark named it

    def describe(self) -> dict[str, OutputInfo]:
        """``results.json`` → ``metric_info``: each output's metric (and the registry entry that finds it
        again), version, direction and, for set outputs, what they were computed from."""
        info: dict[str, OutputInfo] = {}
        for m in self.active:
            for out in m.outputs:
                info[out.name] = OutputInfo.from_json(
                    {
                        "metric": m.name,
                        "entry": self.entries.get(m.name, m.name),
                        "version": m.version,
                        **m.describe_output(out),
                    }
                )
        return info


def plan_metrics(names: Iterable[str], env: MetricEnv, provides: Iterable[str]) -> MetricPlan:
    """Instantiate the listed metrics; one disabled in config (``<block>.enabled=false``) is skipped.

    ``provides`` is what the benchmark can give (images, prompts, reference, spec); a metric that needs
    more is a one-line error before any work starts.
    """
    names = list(names or [])
    if len(set(names)) != len(names):
        raise UserError(f"benchmark.metrics lists a metric twice: {names}")
    have = set(provides)
    active: list[Metric] = []
    skipped: dict[str, str] = {}
    seen_outputs: dict[str, str] = {}
    entries: dict[str, str] = {}
    for name in names:
        cls = get_metric(str(name))
        entries[cls.name] = str(name)
        if cls.config_key and env.option(cls.config_key, "enabled", True) is False:
            skipped[cls.name] = f"disabled ({cls.config_key}.enabled=false)"
            continue
        missing = set(cls.needs) - have
        if missing:
            raise UserError(f"metric {cls.name!r} needs {sorted(missing)}, which this benchmark does not provide")
        for out in cls.outputs:
            if out.name in seen_outputs:
                raise UserError(f"metrics {seen_outputs[out.name]!r} and {cls.name!r} both report {out.name!r}")
            seen_outputs[out.name] = cls.name
        active.append(cls.from_config(env))
    return MetricPlan(active, skipped, entries)
