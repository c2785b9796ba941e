"""The world suite's question graphs, written from each prompt's ground-truth spec, and an answerer that knows
the answers exactly (the scene parser).

:func:`questions_for` turns a :class:`~benchmarks.world.scenes.Spec` into DSG-style questions: an entity per
shape ("Is there a triangle?"), its colour as a child ("Is there a green triangle?"), the count and any named
size below that, the relation with both objects as parents, the total ("Are there exactly 3 shapes in the
image?") and the sign ("Is there a sign?" → "Does the sign say 'MOON'?"; "Is there no sign?" when none is
asked). Each question carries its ``check``, so :class:`WorldAnswerer` answers from a parse. The questions
are chosen so that *all of them answered "yes"* is exactly the world judge's verdict (:func:`judge.check`)
for the suite's prompts: a per-prompt "all correct" then equals ``world_accuracy`` image by image (tested),
which checks the question-graph pipeline end to end against known answers, offline.

One simplification against the judge: a relation between two colour-shape groups of several objects each is
answered "some pair in that relation"; the suite's positional prompts name two single objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks.world.parser import Detected, Parse, parse_image
from benchmarks.world.scenes import GENERATOR_VERSION, ObjectSpec, Spec
from harness.formats.questions import Question, QuestionSet, dumps_questions

QUESTIONS_FILE = Path(__file__).parent / "data" / "world_questions.jsonl"
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
_RELATION_WORDS = {"left_of": "to the left of", "right_of": "to the right of", "above": "above", "below": "below"}


def _desc(o: ObjectSpec) -> str:
    return " ".join(w for w in (o.size, o.color, o.shape) if w)


@dataclass
class _Builder:
    questions: list[Question]

    def add(self, type_: Any, wording: str, parents: Sequence[str], /, **check: Any) -> str:
        qid = f"q{len(self.questions) + 1}"
        self.questions.append(Question(qid, type_, wording, tuple(parents), check))
        return qid


def _groups(spec: Spec) -> dict[tuple[str, str], list[str | None]]:
    """(colour, shape) → the sizes the caption names for each of those objects (None: unnamed)."""
    out: dict[tuple[str, str], list[str | None]] = {}
    for o in spec.objects:
        out.setdefault((o.color, o.shape), []).append(o.size)
    return out


def _object_questions(b: _Builder, spec: Spec) -> dict[tuple[str, str], str]:
    """Entities, colours, counts and sizes; returns each group's deepest question (a relation's parent)."""
    entity = {s: b.add("object", f"Is there a {s}?", [], shape=s) for s in dict.fromkeys(o.shape for o in spec.objects)}
    deepest: dict[tuple[str, str], str] = {}
    for (color, shape), sizes in _groups(spec).items():
        attr = b.add("attribute", f"Is there a {color} {shape}?", [entity[shape]], color=color, shape=shape)
        m = len(sizes)
        text = (
            f"Is there exactly one {color} {shape}?" if m == 1 else f"Are there exactly {_NUMBERS[m]} {color} {shape}s?"
        )
        last = b.add("count", text, [attr], count=m, color=color, shape=shape)
        for size, k in Counter(z for z in sizes if z is not None).items():
            if m == 1:
                text = f"Is the {color} {shape} {size}?"
            elif k == m:
                text = f"Are all the {color} {shape}s {size}?"
            else:
                text = f"Are {_NUMBERS[k]} of the {color} {shape}s {size}?"
            last = b.add("attribute", text, [last], color=color, shape=shape, size=size, at_least=k)
        deepest[(color, shape)] = last
    return deepest


def questions_for(prompt_id: str, prompt: str, spec: Spec) -> QuestionSet:
    """The question graph of one world prompt (parents first; see the module docstring)."""
    b = _Builder([])
    deepest = _object_questions(b, spec)
    if spec.relation is not None:
        oa, ob = spec.objects[spec.relation.a], spec.objects[spec.relation.b]
        b.add(
            "relation",
            f"Is the {_desc(oa)} {_RELATION_WORDS[spec.relation.type]} the {_desc(ob)}?",
            [deepest[(oa.color, oa.shape)], deepest[(ob.color, ob.shape)]],
            relation=spec.relation.type,
            a=_obj_check(oa),
            b=_obj_check(ob),
        )
    k = len(spec.objects)
    if spec.text is not None:
        sign = b.add("object", "Is there a sign?", [], signs=1)
        b.add("text", f"Does the sign say '{spec.text}'?", [sign], text=spec.text)
        if k == 0:
            b.add("count", "Is the sign the only thing in the image?", [sign], total=0)
    else:
        b.add("object", "Is there no sign in the image?", [], signs=0)
    if k > 0:
        wording = "Is there exactly one shape" if k == 1 else f"Are there exactly {_NUMBERS[k]} shapes"
        b.add("count", f"{wording} in the image?", [], total=k)
    return QuestionSet(prompt_id, prompt, tuple(b.questions))


def _obj_check(o: ObjectSpec) -> dict[str, Any]:
    return {"color": o.color, "shape": o.shape, "size": o.size}


def build_questions(suite_rows: Sequence[dict[str, Any]]) -> str:
    """``world_questions.jsonl``'s text from the suite's rows (id, prompt, spec): rebuilt byte for byte."""
    return dumps_questions(questions_for(r["id"], r["prompt"], Spec.from_json(r["spec"])) for r in suite_rows)


# --------------------------------------------------------------------------- answers from a parse


def _accepts(o: Detected, want: dict[str, Any]) -> bool:
    return ObjectSpec(want["color"], want["shape"], want.get("size")).accepts(o.color, o.shape, o.size)


def _related(found: Sequence[Detected], c: dict[str, Any]) -> bool:
    from benchmarks.world.judge import relation_holds

    return any(
        relation_holds(c["relation"], x.center, y.center)
        for i, x in enumerate(found)
        for j, y in enumerate(found)
        if i != j and _accepts(x, c["a"]) and _accepts(y, c["b"])
    )


def answer_check(parse: Parse, check: dict[str, Any]) -> bool:
    """The exact answer to one question's ``check`` for a parse (what a perfect VQA model would say)."""
    from drawbench.ocr_judge import normalise

    found = parse.objects
    if "relation" in check:
        return _related(found, check)
    if "total" in check:
        return len(found) == check["total"]
    if "signs" in check:
        return len(parse.signs) == check["signs"]
    if "text" in check:
        read = parse.signs[0].text if len(parse.signs) == 1 else None
        return read is not None and normalise(read) == normalise(check["text"])
    same = [o for o in found if o.shape == check["shape"] and ("color" not in check or o.color == check["color"])]
    if "at_least" in check:
        return sum(o.size == check["size"] for o in same) >= check["at_least"]
    if "count" in check:
        return len(same) == check["count"]
    return bool(same)


