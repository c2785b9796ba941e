"""Captions of world scenes, from templates that mirror DrawBench's categories, and their specs.

A caption is built as a list of parts: literal words, vocabulary *terms* (a colour, a shape, a
number word) and article slots. The terms are then realised in a *style*:

* ``plain``: the vocabulary word ("red", "circles", "three").
* ``rare``: rare synonyms of colours and shapes ("vermilion", "rhombus"), each term replaced with
  probability 0.7 and at least one per caption — DrawBench's "Rare Words". Every synonym is a
  genuine one (a rhombus *is* a diamond), so the spec is the plain caption's.
* ``misspelled``: plausible typos of colour, shape and number words ("cirlce", "thre"), same
  rule — DrawBench's "Misspellings". None is itself an English word.

Articles are resolved after realisation ("an azure orb"). Sizes ("small", "large") are mentioned
per object with probability ``size_rate`` in single, colors and positional captions; a mentioned
size becomes part of the spec, an unmentioned one is free. Counting and multi captions never
mention sizes. Spec objects are listed in the order the caption mentions them, and a positional
spec's relation is between the first and the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.world.scenes import ObjectSpec, Relation, Scene, Spec, WorldObject, pick

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds"}
RARE: dict[str, tuple[str, ...]] = {
    "red": ("vermilion", "scarlet"),
    "yellow": ("canary", "saffron"),
    "green": ("emerald", "viridian"),
    "cyan": ("turquoise", "aquamarine"),
    "blue": ("azure", "cobalt"),
    "purple": ("violet", "amethyst"),
    "circle": ("orb", "disc"),
    "square": ("quadrate",),
    "triangle": ("trigon",),
    "diamond": ("rhombus", "lozenge"),
    "circles": ("orbs", "discs"),
    "squares": ("quadrates",),
    "triangles": ("trigons",),
    "diamonds": ("rhombuses", "lozenges"),
}
MISSPELLED: dict[str, tuple[str, ...]] = {
    "red": ("rde", "redd"),
    "yellow": ("yelow", "yellwo"),
    "green": ("gren", "grene"),
    "cyan": ("cyna", "cayn"),
    "blue": ("bleu", "blu"),
    "purple": ("purpel", "pruple"),
    "circle": ("cirlce", "circel"),
    "square": ("sqaure", "squre"),
    "triangle": ("traingle", "triangel"),
    "diamond": ("diamnod", "dimond"),
    "circles": ("cirlces", "circels"),
    "squares": ("sqaures", "squres"),
    "triangles": ("traingles", "triangels"),
    "diamonds": ("diamnods", "dimonds"),
    "two": ("twoo", "tw0"),
    "three": ("thre", "threee"),
    "four": ("fuor", "foure"),
}
RELATION_WORDS = {"left_of": "to the left of", "right_of": "to the right of", "above": "above", "below": "below"}
TEXT_TEMPLATES = ("a sign that says '{}'", "a sign with the word '{}'")
PREFIX = "a drawing of"
ALTERED_RATE = 0.7  # share of terms a rare / misspelled caption alters (at least one)


@dataclass(frozen=True)
class Term:
    word: str  # the plain vocabulary word, already plural where needed


class Article:
    """'a' or 'an', decided by the realised word that follows."""


Part = str | Term | Article


def _object_parts(obj: WorldObject, with_size: bool) -> list[Part]:
    return [Article(), *([obj.size] if with_size else []), Term(obj.color), Term(obj.shape)]


def _group_parts(color: str, shape: str, n: int) -> list[Part]:
    if n == 1:
        return [Article(), Term(color), Term(shape)]
    return [Term(NUMBERS[n]), Term(color), Term(PLURALS[shape])]


def _join(phrases: Sequence[list[Part]]) -> list[Part]:
    """ "A", "A and B", "A, B and C"."""
    out: list[Part] = []
    for i, phrase in enumerate(phrases):
        if i:
            out.append("and" if i == len(phrases) - 1 else ",")
        out += phrase
    return out


def _groups(objects: Sequence[WorldObject]) -> list[tuple[str, str, int]]:
    """(color, shape, count) in order of first appearance."""
    counts: dict[tuple[str, str], int] = {}
    for o in objects:
        counts[(o.color, o.shape)] = counts.get((o.color, o.shape), 0) + 1
    return [(c, s, n) for (c, s), n in counts.items()]


def _reading_order(objects: Sequence[WorldObject]) -> list[WorldObject]:
    return sorted(objects, key=lambda o: o.cell)


def _realise(parts: list[Part], rng: np.random.Generator, style: str) -> str:
    terms = [i for i, p in enumerate(parts) if isinstance(p, Term)]
    table = {"rare": RARE, "misspelled": MISSPELLED}.get(style)
    if table is None and style != "plain":
        raise ValueError(f"unknown caption style {style!r}")
    alter: set[int] = set()
    if table is not None:
        can = [i for i in terms if parts[i].word in table]  # type: ignore[union-attr]
        alter = {i for i in can if rng.random() < ALTERED_RATE}
        if not alter and can:
            alter = {pick(rng, can)}
    words: list[str] = []
    for i, p in enumerate(parts):
        if isinstance(p, Term):
            words.append(pick(rng, table[p.word]) if i in alter else p.word)  # type: ignore[index]
        else:
            words.append(p if isinstance(p, str) else "")
    for i in reversed(range(len(parts))):  # articles from the realised next word
        if isinstance(parts[i], Article):
            words[i] = "an" if words[i + 1][:1] in "aeiou" else "a"
    return " ".join(w for w in words if w).replace(" ,", ",")


def _object_scene_parts(kind: str, scene: Scene, rng: np.random.Generator, size_rate: float) -> tuple[list[Part], Spec]:
    objs = list(scene.objects)
    if kind in ("counting", "multi"):
        ordered = _reading_order(objs)
        groups = _groups(ordered)
        spec_objs = tuple(ObjectSpec(c, s) for c, s, n in groups for _ in range(n))
        return _join([_group_parts(c, s, n) for c, s, n in groups]), Spec(spec_objs)
    sizes = [bool(rng.random() < size_rate) for _ in objs]
    spec_objs = tuple(ObjectSpec(o.color, o.shape, o.size if m else None) for o, m in zip(objs, sizes))
    phrases = [_object_parts(o, m) for o, m in zip(objs, sizes)]
    if kind == "single":
        return phrases[0], Spec(spec_objs)
    if kind == "colors":
        return _join(phrases), Spec(spec_objs)
    if kind == "positional":
        rel = scene.relation
        if rel is None:
            raise ValueError("a positional scene needs its relation")
        parts = [*phrases[rel.a], *RELATION_WORDS[rel.type].split(), *phrases[rel.b]]
        ordered = (spec_objs[rel.a], spec_objs[rel.b])
        return parts, Spec(ordered, Relation(rel.type, 0, 1))
    raise ValueError(f"unknown scene kind {kind!r}")


def caption_scene(
    scene: Scene,
    kind: str,
    rng: np.random.Generator,
    style: str = "plain",
    size_rate: float = 0.5,
    prefix_rate: float = 0.0,
) -> tuple[str, Spec]:
    """A caption of ``scene`` (of ``kind``) in ``style``, and the spec it states."""
    if kind == "text":
        if scene.sign is None:
            raise ValueError("a text scene needs a sign")
        template = TEXT_TEMPLATES[int(rng.random() < prefix_rate)]
        return template.format(scene.sign.text), Spec(text=scene.sign.text)
    parts, spec = _object_scene_parts(kind, scene, rng, size_rate)
    if rng.random() < prefix_rate:
        parts = [PREFIX, *parts]
    return _realise(parts, rng, style), spec
