"""``imagen-bench eval benchmark=coco_fid30k``: the zero-shot COCO FID-30K protocol (Imagen §4.2, Table 1).

30K captions drawn at random (seed recorded) from the val2014 annotations, one image per caption with
seed ``image_seed_offset + index``, generated up to the first stage at ≥ 256 px (the paper evaluates at
256×256), and FID/KID against the val2014 images plus CLIP score, at every stage. The metrics are the
config's ``benchmark.metrics``; the pipeline is :func:`harness.evaluation.evaluate.run_benchmark`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from benchmarks import coco
from harness.errors import UserError
from harness.evaluation.evaluate import Benchmark
from harness.formats.files import prompts_sha256
from harness.generation.generate import generator_name
from harness.generation.runner import RunResult, WorkItem, plan_work
from harness.metrics.base import ReferenceSet
from imagen.validation import SEED_LIMIT, non_negative_int


def resolve_stop_at(cfg: DictConfig) -> str | None:
    """``stop_at=`` when given, else ``benchmark.stop_at``; ``auto``: the first stage at ≥ 256 px (the paper
    evaluates COCO at 256×256), else the last."""
    want = cfg.get("stop_at") or cfg.benchmark.get("stop_at", "auto")
    if want != "auto":
        return want
    from imagen.build import stage_specs

    specs = stage_specs(cfg.model)
    return next((s.name for s in specs if s.resolution >= 256), specs[-1].name)


class CocoFid30k(Benchmark):
    """COCO captions → one image each; scored per cascade stage against the val2014 images."""

    group_by = "stage"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        if not cfg.get("images_from") and generator_name(cfg) == "imagen":  # others: stop_at names their stage
            with open_dict(cfg):
                cfg.stop_at = resolve_stop_at(cfg)
        self.prompts, self.source = coco.load_prompts(cfg.benchmark, cfg.coco)
        self.offset = non_negative_int(cfg.benchmark.image_seed_offset, "benchmark.image_seed_offset")
        if self.offset + len(self.prompts) > SEED_LIMIT:
            raise UserError(f"benchmark.image_seed_offset={self.offset} puts seeds past 2^63")
        files = coco.reference_files(cfg.benchmark, cfg.coco, self.prompts)
        self._reference = ReferenceSet(files, Path(cfg.coco.images), "coco2014", f"val2014-{cfg.benchmark.reference}")

    def work(self) -> list[WorkItem]:
        return [
            w
            for i, p in enumerate(self.prompts)
            for w in plan_work([(p.prompt_id, p.caption, None)], [self.offset + i])
        ]

    def reference(self) -> ReferenceSet:
        return self._reference

    def score_stages(self, result: RunResult) -> list[str]:
        return list(result.stages)

    def describe(self) -> dict[str, Any]:
        return {
            **self.source,
            "kind": "coco",
            "stop_at": self.cfg.get("stop_at"),
            "reference": {"set": self.cfg.benchmark.reference, "count": len(self._reference.files)},
        }

    def prompts_info(self) -> dict[str, Any]:
        return {
            "count": len(self.prompts),
            "source": self.source["caption_source"],
            "sha256": prompts_sha256((p.prompt_id, p.caption) for p in self.prompts),
        }

    def seeds_info(self) -> dict[str, Any]:
        return {"image_seeds": f"{self.offset} + caption index", "caption_seed": self.source.get("caption_seed")}
