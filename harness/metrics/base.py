"""The metric contract: one small class per metric, found by name, run the same way by every benchmark.

A metric (like an lm-eval metric or a HELM ``Metric``) says what it is and what it needs, and
computes numbers from one stage's images of a run::

    class MyMetric(Metric):
        name = "my_metric"
        version = "my-metric/1"               # bump when the numbers would change
        outputs = (Output("my_score", higher_is_better=True, kind="bounded", bounds=(0, 1)),)
        needs = frozenset({"images", "prompts"})

        def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
            return Scores(per_image={"my_score": {r.sample_key: f(r) for r in images.records}})

and one line in a benchmark config (``metrics: [clip_score, my_metric]``) turns it on. The harness
(``harness.evaluation.scoring``) aggregates per-image values per group (stage or prompt category) with the
interval their ``kind`` calls for, and records each output's direction and the metric's version in
``results.json`` so that the regression gate and the reports can read any metric without knowing it.

Lifecycle: ``from_config`` (read options) → ``prepare`` (load weights, check and summarise the
reference set: everything that can fail, *before* any image is generated) → ``compute`` per stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig

from harness.formats.manifest import ImageRecord
from harness.formats.values import MetricValue, SetInputs
from harness.metrics.extractors.reference_stats import FeatureStats, StatsKey
from harness.metrics.maths.intervals import KINDS, Kind

#: What a metric may need; the benchmark says what it can provide.
NEEDS = frozenset({"images", "prompts", "reference", "spec"})
SampleKey = tuple[str, int]  # (prompt_id, seed)


@dataclass(frozen=True)
class Output:
    """One number a metric reports (a metric may report several: OCR exact match and character similarity).

    ``per_image`` outputs are values per image, aggregated by the harness per group with an interval of
    their ``kind``; set-level outputs (FID, KID) are one value per group, computed by the metric, and the
    metric says how to recompute them on a resampled set (:meth:`Metric.set_statistic`).

    ``max_worse`` is the regression the gate tolerates by default, in the output's own units (a run may
    override it with ``thresholds.<name>.max_worse=``): the size of change below which two checkpoints
    are "the same" for this number, so every output of every benchmark can be gated without a threshold
    per output.
    """

    name: str
    higher_is_better: bool
    kind: Kind = "continuous"
    per_image: bool = True
    bounds: tuple[float, float] | None = None
    label: str | None = None  # column header in tables (default: the name)
    unit: str | None = None
    max_worse: float | None = None  # the gate's default tolerated regression (see above)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"output {self.name!r}: kind must be one of {KINDS}")
        if self.max_worse is not None and not self.max_worse >= 0:
            raise ValueError(f"output {self.name!r}: max_worse must be >= 0, got {self.max_worse}")

    def describe(self) -> dict[str, Any]:
        return {
            "higher_is_better": self.higher_is_better,
            "kind": self.kind,
            "per_image": self.per_image,
            "bounds": list(self.bounds) if self.bounds else None,
            "label": self.label or self.name,
            "unit": self.unit,
        }


class SetStatistic(ABC):
    """A set output as a function of *which* generated images form the set, the reference fixed.

    Built by :meth:`Metric.set_statistic` from one run's generated features (rows in a fixed order) and
    the reference features. ``value()`` is the output on all rows and must equal what ``compute``
    reported; ``resampled(index_sets)`` is its value on each set of row indices (with repeats: a
    bootstrap draw). The metric's own interval and the gate's paired interval both resample through it,
    so nothing outside the metric knows how a set output is computed.
    """

    @abstractmethod
    def value(self) -> float:
        """The output on the whole set."""

    @abstractmethod
    def resampled(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        """The output on each set of row indices, shape (len(index_sets),)."""


@dataclass(frozen=True)
class ImageSet:
    """One stage's images of one run: what a metric scores."""

    run_dir: Path
    stage: str
    records: list[ImageRecord]

    def paths(self) -> list[Path]:
        return [self.run_dir / r.path for r in self.records]

    @property
    def prompts(self) -> list[str]:
        return [r.prompt for r in self.records]

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class ReferenceSet:
    """Real images that set-level metrics compare against (COCO val2014, held-out world images, ...).

    ``dataset``/``split`` name it in cache keys and results; the files are checked by ``prepare``.
    """

    files: list[Path]
    root: Path
    dataset: str
    split: str = ""


