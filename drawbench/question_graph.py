"""The question-graph judge (TIFA, Hu et al. 2023; Davidsonian Scene Graph, Cho et al. 2024) as a per-image metric.

Each prompt of the suite has a stored question set (:mod:`harness.formats.questions`: typed yes/no questions
with parent links). An *answerer* (registered by name in :data:`ANSWERERS`: the world suite's exact parser,
or a vision-language model) says P("yes") to every question about an image; "yes" is P ≥ 0.5. DSG's rule
then credits a question only when every question it presupposes was credited too. Outputs per image:

* ``qg_score``: the share of the prompt's questions credited (DSG's score; [0, 1], bootstrap interval);
* ``qg_all``: every question credited (binary, Wilson interval): the prompt is fully satisfied;
* ``qg_<type>``: the share credited among questions of one type (object, attribute, count, relation,
  text), for prompts that have such questions: which kind of element the model gets wrong.

Options (``question_graph`` block): ``questions`` (the question file; null: the benchmark's ``questions``),
``answerer`` (a registered name), ``threshold`` (P("yes") counted as yes). Prompts without a question set
are not scored (counted in the details); a question file that names none of the suite's prompts, or holds
another text for a prompt id, stops the run before any image is generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from tqdm import tqdm

from harness.errors import UserError
from harness.formats.files import open_rgb, sha256_file
from harness.formats.questions import QUESTION_TYPES, QuestionSet, effective_answers, read_questions
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.registry import Registry
from harness.validation import as_float


class Answerer(Protocol):
    """Says P("yes") for each question of a set about one image."""

    name: str
    version: str

    def prepare(self) -> None: ...
    def identity(self) -> dict[str, Any]: ...
    def answer(self, image: Image.Image, questions: QuestionSet) -> list[float]: ...


#: name → an answerer class; ``cls.from_options(env)`` builds it from the evaluation's options.
ANSWERERS: Registry[Any] = Registry(
    "answerer",
    {"world_exact": "benchmarks.world.questions:WorldAnswerer", "vqa": "harness.metrics.extractors.vqa:VqaAnswerer"},
)


def _share(output: str, label: str) -> Output:
    return Output(output, higher_is_better=True, kind="bounded", bounds=(0.0, 1.0), label=label, max_worse=0.02)


def credited(questions: QuestionSet, p_yes: Sequence[float], threshold: float = 0.5) -> list[bool]:
    """The answers after DSG's dependency rule (a child of a "no" is not credited)."""
    return effective_answers(questions.questions, [p >= threshold for p in p_yes])


def image_scores(questions: QuestionSet, ok: Sequence[bool]) -> dict[str, float]:
    """``qg_score``, ``qg_all`` and ``qg_<type>`` of one image from its credited answers."""
    out = {"qg_score": sum(ok) / len(ok), "qg_all": float(all(ok))}
    for t in QUESTION_TYPES:
        of_type = [a for q, a in zip(questions.questions, ok) if q.type == t]
        if of_type:
            out[f"qg_{t}"] = sum(of_type) / len(of_type)
    return out


class QuestionGraph(Metric):
    name = "question_graph"
    version = "imagen-bench-question-graph/1"
    outputs = (
        _share("qg_score", "Question-graph score"),
        Output(
            "qg_all", higher_is_better=True, kind="binary", bounds=(0.0, 1.0), label="All questions", max_worse=0.02
        ),
        *(_share(f"qg_{t}", f"QG {t}") for t in QUESTION_TYPES),
    )
    needs = frozenset({"images", "prompts"})
    config_key = "question_graph"

    def __init__(self, sets: dict[str, QuestionSet], answerer: Answerer, threshold: float, source: str) -> None:
        self.sets, self.answerer, self.threshold, self.source = sets, answerer, threshold, source

    @classmethod
    def from_config(cls, env: MetricEnv) -> QuestionGraph:
        from drawbench.suites import load_suite, resolve_data_path

        bench = env.cfg.get("benchmark") if env.cfg is not None else None
        if bench is None:
            raise UserError("question_graph needs a prompt-suite benchmark (its prompts and their question sets)")
        file = env.option("question_graph", "questions") or bench.get("questions")
        if not file:
            raise UserError(
                f"benchmark {bench.get('name')!r} names no question file; give question_graph.questions=<file.jsonl>"
            )
        path = resolve_data_path(str(file))
        sets = read_questions(path)
        suite = {i.prompt_id: i.prompt for i in load_suite(bench).items}
        for pid, qs in sets.items():
            if pid in suite and qs.prompt != suite[pid]:
                raise UserError(f"{path}: prompt {pid!r} reads {qs.prompt!r} there but {suite[pid]!r} in the suite")
        covered = {pid: qs for pid, qs in sets.items() if pid in suite}
        if not covered:
            raise UserError(f"{path} has question sets for none of benchmark {bench.get('name')!r}'s prompts")
        name = str(env.option("question_graph", "answerer", "world_exact"))
        answerer = ANSWERERS[name].from_options(env)
        threshold = as_float(env.option("question_graph", "threshold", 0.5), "question_graph.threshold", 0.0, 1.0)
        return cls(covered, answerer, threshold, str(path))

    def prepare(self, env: MetricEnv) -> None:
        self.answerer.prepare()

    def identity(self) -> dict[str, Any]:
        return {
            "questions": Path(self.source).name,
            "questions_sha256": sha256_file(self.source),
            "prompts": len(self.sets),
            "threshold": self.threshold,
            **self.answerer.identity(),
        }

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        values: dict[str, dict] = {o.name: {} for o in self.outputs}
        details: dict = {}
        scored = [(r, p) for r, p in zip(images.records, images.paths()) if r.prompt_id in self.sets]
        for rec, path in tqdm(scored, unit="img", desc="question graph", disable=not env.progress, dynamic_ncols=True):
            qs = self.sets[rec.prompt_id]
            p_yes = self.answerer.answer(open_rgb(path), qs)
            ok = credited(qs, p_yes, self.threshold)
            for name, v in image_scores(qs, ok).items():
                values[name][rec.sample_key] = v
            failed = [q.text for q, a in zip(qs.questions, ok) if not a]
            details[rec.sample_key] = {"qg_failed": "; ".join(failed)}
        counts = {"scored_images": len(scored), "images_without_questions": len(images.records) - len(scored)}
        per_image = {k: v for k, v in values.items() if v}  # a question type no prompt has: no output
        return Scores(per_image=per_image, per_image_details=details, details={"question_graph": counts})
