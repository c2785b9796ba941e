"""Study management: create a study from a study-pairs file, add raters, export ratings.

A study compares two or more systems on a set of prompts. Each *item* is one prompt and one
pair of systems (all pairs, or every system against a ``baseline``), plus optional control items
(:mod:`raters_ui.controls`). On import the images are copied into the study's own store under
opaque names, at one common size and byte length (:mod:`raters_ui.storage`). Rater and admin
tokens are random; the database keeps only their SHA-256, so the tokens are returned once and
written to a private tokens file, before the transaction that makes them valid commits
(:mod:`raters_ui.tokens`). A study also holds what raters see before the first item: the owner's
instructions (or the paper's wording), an optional consent line and 0-2 practice items
(:mod:`raters_ui.onboarding`).

Everything that can be checked without writing is checked first (:func:`plan_study`), so a
study that cannot be made leaves nothing behind.

**More ratings than wanted.** An assignment holds an item's slot for
:data:`raters_ui.assign.ASSIGNMENT_TTL`; after that the slot can go to another rater, and the
first rater may still submit. Both answers are stored (nobody's work is thrown away), so an
item can end up with more than ``ratings_per_item`` ratings. The ratings frame numbers each
item's raters in submission order (``item_rank``) and marks those beyond ``ratings_per_item`` as
``surplus``; the analysis uses the first ``ratings_per_item`` raters of each item (after
excluding raters who failed the controls), so an expired reservation never gives an item more
weight than the others.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness.errors import UserError
from harness.formats.study_pairs import StudyItem, StudyPairs, validate
from harness.validation import INT32
from raters_ui.controls import ControlPlan, ControlSpec, degrade, plan_controls
from raters_ui.db import Item, ItemImage, Rater, Study, StudyDB, System, hash_token
from raters_ui.inputs import check_pairs_fit, check_study_name
from raters_ui.onboarding import MAX_PRACTICE, add_practice, check_text, plan_practice
from raters_ui.storage import MAX_SIDE, MIN_SIDE, ImageStore, SizePlan, StoreWriter, common_size, native_sizes
from raters_ui.tokens import Tokens, TokenSink, read_tokens_file, write_tokens_file

__all__ = [
    "CreatedStudy",
    "StudyPlan",
    "StudySpec",
    "Tokens",
    "add_raters",
    "configure_study",
    "create_study",
    "get_study",
    "plan_study",
    "read_tokens_file",
    "rotate_admin_token",
    "rotate_rater_tokens",
    "select_items",
    "store_of",
    "system_pairs",
    "write_tokens_file",
]


@dataclass(frozen=True)
class StudySpec:
    name: str
    ratings_per_item: int = 3  # raters wanted per item
    raters: int = 5  # rater tokens to create now (more with add_raters)
    prompt_ids: list[str] | None = None
    categories: list[str] | None = None
    baseline: str | None = None  # with > 2 systems: compare each system with this one only
    items_per_rater: int | None = None
    controls: ControlSpec = field(default_factory=ControlSpec)
    max_side: int | None = 512  # cap of the common stored size (None: no cap)
    image_size: int | None = None  # the common stored longer side (None: see storage.common_size)
    seed: int = 0
    instructions: str | None = None  # Markdown shown before the first item (None: the paper's wording)
    consent: str | None = None  # a consent line the rater must tick to start (None: none asked)
    practice: int = 2  # practice items before the first item (0-2), never counted
    min_seconds: float | None = None  # speed floor per item for flags (None: from the data, raters_ui.quality)


@dataclass(frozen=True)
class CreatedStudy:
    study_id: int
    name: str
    n_items: int
    n_controls: int
    store_dir: Path
    tokens: Tokens
    size: SizePlan | None = None


def get_study(session: Session, name: str) -> Study:
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        names = session.scalars(select(Study.name).order_by(Study.name)).all()
        raise UserError(f"no study named {name!r} in this database (studies: {', '.join(names) or 'none'})")
    return study


def store_of(db: StudyDB, study: Study) -> ImageStore:
    root = Path(study.store_dir)
    if not root.is_absolute():
        if db.folder is None:
            raise UserError(f"study {study.name!r} has a relative image store but the database is not a file")
        root = db.folder / root
    return ImageStore(root)


def select_items(pairs: StudyPairs, prompt_ids: list[str] | None, categories: list[str] | None) -> list[StudyItem]:
    """The items kept by the prompt and category filters (exact ids; categories case-insensitive)."""
    items = list(pairs.items)
    if prompt_ids:
        known = {i.prompt_id for i in items}
        unknown = [p for p in prompt_ids if p not in known]
        if unknown:
            raise UserError(
                f"unknown prompt ids {unknown[:5]}{' ...' if len(unknown) > 5 else ''} "
                f"({len(known)} prompts in the pairs file)"
            )
        wanted = set(prompt_ids)
        items = [i for i in items if i.prompt_id in wanted]
    if categories:
        have = {(i.category or "").casefold(): i.category for i in pairs.items}
        unknown = [c for c in categories if c.casefold() not in have]
        if unknown:
            raise UserError(f"unknown categories {unknown}; the pairs file has {sorted(c for c in have.values() if c)}")
        wanted = {c.casefold() for c in categories}
        items = [i for i in items if (i.category or "").casefold() in wanted]
    if not items:
        raise UserError("the prompt/category filters leave no items")
    return items


def system_pairs(labels: list[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is None:
        return list(combinations(labels, 2))
    if baseline not in labels:
        raise UserError(f"baseline {baseline!r} is not one of the systems {labels}")
    return [(baseline, s) for s in labels if s != baseline]


def _check_spec(spec: StudySpec) -> None:
    check_study_name(spec.name)
    if not 1 <= spec.ratings_per_item <= 10_000:
        raise UserError(f"ratings_per_item must be in [1, 10000], got {spec.ratings_per_item}")
    if not 0 <= spec.raters <= 10_000 or (spec.items_per_rater is not None and not 1 <= spec.items_per_rater <= INT32):
        raise UserError("raters must be in [0, 10000] and items_per_rater >= 1 (or null)")
    for key, value in (("max_side", spec.max_side), ("image_size", spec.image_size)):
        if value is not None and not MIN_SIDE <= value <= MAX_SIDE:
            raise UserError(f"{key} must be in [{MIN_SIDE}, {MAX_SIDE}] px (or null), got {value}")
    if not 0 <= spec.seed <= INT32:
        raise UserError(f"seed must be in [0, {INT32}], got {spec.seed}")
    if spec.controls.count > 100_000 or spec.controls.every > INT32:
        raise UserError("controls.count must be <= 100000")
    spec.controls.check()
    if not 0 <= spec.practice <= MAX_PRACTICE:
        raise UserError(f"practice must be 0, 1 or 2 items, got {spec.practice}")
    if spec.min_seconds is not None and not 0 <= spec.min_seconds <= 3600:
        raise UserError(f"min_seconds must be in [0, 3600] (or null), got {spec.min_seconds}")
    check_text(spec.instructions, "instructions")
    check_text(spec.consent, "consent")


def _check_files(items: list[StudyItem], controls: list[ControlPlan]) -> list[str]:
    paths = [p for i in items for v in i.images.values() for p in v]
    paths += [p for c in controls for p in c.good + c.bad]
    missing = sorted({p for p in paths if not Path(p).is_file()})
    if missing:
        raise UserError(f"{len(missing)} image file(s) of the study are missing, e.g. {missing[0]}")
    return paths


@dataclass(frozen=True)
class StudyPlan:
    """What a study will hold, checked without writing anything (:func:`plan_study`)."""

    items: list[StudyItem]
    pairs: list[tuple[str, str]]
    controls: list[ControlPlan]
    size: SizePlan
    practice: list[ControlPlan] = field(default_factory=list)


def plan_study(pairs: StudyPairs, spec: StudySpec) -> StudyPlan:
    """Every check of a new study that needs no database: the pairs, the spec, the filters, the
    image files (headers only) and their common stored size."""
    validate(pairs)
    check_pairs_fit(pairs)
    _check_spec(spec)
    labels = [sys.id for sys in pairs.systems]
    items = select_items(pairs, spec.prompt_ids, spec.categories)
    pair_list = system_pairs(labels, spec.baseline)
    plans = plan_controls(items, labels, spec.controls, random.Random(spec.seed))
    practice = plan_practice(items, labels, spec.practice, spec.seed)
    paths = _check_files(items, plans + practice)
    size = common_size(native_sizes(paths).values(), spec.max_side, spec.image_size)
    return StudyPlan(items, pair_list, plans, size, practice)


def new_token() -> str:
    return secrets.token_urlsafe(16)


def _rater_rows(study_id: int, start: int, n: int, prefix: str = "rater") -> tuple[list[Rater], dict[str, str]]:
    tokens = {f"{prefix}-{k:03d}": new_token() for k in range(start + 1, start + n + 1)}
    rows = [Rater(study_id=study_id, label=label, token_hash=hash_token(tok)) for label, tok in tokens.items()]
    return rows, tokens


def _add_items(
    session: Session,
    study: Study,
    writer: StoreWriter,
    items: list[StudyItem],
    pairs: list[tuple[str, str]],
    systems: dict[str, System],
) -> int:
    n = 0
    for item in items:
        for s1, s2 in pairs:
            # Positions, not labels, in the key: unambiguous (the last two fields are numbers)
            # and short whatever the ids are.
            key = f"main|{item.prompt_id}|{systems[s1].position}|{systems[s2].position}"
            row = Item(
                study_id=study.id,
                key=key,
                kind="main",
                prompt_id=item.prompt_id,
                prompt=item.prompt,
                category=item.category,
                system_1_id=systems[s1].id,
                system_2_id=systems[s2].id,
            )
            session.add(row)
            session.flush()
            for slot, label in ((1, s1), (2, s2)):
                session.add_all(
                    ItemImage(item_id=row.id, slot=slot, position=k, file=writer.add_file(p))
                    for k, p in enumerate(item.images[label])
                )
            n += 1
    return n


def _control_files(writer: StoreWriter, plan: ControlPlan) -> tuple[list[str], list[str]]:
    """Store names of a control (or practice) plan's two slots, importing them if needed."""
    good = [writer.add_file(p) for p in plan.good]
    if plan.mode == "degrade":
        bad = [writer.add_file(p, f"degrade:{j}", lambda im, j=j: degrade(im, seed=j)) for j, p in enumerate(plan.bad)]
    else:
        bad = [writer.add_file(p) for p in plan.bad]
    return good, bad


