"""The OCR judge as a registered metric: does the image show the text its prompt quotes?

Scores only the images whose prompt category is one of the benchmark's ``ocr_categories`` (DrawBench's
"Text"); ``ocr.enabled=false`` skips it. Two outputs per image: ``ocr_exact_match`` (0/1, Wilson
intervals) and ``ocr_char_similarity`` (in [0, 1], bootstrap intervals); the reading is kept per image.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from drawbench.ocr_judge import OcrJudge
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores


class OcrJudgeMetric(Metric):
    name = "ocr"
    version = "imagen-bench-ocr/1"
    outputs = (
        # max_worse 0.02: two points of a [0, 1] rate / similarity
        Output(
            "ocr_exact_match",
            higher_is_better=True,
            kind="binary",
            bounds=(0.0, 1.0),
            label="OCR exact match",
            max_worse=0.02,
        ),
        Output(
            "ocr_char_similarity",
            higher_is_better=True,
            kind="bounded",
            bounds=(0.0, 1.0),
            label="OCR char similarity",
            max_worse=0.02,
        ),
    )
    needs = frozenset({"images", "prompts"})
    config_key = "ocr"

    def __init__(self, categories: list[str] | None = None) -> None:
        self.categories = list(categories or [])
        self.judge: OcrJudge | None = None

    @classmethod
    def from_config(cls, env: MetricEnv) -> OcrJudgeMetric:
        bench = env.cfg.get("benchmark") if env.cfg is not None else None
        return cls(list(bench.get("ocr_categories") or []) if bench is not None else [])

    def prepare(self, env: MetricEnv) -> None:
        if self.categories:
            self.judge = OcrJudge()  # builds the ONNX sessions now: a broken install fails before generation

    def identity(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "engine": "rapidocr-onnxruntime",
            "engine_version": version("rapidocr-onnxruntime"),
            "categories": self.categories,
        }

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        scored = [r for r in images.records if r.category in self.categories]
        if not scored:
            return Scores()
        judge = self.judge or OcrJudge()
        exact, sim, details = {}, {}, {}
        for r in tqdm(scored, unit="img", desc="OCR judge", disable=not env.progress, dynamic_ncols=True):
            s = judge.score(images.run_dir / r.path, r.prompt)
            exact[r.sample_key] = float(s["exact_match"])
            sim[r.sample_key] = float(s["char_similarity"])
            details[r.sample_key] = {"ocr_target": s["target"], "ocr_read": s["read"]}
        return Scores(per_image={"ocr_exact_match": exact, "ocr_char_similarity": sim}, per_image_details=details)
