"""The stored question graphs of GenEval and T2I-CompBench, derived by rule from each prompt's structure.

* **GenEval** (Ghosh et al. 2023): exactly from its ``evaluation_metadata.jsonl``: every object of ``include``
  gets an object question, then its count ("Are there exactly two clocks?", when more than one), colour and
  position questions, each a child of the object questions it presupposes (DSG's edges). GenEval's
  ``exclude`` (e.g. not three clocks) is implied by "exactly". Every question carries its spec as ``check``,
  so a detector-based answerer can answer it as GenEval does.
* **T2I-CompBench** (Huang et al. 2023): the structured evaluation sets by pattern — attribute binding
  (``color``, ``shape``, ``texture``: "a green bench and a blue bowl"), 2-D and 3-D ``spatial`` ("a dog in front
  of a desk") and ``numeracy`` ("three guitars and two pillows"). Prompts that do not follow their set's
  pattern (the free-form sentences at the end of each file, ``non_spatial`` and ``complex``) get no questions:
  an LLM question generator (DSG's) would write those; the metric counts them as unscored, never as wrong.

``python -m drawbench.question_sets`` rewrites both files in ``drawbench/data/questions/``; a test rebuilds
them byte for byte. DrawBench's own set (``drawbench.jsonl``) is hand-written: see ``SOURCES.md`` there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from drawbench.suites import PromptItem, load_suite
from harness.formats.questions import Question, QuestionSet, write_questions

QUESTIONS_DIR = Path(__file__).parent / "data" / "questions"
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
WORD_NUMBER = {w: k for k, w in enumerate(NUMBERS)} | {"a": 1, "an": 1}
ARTICLE = r"(?:(an?|the) )?"
RELATIONS = (
    "on the left of",
    "on the right of",
    "on the top of",
    "on top of",
    "on the bottom of",
    "on side of",
    "next to",
    "near",
    "under",
    "below",
    "above",
    "in front of",
    "behind",
    "hidden by",
)


class _Builder:
    """The questions of one prompt, numbered q1, q2, ... in order (parents first)."""

    def __init__(self) -> None:
        self.questions: list[Question] = []

    def add(self, kind: Any, text: str, parents: Iterable[str] = (), **check: Any) -> str:
        qid = f"q{len(self.questions) + 1}"
        self.questions.append(Question(qid, kind, text, tuple(parents), check))
        return qid


PLURAL_CLASSES = ("skis", "scissors")  # GenEval class names that are plural in English


def _is_are(noun: str, article: str | None) -> str:
    return "Is" if article else "Are"


def _there(noun: str, article: str | None) -> str:
    return f"Is there {article} {noun}?" if article in ("a", "an") else f"{_is_are(noun, article)} there {noun}?"


def _a(noun: str) -> str | None:
    """The indefinite article of a singular noun (None for a plural class: "Are there skis?")."""
    return None if noun in PLURAL_CLASSES else "an" if noun[0] in "aeiou" else "a"


# --- GenEval ----------------------------------------------------------------------------------------


def _plural_in(prompt: str, count: int) -> str | None:
    """The plural the GenEval prompt itself uses after the count word ("a photo of two clocks" -> "clocks")."""
    m = re.search(rf"\b{NUMBERS[count]} ([a-z ]+?)(?: and |$)", prompt) if count < len(NUMBERS) else None
    return m.group(1) if m else None


def geneval_set(item: PromptItem) -> QuestionSet:
    b, ids = _Builder(), []
    objects = item.extra["include"]
    for spec in objects:
        cls, count = spec["class"], int(spec.get("count", 1))
        plural = _plural_in(item.prompt, count) if count > 1 else None
        there = _there(cls, _a(cls)) if count == 1 else f"Are there {plural or cls}?"
        qid = b.add("object", there, object=cls)
        if count > 1:
            qid = b.add("count", f"Are there exactly {NUMBERS[count]} {plural or cls}?", [qid], object=cls, count=count)
        if "color" in spec:
            text = f"{_is_are(cls, _a(cls))} the {cls} {spec['color']}?"
            qid = b.add("attribute", text, [qid], object=cls, color=spec["color"])
        ids.append(qid)
    for k, spec in enumerate(objects):
        if "position" in spec:
            relation, other = spec["position"][0], int(spec["position"][1])
            phrase = f"to the {relation}" if relation in ("left of", "right of") else relation
            text = f"{_is_are(spec['class'], _a(spec['class']))} the {spec['class']} {phrase} the {objects[other]['class']}?"
            b.add("relation", text, [ids[k], ids[other]], subject=spec["class"], relation=relation,
                  object=objects[other]["class"])  # fmt: skip
    return QuestionSet(item.prompt_id, item.prompt, tuple(b.questions))


# --- T2I-CompBench ----------------------------------------------------------------------------------


def _clean(prompt: str) -> str | None:
    """The prompt when it is one of its set's templated lines (lower case, no full stop), else None: the
    free-form sentences that close each file ("The metallic pen and fluffy notebook jot down ideas ...")
    would parse into nonsense objects."""
    text = prompt.strip()
    return text if text == text.lower() and not text.endswith(".") else None


def _noun(text: str) -> bool:
    return len(text.split()) <= 3


def binding_set(item: PromptItem) -> QuestionSet | None:
    """ "a green bench and a blue bowl": each object, and its attribute (colour, shape or texture)."""
    part = ARTICLE + r"([a-z-]+) ([a-z][a-z -]*?)"
    m = re.fullmatch(f"{part} and {part}", _clean(item.prompt) or "")
    if not m or not (_noun(m.group(3)) and _noun(m.group(6))):
        return None
    b = _Builder()
    for article, adjective, noun in (m.group(1, 2, 3), m.group(4, 5, 6)):
        obj = b.add("object", _there(noun, article), object=noun)
        b.add("attribute", f"{_is_are(noun, article)} the {noun} {adjective}?", [obj], object=noun, attribute=adjective)
    return QuestionSet(item.prompt_id, item.prompt, tuple(b.questions))


def spatial_set(item: PromptItem) -> QuestionSet | None:
    """ "a dog in front of a desk": both objects, and the relation between them."""
    relations = "|".join(re.escape(r) for r in RELATIONS)
    pattern = ARTICLE + rf"([a-z][a-z -]*?) ({relations}) " + ARTICLE + r"([a-z][a-z -]*)"
    m = re.fullmatch(pattern, _clean(item.prompt) or "")
    if not m or not (_noun(m.group(2)) and _noun(m.group(5))):
        return None
    a_article, a, relation, b_article, c = m.groups()
    b = _Builder()
    first = b.add("object", _there(a, a_article), object=a)
    second = b.add("object", _there(c, b_article), object=c)
    text = f"{_is_are(a, a_article)} the {a} {relation} the {c}?"
    b.add("relation", text, [first, second], subject=a, relation=relation, object=c)
    return QuestionSet(item.prompt_id, item.prompt, tuple(b.questions))


def numeracy_set(item: PromptItem) -> QuestionSet | None:
    """ "three guitars and two pillows": each object, and its exact count."""
    parts = [p.strip() for p in re.split(r",| and ", _clean(item.prompt) or "") if p.strip()]
    parsed = [p.split(" ", 1) for p in parts]
    if not parsed or any(len(p) != 2 or p[0] not in WORD_NUMBER or len(p[1].split()) > 2 for p in parsed):
        return None
    b = _Builder()
    for word, noun in parsed:
        n = WORD_NUMBER[word]
        if n == 1:
            obj = b.add("object", _there(noun, _a(noun)), object=noun)
            b.add("count", f"Is there exactly one {noun}?", [obj], object=noun, count=1)
        else:
            obj = b.add("object", f"Are there {noun}?", object=noun)
            b.add("count", f"Are there exactly {NUMBERS[n]} {noun}?", [obj], object=noun, count=n)
    return QuestionSet(item.prompt_id, item.prompt, tuple(b.questions))


T2I_RULES: dict[str, Callable[[PromptItem], QuestionSet | None]] = {
    "color": binding_set,
    "shape": binding_set,
    "texture": binding_set,
    "spatial": spatial_set,
    "3d_spatial": spatial_set,
    "numeracy": numeracy_set,
}


def t2i_compbench_sets(items: Iterable[PromptItem]) -> list[QuestionSet]:
    out = []
    for item in items:
        rule = T2I_RULES.get(item.category or "")
        qs = rule(item) if rule else None
        if qs is not None:
            out.append(qs)
    return out


#: suite -> (its question file in QUESTIONS_DIR, the rule that writes its sets from the suite's prompts)
BUILT: dict[str, tuple[str, Callable[[Iterable[PromptItem]], list[QuestionSet]]]] = {
    "geneval": ("geneval.jsonl", lambda items: [geneval_set(i) for i in items]),
    "t2i_compbench": ("t2i_compbench.jsonl", t2i_compbench_sets),
}


def build(suite: str) -> list[QuestionSet]:
    """The question sets of a suite built by rule (a name of :data:`BUILT`)."""
    return BUILT[suite][1](load_suite(suite))


def main() -> None:
    for suite, (name, _) in BUILT.items():
        sets = build(suite)
        path = write_questions(QUESTIONS_DIR / name, sets)
        print(f"{path}: {len(sets)} prompts, {sum(len(s.questions) for s in sets)} questions")


if __name__ == "__main__":
    main()
