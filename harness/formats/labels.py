"""Human labels of images, as ``imagen-bench meta-eval`` reads them: Likert ratings per image (TIFA160's form)
or pairwise votes between two images of one prompt (GenAI-Bench's form).

A label file is JSONL or CSV, one label per row; image paths are relative to the file's folder::

    {"image": "imgs/017.png", "prompt": "a red circle", "rating": 4, "rater": "w12"}          # likert
    {"prompt": "a red circle", "image_a": "a/017.png", "image_b": "b/017.png", "vote": "a"}   # pairwise
    {"prompt": "a red circle", "image_a": ["a/0.png", "a/1.png"], "image_b": ["b/0.png", "b/1.png"], "vote": "b"}

A side of a vote may be a set of images (a JSON list, or paths joined by ``;`` in CSV): our own studies show
raters two sets of images per prompt (``imagen-bench study export-labels`` writes such files), and a metric's
score of a set is the mean of its images' scores.
``prompt_id`` is optional (default: one id per distinct prompt text), as is ``rater`` (needed for the
inter-rater ceiling). The kind is read from the columns (``rating`` or ``vote``; never both); ``vote`` is
``a``, ``b`` or ``tie``. A bad row is one line naming the file, the row and the field; a missing image is
named before any metric runs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import UserError
from harness.formats.jsonio import read_jsonl_objects

LabelKind = Literal["likert", "pairwise"]
VOTES = ("a", "b", "tie")


@dataclass(frozen=True)
class LabelledImage:
    key: str  # the path as the file gives it
    path: Path
    prompt_id: str
    prompt: str


@dataclass(frozen=True)
class Rating:
    image: str
    value: float
    rater: str | None = None


@dataclass(frozen=True)
class Vote:
    prompt_id: str
    image_a: tuple[str, ...]  # one image, or the set shown as one side
    image_b: tuple[str, ...]
    vote: str  # a | b | tie
    rater: str | None = None


@dataclass
class HumanLabels:
    kind: LabelKind
    source: Path
    images: dict[str, LabelledImage] = field(default_factory=dict)
    ratings: list[Rating] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return [{k: v for k, v in row.items() if v != ""} for row in frame.to_dict("records")]
    return [row for _, row in read_jsonl_objects(path)]


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None or not str(value).strip():
        raise UserError(f"{where}: field {key!r} is missing or empty")
    return str(value)


def _side(row: dict[str, Any], key: str, where: str) -> list[str]:
    """One side of a vote: an image path, a JSON list of paths, or (CSV) paths joined by ``;``."""
    value = row.get(key)
    if isinstance(value, list):
        keys = [str(v).strip() for v in value]
    else:
        keys = [k.strip() for k in _text(row, key, where).split(";")]
    if not keys or not all(keys):
        raise UserError(f"{where}: field {key!r} holds an empty image path")
    if len(set(keys)) < len(keys):
        raise UserError(f"{where}: field {key!r} names an image twice")
    return keys


def _prompt_id(row: dict[str, Any], prompt: str) -> str:
    given = row.get("prompt_id")
    return str(given) if given not in (None, "") else "p" + hashlib.sha256(prompt.encode()).hexdigest()[:10]


class _Reader:
    def __init__(self, path: Path, kind: LabelKind) -> None:
        self.labels = HumanLabels(kind, path)
        self.root = path.parent

    def image(self, key: str, prompt_id: str, prompt: str, where: str) -> str:
        seen = self.labels.images.get(key)
        if seen is not None and seen.prompt_id != prompt_id:
            raise UserError(f"{where}: image {key!r} is labelled for two prompts ({seen.prompt_id}, {prompt_id})")
        if seen is None:
            path = self.root / key
            if not path.is_file():
                raise UserError(f"{where}: image {key!r} not found ({path})")
            self.labels.images[key] = LabelledImage(key, path, prompt_id, prompt)
        return key

    def add(self, row: dict[str, Any], where: str) -> None:
        prompt = _text(row, "prompt", where)
        pid = _prompt_id(row, prompt)
        rater = str(row["rater"]) if row.get("rater") not in (None, "") else None
        if self.labels.kind == "likert":
            try:
                value = float(row["rating"])
            except (TypeError, ValueError):
                raise UserError(f"{where}: rating must be a number, got {row.get('rating')!r}") from None
            if not math.isfinite(value):
                raise UserError(f"{where}: rating must be finite, got {value}")
            image = self.image(_text(row, "image", where), pid, prompt, where)
            self.labels.ratings.append(Rating(image, value, rater))
            return
        vote = str(row.get("vote", "")).strip().lower()
        if vote not in VOTES:
            raise UserError(f"{where}: vote must be one of {VOTES}, got {row.get('vote')!r}")
        a = tuple(self.image(k, pid, prompt, where) for k in _side(row, "image_a", where))
        b = tuple(self.image(k, pid, prompt, where) for k in _side(row, "image_b", where))
        both = sorted(set(a) & set(b))
        if both:
            raise UserError(f"{where}: image_a and image_b share the image {both[0]!r}")
        self.labels.votes.append(Vote(pid, a, b, vote, rater))


def read_labels(path: str | Path) -> HumanLabels:
    """Every label of the file, checked; the images exist (paths relative to the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"label file not found: {path}")
    rows = _rows(path)
    if not rows:
        raise UserError(f"label file {path} holds no labels")
    first = rows[0]
    if ("rating" in first) == ("vote" in first):
        raise UserError(f"{path}: each row needs a 'rating' (Likert) or a 'vote' (pairwise) field, not both or neither")
    reader = _Reader(path, "likert" if "rating" in first else "pairwise")
    for n, row in enumerate(rows, 1):
        where = f"{path}:{n}"
        if not isinstance(row, dict):
            raise UserError(f"{where}: a label must be a JSON object")
        if ("rating" in row) != (reader.labels.kind == "likert") or ("vote" in row) == (reader.labels.kind == "likert"):
            raise UserError(f"{where}: the file mixes Likert ratings and pairwise votes")
        reader.add(row, where)
    return reader.labels
