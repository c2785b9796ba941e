"""Study management: create a study from a study-pairs file, add raters, export ratings.

A study compares two or more systems on a set of prompts. Each *item* is one prompt and one
pair of systems (all pairs, or every system against a ``baseline``), plus optional control items
(:mod:`raters_ui.controls`). On import the images are copied into the study's own store under
opaque names (:mod:`raters_ui.storage`). Rater and admin tokens are random; the database keeps
only their SHA-256, so the tokens are returned once and written to a private tokens file.
"""

from __future__ import annotations

import csv
import io
import os
import random
import secrets
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.study_pairs import StudyItem, StudyPairs, validate
from raters_ui.controls import ControlPlan, ControlSpec, degrade, plan_controls
from raters_ui.db import (
    Assignment,
    Item,
    ItemImage,
    Rater,
    Rating,
    Study,
    StudyDB,
    System,
    hash_token,
)
from raters_ui.storage import ImageStore, StoreWriter


@dataclass(frozen=True)
class StudySpec:
    name: str
    ratings_per_item: int = 3       # raters wanted per item
    raters: int = 5                 # rater tokens to create now (more with add_raters)
    prompt_ids: list[str] | None = None
    categories: list[str] | None = None
    baseline: str | None = None     # with > 2 systems: compare each system with this one only
    items_per_rater: int | None = None
    controls: ControlSpec = field(default_factory=ControlSpec)
    max_side: int | None = 512      # downscale stored images (both sides alike); None keeps them
    seed: int = 0


@dataclass(frozen=True)
class Tokens:
    study: str
    admin: str | None
    raters: dict[str, str]  # label -> token


@dataclass(frozen=True)
class CreatedStudy:
    study_id: int
    name: str
    n_items: int
    n_controls: int
    store_dir: Path
    tokens: Tokens


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


def select_items(pairs: StudyPairs, prompt_ids: list[str] | None,
                 categories: list[str] | None) -> list[StudyItem]:
    """The items kept by the prompt and category filters (exact ids; categories case-insensitive)."""
    items = list(pairs.items)
    if prompt_ids:
        known = {i.prompt_id for i in items}
        unknown = [p for p in prompt_ids if p not in known]
        if unknown:
            raise UserError(f"unknown prompt ids {unknown[:5]}{' ...' if len(unknown) > 5 else ''} "
                            f"({len(known)} prompts in the pairs file)")
        wanted = set(prompt_ids)
        items = [i for i in items if i.prompt_id in wanted]
    if categories:
        have = {(i.category or "").casefold(): i.category for i in pairs.items}
        unknown = [c for c in categories if c.casefold() not in have]
        if unknown:
            raise UserError(f"unknown categories {unknown}; the pairs file has "
                            f"{sorted(c for c in have.values() if c)}")
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
    if not spec.name or len(spec.name) > 200 or spec.name.strip() != spec.name:
        raise UserError(f"a study needs a name of 1-200 characters without outer spaces, got {spec.name!r}")
    if spec.ratings_per_item < 1:
        raise UserError(f"ratings_per_item must be >= 1, got {spec.ratings_per_item}")
    if spec.raters < 0 or (spec.items_per_rater is not None and spec.items_per_rater < 1):
        raise UserError("raters must be >= 0 and items_per_rater >= 1 (or null)")
    spec.controls.check()


def _check_files(items: list[StudyItem], controls: list[ControlPlan]) -> None:
    paths = [p for i in items for v in i.images.values() for p in v]
    paths += [p for c in controls for p in c.good + c.bad]
    missing = sorted({p for p in paths if not Path(p).is_file()})
    if missing:
        raise UserError(f"{len(missing)} image file(s) of the study are missing, e.g. {missing[0]}")


def new_token() -> str:
    return secrets.token_urlsafe(16)


def _rater_rows(study_id: int, start: int, n: int) -> tuple[list[Rater], dict[str, str]]:
    tokens = {f"rater-{k:03d}": new_token() for k in range(start + 1, start + n + 1)}
    rows = [Rater(study_id=study_id, label=label, token_hash=hash_token(tok))
            for label, tok in tokens.items()]
    return rows, tokens


def _add_items(session: Session, study: Study, writer: StoreWriter, items: list[StudyItem],
               pairs: list[tuple[str, str]], systems: dict[str, System]) -> int:
    n = 0
    for item in items:
        for s1, s2 in pairs:
            row = Item(study_id=study.id, key=f"main|{item.prompt_id}|{s1}|{s2}", kind="main",
                       prompt_id=item.prompt_id, prompt=item.prompt, category=item.category,
                       system_1_id=systems[s1].id, system_2_id=systems[s2].id)
            session.add(row)
            session.flush()
            for slot, label in ((1, s1), (2, s2)):
                session.add_all(ItemImage(item_id=row.id, slot=slot, position=k, file=writer.add_file(p))
                                for k, p in enumerate(item.images[label]))
            n += 1
    return n