#: A set-level value with its uncertainty (e.g. FID with a bootstrap interval over generated images): the
#: same typed value results.json stores.
SetValue = MetricValue


@dataclass
class Scores:
    """What :meth:`Metric.compute` returns for one image set.

    ``per_image``: output name → {(prompt_id, seed): value}, only for the images the metric applies to
    (OCR scores only the text categories). ``sets``: output name → value for the whole set.
    ``details``: anything worth recording (warnings, counts, per-image strings such as the OCR reading).
    """

    per_image: dict[str, dict[SampleKey, float]] = field(default_factory=dict)
    sets: dict[str, SetValue] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    per_image_details: dict[SampleKey, dict[str, Any]] = field(default_factory=dict)


class MetricEnv:
    """What metrics share within one evaluation: the config, device, caches, the reference set, and a
    feature cache so that metrics on the same features (FID and KID on Inception) extract them once."""

    def __init__(
        self,
        cfg: DictConfig | None = None,
        *,
        device: str = "cpu",
        cache_dir: str | Path | None = None,
        reference: ReferenceSet | None = None,
        progress: bool = True,
    ) -> None:
        self.cfg, self.device, self.reference, self.progress = cfg, device, reference, progress
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._shared: dict[Any, Any] = {}

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per key for the whole evaluation (features, loaded extractors, reference stats)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def option(self, block: str, key: str, default: Any = None) -> Any:
        """``cfg.<block>.<key>`` when the config has it, else ``default``."""
        node = self.cfg.get(block) if self.cfg is not None else None
        return default if node is None else node.get(key, default)


class Metric(ABC):
    """A metric: name, version, outputs with their direction, what it needs, and a compute."""

    name: ClassVar[str]
    version: ClassVar[str]
    outputs: ClassVar[tuple[Output, ...]]
    needs: ClassVar[frozenset[str]] = frozenset({"images"})
    #: The config block holding its options (``clip`` for CLIP score); ``<block>.enabled=false`` skips it.
    config_key: ClassVar[str | None] = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> Metric:
        """The metric with its options read from ``env.cfg`` (default: no options)."""
        return cls()

    def prepare(self, env: MetricEnv) -> None:
        """Load weights and check inputs: runs before any image is generated, so it fails fast."""

    @abstractmethod
    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        """Scores of one stage's images."""

    def identity(self) -> dict[str, Any]:
        """What produced the numbers (weights hashes, extractor, options), for results.json → ``extractors``
        under ``config_key`` (metrics sharing a block, like FID and KID, share one entry)."""
        return {}

    def cache_info(self) -> dict[str, Any]:
        """Cache hits worth recording (results.json → ``caches``), e.g. reference statistics read back."""
        return {}

    def describe_output(self, output: Output) -> dict[str, Any]:
        """``results.json`` → ``metric_info.<output>`` after :meth:`prepare`: the output's declaration, plus
        for a set output its :class:`SetInputs` (``set``). Override to refine the label with an option."""
        info = output.describe()
        if not output.per_image:
            inputs = self.set_inputs(output.name)
            info["set"] = inputs.as_dict() if inputs is not None else None
        return info

    def set_source(self, output: str) -> tuple[str, StatsKey] | None:
        """(generated-features key, reference cache key) set output ``output`` is computed from, known after
        :meth:`prepare`; None: it cannot be rebuilt (the gate then refuses to judge it)."""
        return None

    def set_options(self, output: str) -> dict[str, Any]:
        """The options that change set output ``output``'s value (recorded; handed back to :meth:`set_statistic`)."""
        return {}

    def set_inputs(self, output: str) -> SetInputs | None:
        """:class:`SetInputs` of set output ``output``: its source and options."""
        source = self.set_source(output)
        return None if source is None else SetInputs(source[0], source[1].as_dict(), self.set_options(output))

    @classmethod
    def set_statistic(
        cls, output: str, generated: np.ndarray, reference: FeatureStats, options: Mapping[str, Any]
    ) -> SetStatistic:
        """Set output ``output`` as a :class:`SetStatistic` of ``generated`` (n, d) against ``reference``, with
        the ``options`` its :class:`SetInputs` recorded. Every metric with a set output implements it."""
        raise NotImplementedError(f"metric {cls.name!r} does not say how to recompute {output!r} on a resampled set")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "version": cls.version,
            "needs": sorted(cls.needs),
            "outputs": {o.name: o.describe() for o in cls.outputs},
        }
