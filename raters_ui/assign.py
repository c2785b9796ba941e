"""What a rater sees next, and recording what they answered.

Assignment is dynamic, so raters can come and go: when a rater has no open item, the next one is
a main item they have not had, among those still short of ``ratings_per_item`` (an item's load
counts completed assignments and open ones younger than :data:`ASSIGNMENT_TTL`, so an abandoned
tab frees its slot), least-loaded first, ties broken by a seeded shuffle. The first rater can
still submit after the TTL; both ratings are then stored and the analysis counts each item's
first ``ratings_per_item`` raters only (the rule is in :mod:`raters_ui.studies`). After every
``control_every`` main items a control item is interleaved. The open assignment is stored, so a
refresh or another device resumes on the same item; the A/B placement is drawn when the item is
assigned and stored with it.

**Time on item** is measured on the server: an assignment's ``shown_at`` is set the first time its
screen is served (a reload or another device keeps it), and :func:`submit` stores the seconds from
then to the commit with each rating. What the browser reports (its own time, the image-open
events; :mod:`raters_ui.telemetry`) is stored beside it, never instead of it.

Nothing here returns system identities to the page: :class:`Screen` holds the prompt, the two
lists of opaque image-store names in display order, and progress counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from harness.errors import UserError
from raters_ui.db import (
    CHOICES,
    Assignment,
    ImageView,
    Item,
    ItemImage,
    Rater,
    Rating,
    Study,
    StudyDB,
    hash_token,
    insert_ignore,
    utcnow,
)
from raters_ui.telemetry import ClientReport

ASSIGNMENT_TTL = timedelta(minutes=30)
_ASSIGN_LOCK = 7272  # PostgreSQL advisory lock class for "assigning in study <id>"


@dataclass(frozen=True)
class RaterRef:
    id: int
    study_id: int
    label: str


@dataclass(frozen=True)
class Screen:
    """One rating screen: no system names, run ids or paths, by construction."""

    assignment_id: int
    prompt: str
    set_a: list[str]
    set_b: list[str]
    done: int
    total: int


def find_rater(db: StudyDB, token: str, study_name: str | None = None) -> RaterRef | None:
    """The rater whose token this is (``None`` for an unknown token or another study's)."""
    if not token or len(token) > 200:
        return None
    with db.read() as s:
        q = select(Rater.id, Rater.study_id, Rater.label).where(Rater.token_hash == hash_token(token))
        if study_name is not None:
            q = q.join(Study, Study.id == Rater.study_id).where(Study.name == study_name)
        row = s.execute(q).first()
    return RaterRef(*row) if row else None


def find_admin_study(db: StudyDB, token: str, study_name: str | None = None) -> str | None:
    """The name of the study whose admin token this is."""
    if not token or len(token) > 200:
        return None
    with db.read() as s:
        q = select(Study.name).where(Study.admin_token_hash == hash_token(token))
        if study_name is not None:
            q = q.where(Study.name == study_name)
        return s.scalar(q)


# The statements of the hot path are built once, with bind parameters: building SQLAlchemy
# constructs costs more CPU than SQLite takes to run them.
_OTHER = aliased(Assignment)
_MINE = (
    select(_OTHER.id)
    .where(_OTHER.item_id == Item.id, _OTHER.rater_id == bindparam("rater_id"))
    .correlate(Item)
    .exists()
)
_OPEN = (
    select(Assignment)
    .where(Assignment.rater_id == bindparam("rater_id"), Assignment.completed_at.is_(None))
    .order_by(Assignment.seq)
    .limit(1)
)
_CANDIDATES = (
    select(Item.id, func.count(Assignment.id))
    .outerjoin(
        Assignment,
        and_(
            Assignment.item_id == Item.id,
            or_(Assignment.completed_at.is_not(None), Assignment.assigned_at > bindparam("cutoff")),
        ),
    )
    .where(Item.study_id == bindparam("study_id"), Item.kind == "main", ~_MINE)
    .group_by(Item.id)
    .having(func.count(Assignment.id) < bindparam("wanted"))
)
_CONTROLS_LEFT = select(Item.id).where(Item.study_id == bindparam("study_id"), Item.kind == "control", ~_MINE)
_SCREEN = (
    select(Item.prompt, ItemImage.slot, ItemImage.file)
    .join(ItemImage, ItemImage.item_id == Item.id)
    .where(Item.id == bindparam("item_id"))
    .order_by(ItemImage.slot, ItemImage.position)
)
_POSITION = (
    select(Assignment.is_control, Assignment.completed_at.is_not(None), func.count())
    .where(Assignment.rater_id == bindparam("rater_id"))
    .group_by(Assignment.is_control, Assignment.completed_at.is_not(None))
)


@dataclass(frozen=True)
class _Rules:
    """A study's assignment settings; fixed at creation, so cached per database and study."""

    id: int
    seed: int
    ratings_per_item: int
    items_per_rater: int | None
    control_every: int


_RULES: dict[tuple[str, int], _Rules] = {}


def _rules(db: StudyDB, s: Session, study_id: int) -> _Rules:
    key = (db.url, study_id)
    if key not in _RULES:
        st = s.get(Study, study_id)
        _RULES[key] = _Rules(st.id, st.seed, st.ratings_per_item, st.items_per_rater, st.control_every)
    return _RULES[key]


def _open_assignment(s: Session, rater: RaterRef) -> Assignment | None:
    return s.scalar(_OPEN, {"rater_id": rater.id})


def _candidates(s: Session, study: _Rules, rater: RaterRef, now: datetime) -> dict[int, int]:
    """Main items the rater has not had and that still need ratings: item id -> current load."""
    rows = s.execute(
        _CANDIDATES,
        {"rater_id": rater.id, "study_id": study.id, "cutoff": now - ASSIGNMENT_TTL, "wanted": study.ratings_per_item},
    ).all()
    return {int(i): int(n) for i, n in rows}


@dataclass
class _Position:
    """How far a rater is: assignments by kind and state (computed once per transaction)."""

    main: int = 0  # main items assigned, done or open
    controls: int = 0  # control items assigned, done or open
    done: int = 0  # items of either kind completed


def _position(s: Session, rater: RaterRef) -> _Position:
    pos = _Position()
    for is_control, completed, n in s.execute(_POSITION, {"rater_id": rater.id}).all():
        if is_control:
            pos.controls += n
        else:
            pos.main += n
        if completed:
            pos.done += n
    return pos


def _controls_left(s: Session, study: _Rules, rater: RaterRef) -> list[int]:
    return sorted(s.scalars(_CONTROLS_LEFT, {"study_id": study.id, "rater_id": rater.id}).all())


def _estimate_total(study: _Rules, pos: _Position, n_candidates: int, n_controls_left: int) -> int:
    """Items this rater will have rated in the end, if nobody else takes the open ones first."""
    main = pos.main + n_candidates
    if study.items_per_rater is not None:
        main = min(main, study.items_per_rater)
    ctrl = pos.controls
    if study.control_every:
        ctrl = max(ctrl, min(ctrl + n_controls_left, main // study.control_every))
    return max(main + ctrl, pos.done)


def _plan(
    s: Session, study: _Rules, rater: RaterRef, pos: _Position, now: datetime, n: int
) -> tuple[list[tuple[int, bool]], int]:
    """The rater's next ``n`` items (item id, is_control), controls interleaved, and the
    estimated total for the progress bar."""
    cands = _candidates(s, study, rater, now)
    controls = _controls_left(s, study, rater) if study.control_every else []
    total = _estimate_total(study, pos, len(cands), len(controls))
    n_main, n_ctrl, out = pos.main, pos.controls, []
    while len(out) < n:
        if study.items_per_rater is not None and n_main >= study.items_per_rater:
            break
        rng = random.Random(f"{study.seed}:{rater.id}:{n_main + n_ctrl}")
        if controls and n_main >= (n_ctrl + 1) * study.control_every:
            out.append((controls.pop(rng.randrange(len(controls))), True))
            n_ctrl += 1
            continue
        if not cands:
            break
        low = min(cands.values())
        pick = rng.choice(sorted(i for i, k in cands.items() if k == low))
        del cands[pick]
        out.append((pick, False))
        n_main += 1
    return out, total


def _screen(s: Session, rater: RaterRef, a: Assignment) -> Screen:
    """The screen of an open assignment. The progress total is the estimate stored when it was
    assigned, so showing an item (the common request) needs no scan of the study's items."""
    rows = s.execute(_SCREEN, {"item_id": a.item_id}).all()
    prompt = rows[0].prompt if rows else ""
    by_slot = {1: [r.file for r in rows if r.slot == 1], 2: [r.file for r in rows if r.slot == 2]}
    done = _position(s, rater).done
    total = max(a.expected_total or 0, done + 1)
    return Screen(a.id, prompt, by_slot[a.a_slot], by_slot[3 - a.a_slot], done, total)


def _assign(s: Session, study: _Rules, rater: RaterRef, n: int, now: datetime) -> list[Assignment]:
    if s.get_bind().dialect.name == "postgresql":
        # Raters of one study assign one at a time, or two could both take an item's last slot
        # (READ COMMITTED lets both see it free). SQLite's write lock already serialises this.
        s.execute(select(func.pg_advisory_xact_lock(_ASSIGN_LOCK, study.id)))
    pos = _position(s, rater)
    seq = s.scalar(select(func.max(Assignment.seq)).where(Assignment.rater_id == rater.id)) or 0
    rows = []
    picks, total = _plan(s, study, rater, pos, now, n)
    for k, (item_id, is_control) in enumerate(picks):
        placement = random.Random(f"{study.seed}:{rater.id}:{item_id}:placement")
        rows.append(
            Assignment(
                study_id=study.id,
                rater_id=rater.id,
                item_id=item_id,
                seq=seq + k + 1,
                a_slot=placement.choice((1, 2)),
                is_control=is_control,
                assigned_at=now,
                expected_total=total,
            )
        )
    s.add_all(rows)
    s.flush()
    return rows


def current_screen(db: StudyDB, rater: RaterRef) -> Screen | None:
    """The rater's open item (resume), or a newly assigned one; ``None`` when they are finished.

    The common case, an open item already shown, needs only a read; the write lock is taken to
    assign, or to note when an item is first shown (``shown_at``).
    """

    def txn(s: Session) -> Screen | None:
        now = utcnow()
        study = _rules(db, s, rater.study_id)
        a = _open_assignment(s, rater)  # another tab may have assigned one meanwhile
        if a is None:
            new = _assign(s, study, rater, 1, now)
            if not new:
                return None
            a = new[0]
        if a.shown_at is None:  # first served now (a batch assigns ahead of showing)
            a.shown_at = now
        return _screen(s, rater, a)

    with db.read() as s:
        a = _open_assignment(s, rater)
        if a is not None and a.shown_at is not None:
            return _screen(s, rater, a)
    return db.write(txn, retry_integrity=True)


def assign_batch(db: StudyDB, rater: RaterRef, n: int) -> int:
    """Assign the rater's next ``n`` items at once (a fixed batch, like the paper's batches of 50
    with interleaved controls); they are then served in order. Returns how many were assigned."""
    return db.write(lambda s: len(_assign(s, _rules(db, s, rater.study_id), rater, n, utcnow())), retry_integrity=True)


def progress(db: StudyDB, rater: RaterRef) -> tuple[int, int]:
    """(items completed, expected total) of a rater, estimated now."""
    with db.read() as s:
        study, pos = _rules(db, s, rater.study_id), _position(s, rater)
        n_cands = len(_candidates(s, study, rater, utcnow()))
        n_controls = len(_controls_left(s, study, rater)) if study.control_every else 0
        return pos.done, _estimate_total(study, pos, n_cands, n_controls)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite returns naive UTC


def elapsed_seconds(now: datetime, since: datetime | None) -> float | None:
    if since is None:
        return None
    return round(max(0.0, (_aware(now) - _aware(since)).total_seconds()), 3)


def _views(study_id: int, assignment_id: int, client: ClientReport, now: datetime) -> list[dict]:
    return [
        {
            "study_id": study_id,
            "assignment_id": assignment_id,
            "seq": k,
            "set_shown": o.set_shown,
            "image": o.image,
            "at_seconds": o.at_seconds,
            "open_seconds": o.open_seconds,
            "created_at": now,
        }
        for k, o in enumerate(client.opens, start=1)
    ]


def submit(
    db: StudyDB,
    rater: RaterRef,
    assignment_id: int,
    fidelity: str,
    alignment: str,
    seconds: float | None = None,
    *,
    client: ClientReport | None = None,
) -> bool:
    """Record both answers for an assigned item in one transaction.

    ``seconds`` (time on the item) is measured here, from the assignment's ``shown_at`` (else
    ``assigned_at``) to now, unless given (simulations). ``client`` is the browser's checked
    report: its time is stored as ``client_seconds`` and its image opens as ``image_views``.

    Returns ``True`` if they were stored, ``False`` if this item was already rated by this rater
    (a double submit): the UNIQUE (rater, item, question) constraint with ON CONFLICT DO NOTHING
    makes a second row impossible. An assignment of another rater is refused.
    """
    client = client or ClientReport()
    for answer in (fidelity, alignment):
        if answer not in CHOICES:
            raise UserError(f"an answer must be one of {CHOICES}, got {answer!r}")

    def txn(s: Session) -> bool:
        now = utcnow()
        # One statement checks ownership, marks the item done (keeping the first completion
        # time) and returns what the ratings need.
        mine = and_(Assignment.id == assignment_id, Assignment.rater_id == rater.id)
        a = s.execute(
            update(Assignment)
            .where(mine)
            .values(completed_at=func.coalesce(Assignment.completed_at, now))
            .returning(Assignment.study_id, Assignment.item_id, Assignment.shown_at, Assignment.assigned_at)
            .execution_options(synchronize_session=False)
        ).first()
        if a is None:
            raise UserError("this item is not assigned to you")
        took = seconds if seconds is not None else elapsed_seconds(now, a.shown_at or a.assigned_at)
        rows = [
            {
                "study_id": a.study_id,
                "assignment_id": assignment_id,
                "rater_id": rater.id,
                "item_id": a.item_id,
                "question": q,
                "choice": c,
                "seconds": took,
                "client_seconds": client.client_seconds,
                "created_at": now,
            }
            for q, c in (("fidelity", fidelity), ("alignment", alignment))
        ]
        stmt = insert_ignore(db, Rating, rows, ["rater_id", "item_id", "question"]).returning(Rating.id)
        stored = len(s.execute(stmt).all()) > 0  # RETURNING lists only rows actually inserted
        if stored and client.opens:
            s.execute(
                insert_ignore(db, ImageView, _views(a.study_id, assignment_id, client, now), ["assignment_id", "seq"])
            )
        return stored

    return db.write(txn)
