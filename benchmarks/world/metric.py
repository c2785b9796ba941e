"""The world judge as a registered metric: is each image exactly what its prompt's spec asks for?

For every image whose prompt carries a world spec (``PromptItem.extra["spec"]``, as in the
``world`` suite), the judge (:func:`benchmarks.world.judge.judge_image`) parses the image and
reports binary outputs that the harness aggregates per category with Wilson intervals:

* ``world_accuracy``: the verdict (all sub-checks pass) — the headline, GenEval-style but exact;
* ``world_count``, ``world_objects``: right number of objects; right objects with their attributes;
* ``world_relation`` (positional prompts only) and ``world_text`` (sign prompts only).

The parse (what was found, what the sign reads) is kept per image. ``world_judge.enabled=false``
skips it. Images whose prompt has no spec are not scored (the metric reports how many).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from tqdm import tqdm

from benchmarks.world.scenes import GENERATOR_VERSION, Spec
from harness.errors import UserError
from harness.formats.files import open_rgb
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores

_SUBCHECKS = {"world_count": "count", "world_objects": "objects", "world_relation": "relation", "world_text": "text"}


def _binary(name: str, label: str) -> Output:
    # max_worse 0.02: two points of a [0, 1] judge rate
    return Output(name, higher_is_better=True, kind="binary", bounds=(0.0, 1.0), label=label, max_worse=0.02)


def _found(parse: dict[str, Any]) -> str:
    """ "large red circle, small blue square | sign 'MOON'": what the parser saw, for samples.jsonl."""
    objs = ", ".join(f"{o['size']} {o['color']} {o['shape']}" for o in parse["objects"]) or "nothing"
    signs = "".join(f" | sign {s['text']!r}" if s["text"] is not None else " | sign" for s in parse["signs"])
    return objs + signs


class WorldAccuracy(Metric):
    name = "world_accuracy"
    version = f"imagen-bench-world-judge/1+world{GENERATOR_VERSION}"
    outputs = (
        _binary("world_accuracy", "World judge accuracy"),
        _binary("world_count", "World count"),
        _binary("world_objects", "World objects"),
        _binary("world_relation", "World relation"),
        _binary("world_text", "World text"),
    )
    needs = frozenset({"images", "prompts"})
    config_key = "world_judge"

    def __init__(self, specs: dict[str, Spec]) -> None:
        self.specs = specs

    @classmethod
    def from_config(cls, env: MetricEnv) -> WorldAccuracy:
        from drawbench.suites import load_suite

        bench = env.cfg.get("benchmark") if env.cfg is not None else None
        if bench is None:
            raise UserError("world_accuracy needs a prompt-suite benchmark whose prompts carry world specs")
        specs = {}
        for item in load_suite(bench).items:
            if item.extra.get("spec") is not None:
                try:
                    specs[item.prompt_id] = Spec.from_json(item.extra["spec"])
                except ValueError as err:
                    raise UserError(f"{item.prompt_id}: bad world spec ({err})") from None
        if not specs:
            raise UserError(
                f"benchmark {bench.get('name')!r} has no prompt with a world 'spec'; "
                "world_accuracy only scores world suites (benchmark=world)"
            )
        return cls(specs)

    def prepare(self, env: MetricEnv) -> None:
        if any(s.text is not None for s in self.specs.values()):
            from benchmarks.world.judge import default_reader

            default_reader()  # build RapidOCR's sessions now: a broken install fails before generation

    def identity(self) -> dict[str, Any]:
        return {
            "judge": "benchmarks.world.judge",
            "world_generator": GENERATOR_VERSION,
            "ocr": f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')}",
            "prompts": len(self.specs),
        }

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        from benchmarks.world.judge import judge_image

        values: dict[str, dict] = {name: {} for name in ("world_accuracy", *_SUBCHECKS)}
        details: dict = {}
        scored = [(r, p) for r, p in zip(images.records, images.paths()) if r.prompt_id in self.specs]
        for rec, path in tqdm(scored, unit="img", desc="world judge", disable=not env.progress, dynamic_ncols=True):
            verdict = judge_image(open_rgb(path), self.specs[rec.prompt_id])
            key = rec.sample_key
            values["world_accuracy"][key] = float(verdict["correct"])
            for name, sub in _SUBCHECKS.items():
                if verdict[sub] is not None:
                    values[name][key] = float(verdict[sub])
            details[key] = {"world_found": _found(verdict["parse"]), "world_text_read": verdict["text_read"]}
        return Scores(
            per_image={k: v for k, v in values.items() if v},
            per_image_details=details,
            details={
                "world_accuracy": {
                    "scored_images": len(scored),
                    "images_without_spec": len(images.records) - len(scored),
                }
            },
        )