def _add_controls(
    session: Session, study: Study, writer: StoreWriter, plans: list[ControlPlan], systems: dict[str, System]
) -> None:
    for k, plan in enumerate(plans):
        row = Item(
            study_id=study.id,
            key=f"control|{k}",
            kind="control",
            prompt_id=plan.item.prompt_id,
            prompt=plan.item.prompt,
            category=plan.item.category,
            system_1_id=systems[plan.system].id,
            system_2_id=None,
            control_mode=plan.mode,
            expected_fidelity=plan.expected_fidelity,
            expected_alignment=plan.expected_alignment,
        )
        session.add(row)
        session.flush()
        good, bad = _control_files(writer, plan)
        session.add_all(
            ItemImage(item_id=row.id, slot=slot, position=j, file=name)
            for slot, names in ((1, good), (2, bad))
            for j, name in enumerate(names)
        )


def _store_setting(db: StudyDB, store_dir: Path) -> str:
    """Keep the store path relative to a SQLite file's folder, so the study folder can move."""
    store_dir = store_dir.resolve()
    if db.folder is not None and store_dir.is_relative_to(db.folder.resolve()):
        return str(store_dir.relative_to(db.folder.resolve())) or "."
    return str(store_dir)


def _import_images(writer: StoreWriter, plan: StudyPlan) -> None:
    """Every image of the study into the store, at the common size and then one byte length."""
    for item in plan.items:
        for paths in item.images.values():
            for p in paths:
                writer.add_file(p)
    for c in plan.controls + plan.practice:  # practice images too: one size and length for all
        _control_files(writer, c)
    writer.equalize()