class WorldAnswerer:
    """Answers world questions exactly: parses the image once (RapidOCR reads a sign only when a question asks
    about a word) and evaluates each question's ``check``. Registered as the ``world_exact`` answerer."""

    name = "world_exact"
    version = f"world-exact-answerer/1+world{GENERATOR_VERSION}"

    def __init__(self, read_text: Any = None) -> None:
        self._read_text = read_text

    @classmethod
    def from_options(cls, env: Any = None) -> WorldAnswerer:
        return cls()  # no options: the parser is exact

    def prepare(self) -> None:
        from benchmarks.world.judge import default_reader

        if self._read_text is None:
            self._read_text = default_reader()  # a broken OCR install fails before generation

    def identity(self) -> dict[str, Any]:
        return {"answerer": self.name, "version": self.version, "parser": "benchmarks.world.parser"}

    def answer(self, image: Image.Image, questions: QuestionSet) -> list[float]:
        """P("yes") per question: 1 or 0."""
        wants_text = any("text" in q.check for q in questions.questions)
        if any(not q.check for q in questions.questions):
            missing = next(q.id for q in questions.questions if not q.check)
            raise ValueError(f"{questions.prompt_id}: question {missing} has no 'check'; world_exact needs one")
        parse = parse_image(image, self._read_text if wants_text else None)
        return [float(answer_check(parse, dict(q.check))) for q in questions.questions]
