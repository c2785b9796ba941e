"""Judge an image of the world against a caption's spec: exact, GenEval-style sub-checks.

An image is ``correct`` when the parse holds exactly the spec's objects (no missing and no extra
object; sizes checked only where the caption names them), in the spec's relation, and exactly
one sign with the spec's word when the caption quotes one (no sign otherwise). The sub-checks
say what failed:

* ``count``: as many objects as asked (attributes aside) — the counting question;
* ``colors`` / ``shapes``: the multiset of colours / of shapes is right (binding aside);
* ``objects``: an exact match of the objects with their attributes (binding);
* ``relation``: among exact matches, one puts object a ``left_of``/``right_of``/``above``/``below``
  object b by at least :data:`RELATION_MARGIN` of the side between centres (False when no match);
* ``signs`` and ``text``: the number of signs, and the word read by RapidOCR compared with
  ``drawbench.ocr_judge.normalise`` (case-folded, spaces removed).

:func:`check` is pure (a parse and a spec in, a dict out); :func:`judge_image` parses first and
:func:`judge_scene` judges a ground-truth scene as a perfect parser would see it (the oracle that
tells what a shuffled caption *should* score).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.world.parser import Detected, Parse, ReadText, parse_image, parse_scene
from benchmarks.world.scenes import Relation, Scene, Spec

RELATION_MARGIN = 0.1  # of the image side; ground-truth pairs are a grid cell (0.33) apart
SUBCHECKS = ("count", "colors", "shapes", "objects", "relation", "signs", "text")


def _matches(found: Sequence[Detected], spec: Spec) -> list[tuple[int, ...]]:
    """Every assignment (spec object i → found object p[i]) that satisfies all attributes."""
    if len(found) != len(spec.objects):
        return []
    return [
        p
        for p in itertools.permutations(range(len(found)))
        if all(w.accepts(found[j].color, found[j].shape, found[j].size) for w, j in zip(spec.objects, p))
    ]


def relation_holds(
    relation: str, a: tuple[float, float], b: tuple[float, float], margin: float = RELATION_MARGIN
) -> bool:
    """Whether centre ``a`` is ``relation`` centre ``b`` (x right, y down) by at least ``margin``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    return {"left_of": dx >= margin, "right_of": -dx >= margin, "above": dy >= margin, "below": -dy >= margin}[relation]


def _relation_ok(found: Sequence[Detected], rel: Relation, matches: list[tuple[int, ...]]) -> bool:
    return any(relation_holds(rel.type, found[p[rel.a]].center, found[p[rel.b]].center) for p in matches)


def _text_ok(parse: Parse, word: str) -> tuple[bool, str | None]:
    from drawbench.ocr_judge import normalise

    if len(parse.signs) != 1 or parse.signs[0].text is None:
        return False, None if not parse.signs else parse.signs[0].text
    read = parse.signs[0].text
    return normalise(read) == normalise(word), read


def check(parse: Parse, spec: Spec) -> dict[str, Any]:
    """Sub-checks and the verdict for one parse; ``relation``/``text`` are None when not asked."""
    found = parse.objects
    matches = _matches(found, spec)
    out: dict[str, Any] = {
        "count": len(found) == len(spec.objects),
        "colors": Counter(o.color for o in found) == Counter(w.color for w in spec.objects),
        "shapes": Counter(o.shape for o in found) == Counter(w.shape for w in spec.objects),
        "objects": bool(matches),
        "relation": None if spec.relation is None else _relation_ok(found, spec.relation, matches),
        "signs": len(parse.signs) == (0 if spec.text is None else 1),
        "text": None,
        "n_expected": len(spec.objects),
        "n_found": len(found),
        "text_read": None,
    }
    if spec.text is not None:
        out["text"], out["text_read"] = _text_ok(parse, spec.text)
    out["correct"] = bool(out["objects"] and out["signs"] and out["relation"] is not False and out["text"] is not False)
    return out


def as_spec(spec: Spec | Mapping[str, Any]) -> Spec:
    return spec if isinstance(spec, Spec) else Spec.from_json(spec)


@lru_cache(maxsize=1)
def default_reader() -> ReadText:
    """RapidOCR through the DrawBench OCR judge (one engine per process; one thread: judging runs
    beside generation on small machines, and one image at a time gains little from more)."""
    from drawbench.ocr_judge import OcrJudge

    return OcrJudge(threads=1).read_boxes


def judge_image(
    image: Image.Image | np.ndarray, spec: Spec | Mapping[str, Any], read_text: ReadText | None = None
) -> dict[str, Any]:
    """Parse ``image`` and check it against ``spec``; the parse is included under ``parse``.

    Signs are read (RapidOCR) only when the spec quotes a word; ``read_text`` replaces the reader.
    """
    spec = as_spec(spec)
    reader = (read_text or default_reader()) if spec.text is not None else None
    parse = parse_image(image, reader)
    return {**check(parse, spec), "parse": parse.to_json()}


def judge_scene(scene: Scene, spec: Spec | Mapping[str, Any]) -> dict[str, Any]:
    """The verdict a perfect parser would give for a ground-truth scene (the oracle)."""
    return check(parse_scene(scene), as_spec(spec))


def _scene_signature(scene: Scene) -> tuple:
    return (tuple(sorted((o.color, o.shape) for o in scene.objects)), None if scene.sign is None else scene.sign.text)


def _spec_signature(spec: Spec) -> tuple:
    return (tuple(sorted((o.color, o.shape) for o in spec.objects)), spec.text)


def truth_matrix(scenes: Sequence[Scene], specs: Sequence[Spec | Mapping[str, Any]]) -> np.ndarray:
    """``T[i, j]``: caption spec j is a true description of ground-truth scene i (the oracle).

    Only pairs with the same multiset of (colour, shape) and the same word can be true, so the full
    check runs on those alone: a 256×256 matrix costs a few hundred checks, not 65,536.
    """
    specs = [as_spec(s) for s in specs]
    scene_sig = [_scene_signature(s) for s in scenes]
    spec_sig = [_spec_signature(s) for s in specs]
    ids = {sig: n for n, sig in enumerate(dict.fromkeys(scene_sig + spec_sig))}
    a = np.array([ids[s] for s in scene_sig])
    b = np.array([ids[s] for s in spec_sig])
    out = np.zeros((len(scenes), len(specs)), dtype=bool)
    parses: dict[int, Parse] = {}
    for i, j in zip(*np.nonzero(a[:, None] == b[None, :])):
        parse = parses.setdefault(int(i), parse_scene(scenes[i]))
        out[i, j] = check(parse, specs[j])["correct"]
    return out