def create_study(
    db: StudyDB,
    pairs: StudyPairs,
    spec: StudySpec,
    store_dir: str | Path,
    *,
    plan: StudyPlan | None = None,
    sink: TokenSink | None = None,
) -> CreatedStudy:
    """Import ``pairs`` as a new study: copy images into ``store_dir``, create raters and tokens.

    With ``sink`` the tokens are written to the tokens file inside the transaction, before it
    commits (the caller undoes the sink if this raises)."""
    plan = plan or plan_study(pairs, spec)
    with db.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise UserError(f"a study named {spec.name!r} already exists in this database")
    writer = StoreWriter(ImageStore(store_dir), plan.size.size)
    tokens = Tokens(spec.name, new_token(), {f"rater-{k:03d}": new_token() for k in range(1, spec.raters + 1)})

    def txn(session: Session) -> int:
        study = Study(
            name=spec.name,
            suite=pairs.suite,
            ratings_per_item=spec.ratings_per_item,
            items_per_rater=spec.items_per_rater,
            control_every=spec.controls.every if plan.controls else 0,
            control_threshold=spec.controls.threshold,
            admin_token_hash=hash_token(tokens.admin),
            store_dir=_store_setting(db, Path(store_dir)),
            seed=spec.seed,
            instructions=check_text(spec.instructions, "instructions"),
            consent=check_text(spec.consent, "consent"),
            practice_items=len(plan.practice),
            min_seconds=spec.min_seconds,
        )
        session.add(study)
        session.flush()
        systems = {}
        for pos, sys_ in enumerate(pairs.systems):
            systems[sys_.id] = System(
                study_id=study.id, label=sys_.id, run_id=sys_.run_id, source=sys_.source, position=pos
            )
            session.add(systems[sys_.id])
        session.flush()
        _add_items(session, study, writer, plan.items, plan.pairs, systems)
        _add_controls(session, study, writer, plan.controls, systems)
        add_practice(session, study.id, [(c, *_control_files(writer, c)) for c in plan.practice])
        session.add_all(
            Rater(study_id=study.id, label=label, token_hash=hash_token(tok)) for label, tok in tokens.raters.items()
        )
        session.flush()
        if sink is not None:
            sink.write(tokens)  # on disk before the commit that makes the tokens valid
        return study.id

    try:
        _import_images(writer, plan)  # outside the write lock; the transaction reuses the names
        study_id = db.write(txn)
    except BaseException:
        writer.rollback()  # nothing of a failed import stays in the store
        raise
    return CreatedStudy(
        study_id,
        spec.name,
        len(plan.items) * len(plan.pairs),
        len(plan.controls),
        writer.store.root.resolve(),
        tokens,
        plan.size,
    )