def _add_controls(session: Session, study: Study, writer: StoreWriter, plans: list[ControlPlan],
                  systems: dict[str, System]) -> None:
    for k, plan in enumerate(plans):
        row = Item(study_id=study.id, key=f"control|{k}", kind="control", prompt_id=plan.item.prompt_id,
                   prompt=plan.item.prompt, category=plan.item.category,
                   system_1_id=systems[plan.system].id, system_2_id=None, control_mode=plan.mode,
                   expected_fidelity=plan.expected_fidelity, expected_alignment=plan.expected_alignment)
        session.add(row)
        session.flush()
        session.add_all(ItemImage(item_id=row.id, slot=1, position=j, file=writer.add_file(p))
                        for j, p in enumerate(plan.good))
        for j, p in enumerate(plan.bad):
            if plan.mode == "degrade":
                name = writer.add_file(p, f"degrade:{j}", lambda im, j=j: degrade(im, seed=j))
            else:
                name = writer.add_file(p)
            session.add(ItemImage(item_id=row.id, slot=2, position=j, file=name))


def _store_setting(db: StudyDB, store_dir: Path) -> str:
    """Keep the store path relative to a SQLite file's folder, so the study folder can move."""
    store_dir = store_dir.resolve()
    if db.folder is not None and store_dir.is_relative_to(db.folder.resolve()):
        return str(store_dir.relative_to(db.folder.resolve())) or "."
    return str(store_dir)


def create_study(db: StudyDB, pairs: StudyPairs, spec: StudySpec, store_dir: str | Path) -> CreatedStudy:
    """Import ``pairs`` as a new study: copy images into ``store_dir``, create raters and tokens."""
    validate(pairs)
    _check_spec(spec)
    with db.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise UserError(f"a study named {spec.name!r} already exists in this database")
    labels = [sys.id for sys in pairs.systems]
    items = select_items(pairs, spec.prompt_ids, spec.categories)
    pair_list = system_pairs(labels, spec.baseline)
    plans = plan_controls(items, labels, spec.controls, random.Random(spec.seed))
    _check_files(items, plans)
    writer = StoreWriter(ImageStore(store_dir), spec.max_side)
    admin_token = new_token()

    def txn(session: Session) -> tuple[int, dict[str, str]]:
        study = Study(name=spec.name, suite=pairs.suite, ratings_per_item=spec.ratings_per_item,
                      items_per_rater=spec.items_per_rater,
                      control_every=spec.controls.every if plans else 0,
                      control_threshold=spec.controls.threshold, admin_token_hash=hash_token(admin_token),
                      store_dir=_store_setting(db, Path(store_dir)), seed=spec.seed)
        session.add(study)
        session.flush()
        systems = {}
        for pos, sys_ in enumerate(pairs.systems):
            systems[sys_.id] = System(study_id=study.id, label=sys_.id, run_id=sys_.run_id,
                                      source=sys_.source, position=pos)
            session.add(systems[sys_.id])
        session.flush()
        _add_items(session, study, writer, items, pair_list, systems)
        _add_controls(session, study, writer, plans, systems)
        raters, tokens = _rater_rows(study.id, 0, spec.raters)
        session.add_all(raters)
        return study.id, tokens

    try:
        study_id, tokens = db.write(txn)
    except BaseException:
        writer.rollback()  # nothing of a failed import stays in the store
        raise
    return CreatedStudy(study_id, spec.name, len(items) * len(pair_list), len(plans),
                        writer.store.root.resolve(), Tokens(spec.name, admin_token, tokens))


def add_raters(db: StudyDB, study_name: str, n: int) -> Tokens:
    """Create ``n`` more raters for a study; returns their tokens (shown only this once)."""
    if n < 1:
        raise UserError(f"add-raters needs raters >= 1, got {n}")

    def txn(session: Session) -> dict[str, str]:
        study = get_study(session, study_name)
        existing = session.scalar(select(func.count()).select_from(Rater).where(Rater.study_id == study.id))
        rows, tokens = _rater_rows(study.id, int(existing or 0), n)
        session.add_all(rows)
        return tokens

    return Tokens(study_name, None, db.write(txn, retry_integrity=True))


def rotate_admin_token(db: StudyDB, study_name: str) -> str:
    """Replace the admin token (the old link stops working)."""
    token = new_token()

    def txn(session: Session) -> None:
        get_study(session, study_name).admin_token_hash = hash_token(token)

    db.write(txn)
    return token


