"""Prompt suites as benchmarks (``imagen-bench drawbench``, ``imagen-bench eval benchmark=<suite>``).

DrawBench, PartiPrompts, GenEval, T2I-CompBench and any suite described by a ``conf/benchmark`` file:
``images_per_prompt`` images per prompt with the suite's seeds (or another system's images imported
from ``images_from``), one 2×4 grid per prompt, and the config's metrics per category at the scored
stage (the final one by default) with an overall row. A suite may name a ``reference`` image folder,
which makes set-level metrics (FID/KID) available on its overall row. The pipeline is
:func:`harness.evaluation.evaluate.run_benchmark`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from drawbench.suites import PromptSuite, load_suite
from harness.errors import UserError
from harness.evaluation.evaluate import Benchmark
from harness.formats.files import prompts_sha256
from harness.formats.manifest import verified_records
from harness.formats.runs import select_stage
from harness.generation.grids import write_grids
from harness.generation.provenance import write_resolved_config
from harness.generation.runner import RunResult, WorkItem, plan_work
from harness.metrics.base import ReferenceSet
from harness.metrics.extractors.images import list_images


def suite_seeds(suite: PromptSuite) -> list[int]:
    seeds = list(suite.seeds)[: int(suite.images_per_prompt)]
    if len(seeds) < int(suite.images_per_prompt):
        raise UserError(
            f"suite {suite.name} wants {suite.images_per_prompt} images per prompt but lists {len(seeds)} seeds"
        )
    return seeds


class PromptSuiteBenchmark(Benchmark):
    """A prompt suite: ``images_per_prompt`` seeds per prompt, scored per category."""

    group_by = "category"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.suite = load_suite(cfg.benchmark)
        self.seeds = suite_seeds(self.suite)
        self._reference = self._load_reference(cfg.benchmark.get("reference"))

    def _load_reference(self, ref: Any) -> ReferenceSet | None:
        if not ref:
            return None
        root = Path(str(ref.get("root")))
        if not root.is_dir():
            raise UserError(f"benchmark.reference.root {root} is not a folder of reference images")
        return ReferenceSet(
            list_images(root), root, str(ref.get("dataset") or self.suite.name), str(ref.get("split") or "")
        )

    @property
    def name(self) -> str:
        return self.suite.name

    def work(self) -> list[WorkItem]:
        return plan_work(((i.prompt_id, i.prompt, i.category) for i in self.suite.items), self.seeds)

    def reference(self) -> ReferenceSet | None:
        return self._reference

    def import_images(self, run_dir: Path) -> RunResult:
        """Another system's images (drawbench/README.md layout) as this run's images."""
        from drawbench.external import import_external_run

        run_dir.mkdir(parents=True, exist_ok=True)
        import_external_run(self.cfg.images_from, self.suite, self.seeds, run_dir, run_id=run_dir.name)
        write_resolved_config(run_dir, self.cfg)
        records = verified_records(run_dir)
        return RunResult(run_dir, records, stages=sorted({r.stage for r in records}), complete=True)

    def after_generation(self, result: RunResult) -> None:
        rows, cols = self.suite.grid
        write_grids(result.run_dir, result.records, rows=rows, cols=cols, seeds=self.seeds)

    def score_stages(self, result: RunResult) -> list[str]:
        stage, _ = select_stage(result.records, self.cfg.get("score_stage"))
        return [stage]

    def category_order(self) -> list[str]:
        return list(self.suite.categories)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "suite",
            "prompts": len(self.suite.items),
            "images_per_prompt": len(self.seeds),
            "subset": self.suite.is_subset,
            "ci_unit": str(self.cfg.get("ci_unit", "image")),
            "sources": {s.path.name: s.sha256 for s in self.suite.sources},
            "reference": None
            if self._reference is None
            else {"root": str(self._reference.root), "count": len(self._reference.files)},
        }

    def prompts_info(self) -> dict[str, Any]:
        return {
            "count": len(self.suite.items),
            "source": self.suite.name,
            "sha256": prompts_sha256((i.prompt_id, i.prompt) for i in self.suite.items),
        }

    def seeds_info(self) -> dict[str, Any]:
        return {"image_seeds": self.seeds}