def add_raters(db: StudyDB, study_name: str, n: int, sink: TokenSink | None = None, prefix: str = "rater") -> Tokens:
    """Create ``n`` more raters for a study; returns their tokens (shown only this once). ``prefix``
    names them (``simulated`` for :mod:`raters_ui.simulate`'s raters, so no table can mistake them)."""
    if not 1 <= n <= 10_000:
        raise UserError(f"add-raters needs raters in [1, 10000], got {n}")

    def txn(session: Session) -> Tokens:
        study = get_study(session, study_name)
        existing = session.scalar(select(func.count()).select_from(Rater).where(Rater.study_id == study.id))
        rows, raters = _rater_rows(study.id, int(existing or 0), n, prefix)
        session.add_all(rows)
        session.flush()
        tokens = Tokens(study_name, None, raters)
        if sink is not None:
            sink.write(tokens)
        return tokens

    return db.write(txn, retry_integrity=True)


def rotate_admin_token(db: StudyDB, study_name: str, sink: TokenSink | None = None) -> str:
    """Replace the admin token (the old link stops working)."""
    token = new_token()

    def txn(session: Session) -> None:
        get_study(session, study_name).admin_token_hash = hash_token(token)
        session.flush()
        if sink is not None:
            sink.write(Tokens(study_name, token, {}))

    db.write(txn)
    return token


def rotate_rater_tokens(
    db: StudyDB, study_name: str, labels: list[str] | None, sink: TokenSink | None = None
) -> Tokens:
    """New tokens for the raters ``labels`` (None: every rater of the study). The old links stop
    working; the raters keep their ratings and open items (they are the same rater rows)."""

    def txn(session: Session) -> Tokens:
        study = get_study(session, study_name)
        rows = {
            r.label: r for r in session.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.label))
        }
        wanted = list(rows) if labels is None else list(dict.fromkeys(labels))
        unknown = [x for x in wanted if x not in rows]
        if unknown or not wanted:
            raise UserError(
                f"no rater {', '.join(map(repr, unknown)) or 'at all'} in study {study_name!r} "
                f"(raters: {', '.join(rows) or 'none'})"
            )
        tokens = {label: new_token() for label in wanted}
        for label, tok in tokens.items():
            rows[label].token_hash = hash_token(tok)
        session.flush()
        out = Tokens(study_name, None, tokens)
        if sink is not None:
            sink.write(out)
        return out

    return db.write(txn)


def configure_study(
    db: StudyDB, study_name: str, *, instructions: str | None = None, consent: str | None = None
) -> str:
    """Change a study's instructions and/or consent line (None: leave as is; blank: back to the
    paper's wording / no consent asked). Raters who already started are not asked again.
    Returns what changed, as one line."""
    if instructions is None and consent is None:
        raise UserError("configure needs instructions=, instructions_file= or consent=")
    new_text, new_consent = check_text(instructions, "instructions"), check_text(consent, "consent")

    def txn(session: Session) -> str:
        study = get_study(session, study_name)
        done = []
        if instructions is not None:
            study.instructions = new_text
            done.append(
                "instructions: " + ("the paper's wording" if new_text is None else f"{len(new_text)} characters")
            )
        if consent is not None:
            study.consent = new_consent
            done.append("consent: " + ("none asked" if new_consent is None else repr(new_consent[:60])))
        return f"study {study_name!r}: " + "; ".join(done)

    return db.write(txn)
