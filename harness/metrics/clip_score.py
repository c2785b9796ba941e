"""CLIP score as a registered metric: 100 · max(cos(image, prompt), 0) per image (``clip_score`` module).

Options come from ``cfg.clip`` (model, pretrained, batch_size); ``clip.enabled=false`` skips it and the
results say so. The weights are loaded in ``prepare``, before any image is generated, so a missing
checkpoint costs nothing. Prompts longer than CLIP's context are scored on their first tokens only;
how many were cut is recorded per image and per run.
"""

from __future__ import annotations

from typing import Any

from harness.errors import MissingWeightsError
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.metrics.extractors.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, ClipScorer, load_clip_scorer


class ClipScore(Metric):
    name = "clip_score"
    version = "imagen-bench-clip-score/1"
    # max_worse 0.2: CLIP score is 100·cos, so 0.2 is 0.002 of a [0, 1] cosine
    outputs = (
        Output(
            "clip_score",
            higher_is_better=True,
            kind="continuous",
            bounds=(0.0, 100.0),
            label="CLIP score",
            max_worse=0.2,
        ),
    )
    needs = frozenset({"images", "prompts"})
    config_key = "clip"

    def __init__(self, model: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED, batch_size: int = 16) -> None:
        self.model, self.pretrained, self.batch_size = model, pretrained, int(batch_size)
        self.scorer: ClipScorer | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> ClipScore:
        return cls(
            str(env.option("clip", "model", DEFAULT_MODEL)),
            str(env.option("clip", "pretrained", DEFAULT_PRETRAINED)),
            int(env.option("clip", "batch_size", 16)),
        )

    def prepare(self, env: MetricEnv) -> None:
        try:
            self.scorer = env.shared(
                ("clip", self.model, self.pretrained),
                lambda: load_clip_scorer(self.model, self.pretrained, device=env.device, cache_dir=env.cache_dir),
            )
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err} (or clip.enabled=false to run without CLIP score)") from None

    def identity(self) -> dict[str, Any]:
        return dict(self.scorer.identity) if self.scorer is not None else {}

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.scorer is None:
            self.prepare(env)
        result = self.scorer.score(images.paths(), images.prompts, batch_size=self.batch_size, progress=env.progress)
        keys = [r.sample_key for r in images.records]
        per_image = {k: float(s) for k, s in zip(keys, result.scores)}
        cut = {k: {"clip_truncated": bool(t)} for k, t in zip(keys, result.truncated)}
        truncated_prompts = sorted({r.prompt_id for r, t in zip(images.records, result.truncated) if t})
        return Scores(
            per_image={"clip_score": per_image},
            per_image_details=cut,
            details={
                "clip_score": {
                    "truncated_images": result.num_truncated,
                    "truncated_prompts": truncated_prompts,
                    "context_length": self.scorer.context_length,
                }
            },
        )
