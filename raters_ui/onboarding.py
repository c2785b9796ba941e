"""Before the first item: the instructions page, an optional consent line, and practice items.

* **Instructions** are the study owner's text (``study create instructions=...``, Markdown), or
  by default :data:`DEFAULT_INSTRUCTIONS`: the protocol of the Imagen paper's DrawBench study
  (Saharia et al. 2022): two sets of 8 images, two questions, three answers each.
* **Consent**: when the study has a consent line, starting needs the rater to tick it; the time
  is kept (``raters.consented_at``).
* **Practice items** (0-2) come next. They are built like control items (one set a degraded copy
  of the other, or the other set made for another caption) so the rater can be told the expected
  answer. They are not items: they have their own tables, are never assigned, never rated,
  never counted in progress or in any statistic; only how many a rater has done is kept.

A rater who has started (``raters.started_at``) goes straight to the items; raters of a study
that was under way when instructions came in were marked started by the migration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from harness.errors import UserError
from harness.formats.study_pairs import StudyItem
from raters_ui.assign import RaterRef
from raters_ui.controls import ControlPlan, ControlSpec, plan_controls
from raters_ui.db import PracticeImage, PracticeItem, Rater, Study, StudyDB, utcnow

MAX_PRACTICE = 2
LIMIT_TEXT = 20_000  # characters of instructions or consent

DEFAULT_INSTRUCTIONS = """\
In this study you compare two sets of images that were made from the same text caption.

For every caption you see **Set A** and **Set B**, eight images each, and answer two questions:

1. *Which set of images is of higher quality?*
2. *Which set of images better represents the text caption?*

For each question choose **I prefer set A**, **I prefer set B**, or **I am indifferent** when
neither set is better. Answer the two questions separately: a set can look better and still fit
the caption worse. Which set is shown on which side is random, so there is no pattern to find.

Look at the images closely before you answer: click any image (or press **V**) to see it at its
full size, and move through both sets with the arrow keys. You can answer with the keyboard too:
the keys are listed under the questions.
"""


@dataclass(frozen=True)
class RaterStatus:
    started: bool
    practice_done: int
    practice_total: int
    instructions: str
    consent: str | None


@dataclass(frozen=True)
class PracticeScreen:
    """One practice item as shown: ``expected`` maps a question to the right side ("A"/"B") or
    None when any answer is fine."""

    index: int  # 0-based
    total: int
    prompt: str
    set_a: list[str]
    set_b: list[str]
    mode: str
    expected: dict[str, str | None]


def check_text(value: str | None, what: str) -> str | None:
    """Owner-given instructions or consent: None/blank = not set; else at most LIMIT_TEXT characters
    of text without NUL (PostgreSQL cannot store it)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if "\x00" in text or len(text) > LIMIT_TEXT:
        raise UserError(f"{what} must be text of at most {LIMIT_TEXT} characters without NUL characters")
    return text


def rater_status(db: StudyDB, rater: RaterRef) -> RaterStatus:
    with db.read() as s:
        row = s.execute(
            select(Rater.started_at, Rater.practice_done, Study.practice_items, Study.instructions, Study.consent)
            .join(Study, Study.id == Rater.study_id)
            .where(Rater.id == rater.id)
        ).one()
    started, done, total, text, consent = row
    return RaterStatus(started is not None, int(done or 0), int(total or 0), text or DEFAULT_INSTRUCTIONS, consent)


def start(db: StudyDB, rater: RaterRef, consented: bool) -> None:
    """The rater leaves the instructions page (idempotent); refused without the consent asked for."""
    status = rater_status(db, rater)
    if status.consent and not consented:
        raise UserError("Please tick the consent box to start.")

    def txn(s: Session) -> None:
        r = s.get(Rater, rater.id)
        now = utcnow()
        r.started_at = r.started_at or now
        if status.consent and r.consented_at is None:
            r.consented_at = now

    db.write(txn)


def practice_screen(db: StudyDB, rater: RaterRef, index: int) -> PracticeScreen | None:
    with db.read() as s:
        seed = s.scalar(select(Study.seed).where(Study.id == rater.study_id))
        items = (
            s.execute(
                select(PracticeItem).where(PracticeItem.study_id == rater.study_id).order_by(PracticeItem.position)
            )
            .scalars()
            .all()
        )
        if not 0 <= index < len(items):
            return None
        p = items[index]
        rows = s.execute(
            select(PracticeImage.slot, PracticeImage.file)
            .where(PracticeImage.practice_id == p.id)
            .order_by(PracticeImage.slot, PracticeImage.position)
        ).all()
    by_slot = {1: [f for k, f in rows if k == 1], 2: [f for k, f in rows if k == 2]}
    a_slot = random.Random(f"{seed}:{rater.id}:practice:{index}").choice((1, 2))

    def side(slot: int | None) -> str | None:
        return None if slot is None else ("A" if slot == a_slot else "B")

    return PracticeScreen(
        index,
        len(items),
        p.prompt,
        by_slot[a_slot],
        by_slot[3 - a_slot],
        p.mode,
        {"fidelity": side(p.expected_fidelity), "alignment": side(p.expected_alignment)},
    )


def finish_practice(db: StudyDB, rater: RaterRef, index: int) -> None:
    """Count practice item ``index`` as done (idempotent: a double click or a second tab adds nothing)."""
    db.write(
        lambda s: s.execute(
            update(Rater).where(Rater.id == rater.id, Rater.practice_done == index).values(practice_done=index + 1)
        )
    )


def feedback(screen: PracticeScreen, answers: dict[str, str]) -> str:
    """What the practice item was and which answer was expected (plain text)."""
    good = screen.expected["fidelity"] or screen.expected["alignment"] or "A"
    bad = "B" if good == "A" else "A"
    if screen.mode == "degrade":
        what = (
            f"Set {bad} was a deliberately degraded copy of set {good}, so set {good} is the expected "
            "answer to the quality question; for the caption any answer is fine (same content)."
        )
        question = "fidelity"
    else:
        what = (
            f"Set {bad} showed images made for another caption, so set {good} is the expected answer "
            "to the caption question; for quality any answer is fine."
        )
        question = "alignment"
    verdict = "Your answer matches." if answers.get(question) == good else "Your answer was different."
    return f"Practice {screen.index + 1} of {screen.total} (not counted): {what} {verdict}"


def plan_practice(items: list[StudyItem], systems: list[str], n: int, seed: int) -> list[ControlPlan]:
    """``n`` practice items built like controls: a degraded copy first, then another caption's images."""
    if not 0 <= n <= MAX_PRACTICE:
        raise UserError(f"practice must be 0, 1 or 2 items, got {n}")
    if n == 0:
        return []
    mode = "both" if len({i.prompt for i in items}) >= 2 else "degrade"
    return plan_controls(items, systems, ControlSpec(count=n, every=1, mode=mode), random.Random(f"{seed}:practice"))


def add_practice(session: Session, study_id: int, names: list[tuple[ControlPlan, list[str], list[str]]]) -> None:
    """Store practice items: (plan, image-store names of slot 1, of slot 2) each."""
    for k, (plan, good, bad) in enumerate(names):
        row = PracticeItem(
            study_id=study_id,
            position=k,
            prompt=plan.item.prompt,
            mode=plan.mode,
            expected_fidelity=plan.expected_fidelity,
            expected_alignment=plan.expected_alignment,
        )
        session.add(row)
        session.flush()
        for slot, files in ((1, good), (2, bad)):
            session.add_all(
                PracticeImage(practice_id=row.id, slot=slot, position=j, file=f) for j, f in enumerate(files)
            )
