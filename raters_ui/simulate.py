"""Simulated raters: a study's human section with data before real raters come — clearly labelled as such.

``imagen-bench study simulate STUDY raters=3 simulate.score=world_accuracy`` adds raters named
``simulated-NNN`` (every table and export shows the name) who rate through the same assignment and
submission code as people do. Each answers from an automatic per-prompt score of the two systems, read
from the systems' run folders (``samples.jsonl``, the mean over a prompt's seeds): it prefers the system
with the higher score with probability ``sigmoid(difference / temperature)``, and says "indifferent" when
the difference is below ``tie_margin``. Control items are answered correctly. Times on item are drawn
from ``seconds`` (plausible, so the speed floor does not flag them). The study stays open for real raters.

Simulated preferences follow the score they are given, so the "agreement with humans" of that score is
high by construction: the report and ``study analyze`` name the raters, and this docstring says why.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from harness.errors import UserError
from harness.formats.results import read_samples
from raters_ui.assign import current_screen, find_rater, submit
from raters_ui.db import Assignment, Item, Study, StudyDB, System
from raters_ui.studies import add_raters

PREFIX = "simulated"


@dataclass(frozen=True)
class SimulationSpec:
    raters: int = 3
    score: str = "world_accuracy"  # the per-image output both questions follow
    temperature: float = 0.1  # larger: noisier raters
    tie_margin: float = 0.02  # |difference| below this: indifferent
    seconds: tuple[float, float] = (15.0, 45.0)
    seed: int = 0


def system_scores(db: StudyDB, study_name: str, output: str) -> dict[int, dict[str, float]]:
    """{system id: {prompt_id: mean of ``output`` over the prompt's images}} from each system's run folder."""
    with db.read() as s:
        study = s.scalar(select(Study).where(Study.name == study_name))
        if study is None:
            raise UserError(f"no study {study_name!r} in this database")
        systems = s.execute(select(System.id, System.run_id, System.source).where(System.study_id == study.id)).all()
    out: dict[int, dict[str, float]] = {}
    for sid, run_id, source in systems:
        rows = read_samples(Path(source)) if source and Path(source).is_dir() else []
        per: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            if r.get(output) is not None:
                per[r["prompt_id"]].append(float(r[output]))
        if not per:
            raise UserError(
                f"system {run_id} ({source}) has no per-image {output!r} scores in samples.jsonl; "
                "evaluate its run with that metric first, or pick simulate.score="
            )
        out[sid] = {p: sum(v) / len(v) for p, v in per.items()}
    return out


def _answer(
    item: Item, a_slot: int, scores: dict[int, dict[str, float]], spec: SimulationSpec, rng: random.Random
) -> str:
    if item.kind == "control":
        want = item.expected_alignment or item.expected_fidelity or 1
        return "A" if want == a_slot else "B"
    s1 = scores[item.system_1_id].get(item.prompt_id)
    s2 = scores[item.system_2_id].get(item.prompt_id) if item.system_2_id else None
    if s1 is None or s2 is None or abs(s1 - s2) < spec.tie_margin:
        return "indifferent"
    slot = 1 if rng.random() < 1 / (1 + math.exp(-(s1 - s2) / spec.temperature)) else 2
    return "A" if slot == a_slot else "B"


def simulate_raters(db: StudyDB, study_name: str, spec: SimulationSpec) -> dict[str, int]:
    """Add ``spec.raters`` simulated raters and let each rate until the study has nothing left for them."""
    scores = system_scores(db, study_name, spec.score)
    tokens = add_raters(db, study_name, spec.raters, prefix=PREFIX)
    done: dict[str, int] = {}
    for label, token in tokens.raters.items():
        rater = find_rater(db, token, study_name)
        rng = random.Random(f"{spec.seed}:{label}")
        count = 0
        while (screen := current_screen(db, rater)) is not None:
            with db.read() as s:
                a = s.get(Assignment, screen.assignment_id)
                item = s.get(Item, a.item_id)
                a_slot = a.a_slot
            answer = _answer(item, a_slot, scores, spec, rng)
            submit(db, rater, screen.assignment_id, answer, answer, seconds=rng.uniform(*spec.seconds))
            count += 1
        done[label] = count
    return done