def write_tokens_file(path: str | Path, tokens: Tokens) -> Path:
    """Append tokens to a CSV (study, role, label, token) readable only by its owner."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ([("admin", "admin", tokens.admin)] if tokens.admin else []) + \
        [("rater", label, tok) for label, tok in tokens.raters.items()]
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["study", "role", "label", "token"])
        w.writerows((tokens.study, *r) for r in rows)
    os.chmod(path, 0o600)
    return path


def read_tokens_file(path: str | Path, study: str | None = None) -> list[dict[str, str]]:
    """Rows of a tokens file (later admin rows replace earlier ones, as after a rotation)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if study is None or r.get("study") == study]
    admins = {r["study"]: r for r in rows if r.get("role") == "admin"}
    return [r for r in rows if r.get("role") == "rater"] + list(admins.values())


RATING_COLUMNS = [
    "study", "rating_id", "item_id", "kind", "control_mode", "prompt_id", "prompt", "category",
    "rater", "question", "choice", "a_slot", "system_1", "system_2", "left_system", "right_system",
    "preferred_slot", "preferred_system", "expected_slot", "correct", "seconds", "created_at",
]


def load_ratings(db: StudyDB, study_name: str) -> pd.DataFrame:
    """Every rating of a study, one row each, with the screen sides mapped back to systems.

    ``choice`` is what the rater clicked (A = left set); ``a_slot`` is the item slot shown as A;
    ``preferred_slot``/``preferred_system`` are the resolved preference (empty for indifferent);
    for controls ``expected_slot`` is the right slot (empty when that question is not graded)
    and ``correct`` whether the answer was right. Control items' second slot is labelled
    ``control:<mode>`` instead of a system.
    """
    s1, s2 = aliased(System), aliased(System)
    with db.read() as session:
        study = get_study(session, study_name)
        q = (select(Rating.id, Rating.item_id, Item.kind, Item.control_mode, Item.prompt_id, Item.prompt,
                    Item.category, Rater.label, Rating.question, Rating.choice, Assignment.a_slot,
                    s1.label, s2.label, Item.expected_fidelity, Item.expected_alignment, Rating.seconds,
                    Rating.created_at)
             .join(Item, Item.id == Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
             .join(Assignment, Assignment.id == Rating.assignment_id)
             .join(s1, s1.id == Item.system_1_id).outerjoin(s2, s2.id == Item.system_2_id)
             .where(Rating.study_id == study.id).order_by(Rating.id))
        rows = session.execute(q).all()
    return _ratings_frame(study_name, rows)


def _rating_record(study_name: str, r: tuple) -> dict:
    (rating_id, item_id, kind, mode, prompt_id, prompt, category, rater, question, choice, a_slot,
     sys1, sys2, exp_f, exp_a, seconds, created_at) = r
    slots = {1: sys1, 2: sys2 if sys2 is not None else f"control:{mode}"}
    pref = a_slot if choice == "A" else (3 - a_slot if choice == "B" else None)
    exp = exp_f if question == "fidelity" else exp_a
    return dict(study=study_name, rating_id=rating_id, item_id=item_id, kind=kind, control_mode=mode,
                prompt_id=prompt_id, prompt=prompt, category=category, rater=rater, question=question,
                choice=choice, a_slot=a_slot, system_1=slots[1], system_2=slots[2],
                left_system=slots[a_slot], right_system=slots[3 - a_slot], preferred_slot=pref,
                preferred_system=None if pref is None else slots[pref], expected_slot=exp,
                correct=None if exp is None else pref == exp, seconds=seconds, created_at=created_at)


def _ratings_frame(study_name: str, rows: list) -> pd.DataFrame:
    df = pd.DataFrame([_rating_record(study_name, tuple(r)) for r in rows], columns=RATING_COLUMNS)
    for col in ("rating_id", "item_id", "a_slot", "preferred_slot", "expected_slot"):
        df[col] = df[col].astype("Int64")
    df["correct"] = df["correct"].astype("boolean")
    df["seconds"] = df["seconds"].astype("float64")
    return df


def export_ratings(db: StudyDB, study_name: str, out: str | Path, *, include_controls: bool = True) -> Path:
    """Write the ratings of a study to ``out`` (.csv or .parquet), atomically."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"export to a .csv or .parquet file, not {out.name!r}")
    df = load_ratings(db, study_name)
    if not include_controls:
        df = df[df["kind"] == "main"]
    buf = io.BytesIO()
    if suffix == ".csv":
        buf.write(df.to_csv(index=False).encode("utf-8"))
    else:
        df.to_parquet(buf, index=False)
    atomic_write_bytes(out, buf.getvalue())
    return out
