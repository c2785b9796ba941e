"""Question graphs (TIFA / Davidsonian Scene Graph style): per prompt, the yes/no questions an image must
answer "yes" to, each typed and linked to the questions it presupposes.

A question set is data, written once per suite and checked in (``questions.jsonl``: one prompt per line)::

    {"prompt_id": "world-counting-00", "prompt": "three green triangles", "questions": [
      {"id": "q1", "type": "object", "text": "Is there a triangle?", "parents": []},
      {"id": "q2", "type": "attribute", "text": "Is there a green triangle?", "parents": ["q1"]},
      {"id": "q3", "type": "count", "text": "Are there exactly three green triangles?", "parents": ["q2"],
       "check": {"count": 3, "color": "green", "shape": "triangle"}}]}

``type`` is one of :data:`QUESTION_TYPES` (TIFA's and DSG's element kinds, reduced to what the gate reports);
``parents`` are ids of the same prompt (DSG's dependency edges: "is the triangle green?" presupposes "is
there a triangle?"); ``check`` is an optional machine-readable statement of the question, for answerers
that know the ground truth (the world suite's exact parser). Every reader goes through :func:`read_questions`,
which names the bad line and field in one message; :func:`write_questions` is the one writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import UserError
from harness.formats.files import atomic_write_text
from harness.formats.jsonio import read_jsonl_objects

QuestionType = Literal["object", "attribute", "count", "relation", "text"]
QUESTION_TYPES: tuple[str, ...] = ("object", "attribute", "count", "relation", "text")
FORMAT = "imagen-bench-questions/1"


@dataclass(frozen=True)
class Question:
    id: str
    type: QuestionType
    text: str
    parents: tuple[str, ...] = ()
    check: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type, "text": self.text, "parents": list(self.parents)}
        if self.check:
            out["check"] = dict(self.check)
        return out

    @staticmethod
    def from_json(raw: Any, where: str) -> Question:
        if not isinstance(raw, dict):
            raise UserError(f"{where}: a question must be a JSON object, got {type(raw).__name__}")
        for key in ("id", "type", "text"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise UserError(f"{where}: question field {key!r} must be a non-empty string, got {raw.get(key)!r}")
        if raw["type"] not in QUESTION_TYPES:
            raise UserError(f"{where}: question {raw['id']!r} has type {raw['type']!r}; one of {QUESTION_TYPES}")
        parents = raw.get("parents", [])
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise UserError(f"{where}: question {raw['id']!r}: 'parents' must be a list of question ids")
        check = raw.get("check", {})
        if not isinstance(check, dict):
            raise UserError(f"{where}: question {raw['id']!r}: 'check' must be a JSON object")
        return Question(raw["id"], raw["type"], raw["text"], tuple(parents), check)


@dataclass(frozen=True)
class QuestionSet:
    """The questions of one prompt, parents before children (checked: ids unique, parents known, no cycle)."""

    prompt_id: str
    prompt: str
    questions: tuple[Question, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for q in self.questions:
            if q.id in seen:
                raise UserError(f"{self.prompt_id}: question id {q.id!r} appears twice")
            unknown = [p for p in q.parents if p not in seen]
            if unknown:
                # parents must come first: this also rules out cycles
                raise UserError(f"{self.prompt_id}: question {q.id!r} names parents {unknown} not listed before it")
            seen.add(q.id)
        if not self.questions:
            raise UserError(f"{self.prompt_id}: a question set needs at least one question")

    def to_json(self) -> dict[str, Any]:
        return {"prompt_id": self.prompt_id, "prompt": self.prompt, "questions": [q.to_json() for q in self.questions]}

    @staticmethod
    def from_json(raw: Any, where: str) -> QuestionSet:
        if not isinstance(raw, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        for key in ("prompt_id", "prompt"):
            if not isinstance(raw.get(key), str):
                raise UserError(f"{where}: field {key!r} must be a string, got {raw.get(key)!r}")
        qs = raw.get("questions")
        if not isinstance(qs, list):
            raise UserError(f"{where}: field 'questions' must be a list")
        where = f"{where} ({raw['prompt_id']})"
        return QuestionSet(raw["prompt_id"], raw["prompt"], tuple(Question.from_json(q, where) for q in qs))


def dumps_questions(sets: Iterable[QuestionSet]) -> str:
    """The file's exact text: one set per line, keys in a fixed order (rebuilt byte for byte by a test)."""
    return "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in sets)


def write_questions(path: str | Path, sets: Iterable[QuestionSet]) -> Path:
    path = Path(path)
    atomic_write_text(path, dumps_questions(sets))
    return path


def read_questions(path: str | Path) -> dict[str, QuestionSet]:
    """prompt id → its question set; a missing file, bad JSON, a bad field or a repeated prompt is one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"question file not found: {path}")
    out: dict[str, QuestionSet] = {}
    for n, raw in read_jsonl_objects(path):
        where = f"{path}:{n}"
        qs = QuestionSet.from_json(raw, where)
        if qs.prompt_id in out:
            raise UserError(f"{where}: prompt {qs.prompt_id!r} has a question set already")
        out[qs.prompt_id] = qs
    if not out:
        raise UserError(f"question file {path} holds no question set")
    return out


def effective_answers(questions: Sequence[Question], yes: Sequence[bool]) -> list[bool]:
    """DSG's dependency rule: a question counts as answered "yes" only when it and every question it
    presupposes (parents, transitively) were answered "yes" — "is the triangle green?" is not credited
    when no triangle is there (Cho et al. 2024, DSG §3)."""
    if len(yes) != len(questions):
        raise ValueError(f"{len(yes)} answers for {len(questions)} questions")
    ok: dict[str, bool] = {}
    for q, a in zip(questions, yes):
        ok[q.id] = bool(a) and all(ok[p] for p in q.parents)
    return [ok[q.id] for q in questions]
