"""VQAScore (Lin et al. 2024, "Evaluating Text-to-Visual Generation with Image-to-Text Generation"): a
vision-language model's probability of "Yes" to 'Does this figure show "{prompt}"? Please answer yes or no.'

Per image, bounded in [0, 1], higher is better; aggregated per category with a bootstrap interval like any
per-image score. The model is ``vqa.model`` (a folder or a repo id in the HF cache: a seq2seq model such as
BLIP-2/InstructBLIP Flan-T5, or a chat VLM such as Qwen2-VL, Qwen2.5-VL or LLaVA; see
:mod:`harness.metrics.extractors.vqa`); the question template ``vqa.template`` is recorded with the weights'
hash, so a number is never compared across templates.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from harness.errors import MissingWeightsError, UserError
from harness.formats.files import open_rgb
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.metrics.extractors.vqa import VQASCORE_TEMPLATE, VqaModel, shared_vqa
from harness.validation import as_int


class VqaScore(Metric):
    name = "vqascore"
    version = "imagen-bench-vqascore/1"
    outputs = (
        Output("vqascore", higher_is_better=True, kind="bounded", bounds=(0.0, 1.0), label="VQAScore", max_worse=0.02),
    )
    needs = frozenset({"images", "prompts"})
    config_key = "vqa"

    def __init__(self, template: str = VQASCORE_TEMPLATE, batch_size: int = 8) -> None:
        if "{prompt}" not in template:
            raise UserError(f"vqa.template must contain {{prompt}}, got {template!r}")
        self.template, self.batch_size = template, batch_size
        self.vqa: VqaModel | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> VqaScore:
        batch = as_int(env.option("vqa", "batch_size", 8), "vqa.batch_size", 1)
        return cls(str(env.option("vqa", "template", VQASCORE_TEMPLATE)), int(batch or 8))

    def prepare(self, env: MetricEnv) -> None:
        try:
            self.vqa = shared_vqa(env)
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err} (or vqa.enabled=false to run without VQAScore)") from None

    def identity(self) -> dict[str, Any]:
        return {"template": self.template, **(self.vqa.identity if self.vqa else {})}

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        if self.vqa is None:
            self.prepare(env)
        assert self.vqa is not None
        keys = [r.sample_key for r in images.records]
        paths, prompts = images.paths(), images.prompts
        values: dict[Any, float] = {}
        starts = range(0, len(keys), self.batch_size)
        for s in tqdm(starts, unit="batch", desc="VQAScore", disable=not env.progress, dynamic_ncols=True):
            chunk = slice(s, s + self.batch_size)
            questions = [self.template.format(prompt=p) for p in prompts[chunk]]
            yes, _ = self.vqa.yes_no([open_rgb(p) for p in paths[chunk]], questions)
            values.update({k: float(v) for k, v in zip(keys[chunk], yes)})
        return Scores(per_image={"vqascore": values})
