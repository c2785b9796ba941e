"""The world's vocabulary, its ground-truth scenes and caption specs, and scene sampling.

Design (why the world looks like this):

* **Legible at 32².** The cascade's base stage is 32×32, so objects are large flat shapes on a
  plain light background: a small object spans 0.16 of the image (5 px at 32², 20 px at 128²),
  a large one 0.25. Sizes differ by 1.56× in extent (2.4× in area), so "small" and "large" stay
  distinguishable after downsampling.
* **Six well-separated colours.** Hues 0° (red), 50° (yellow), 132° (green), 187° (cyan),
  226° (blue), 280° (purple): at least 39° apart, and every colour has a chroma (max − min) of
  at least 120, so each is told from the grey background and from the others by hue alone.
  Hue is what survives antialiasing: a blend of a colour with the grey background keeps its hue.
* **Four shapes with distinct silhouettes.** circle, square, triangle (apex up), diamond: told
  apart by how much of their extent they fill (square 1, circle π/4, triangle and diamond ½) and
  by where their mass sits (a triangle is bottom-heavy, a diamond symmetric).
* **A coarse 3×3 grid.** Each object sits in its own cell (jitter ±0.012 of the side), so objects
  never touch and "left of" / "above" are unambiguous: the two objects of a positional scene share
  a row (left/right) or a column (above/below).
* **Signs.** A dark board with a white upper-case word of 2–5 letters from :data:`WORDS`, drawn
  with Pillow's bundled font (no system fonts needed), big enough for RapidOCR at 128².

Coordinates in scenes and specs are fractions of the image side (x right, y down), so one scene
renders at any resolution. Sampling uses only ``numpy.random.Generator`` (integers, uniform,
permutation), so a seed fixes a scene bit for bit for a given numpy (recorded in ``world.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

GENERATOR_VERSION = 1  # bump when sampling, captions or rendering change what a seed produces

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 45, 45),
    "yellow": (240, 205, 35),
    "green": (45, 165, 70),
    "cyan": (40, 190, 210),
    "blue": (45, 85, 215),
    "purple": (150, 60, 195),
}
COLORS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES: dict[str, float] = {"small": 0.16, "large": 0.25}  # extent (bounding-box side) / image side
BACKGROUND = (238, 238, 238)
SIGN_BOARD = (40, 40, 40)
SIGN_INK = (250, 250, 250)
WORDS = ("GO", "UP", "OK", "SUN", "CAT", "DOG", "MOON", "STAR", "BOAT", "FROG", "LAMP", "ZEBRA")
GRID = 3
JITTER = 0.012
RELATIONS = ("left_of", "right_of", "above", "below")
KINDS = ("single", "colors", "counting", "positional", "text", "multi")
STYLES = ("plain", "rare", "misspelled")
# Category of a captioned scene: its kind, unless the caption's wording is what is being tested.
STYLE_CATEGORY = {"rare": "rare_words", "misspelled": "misspellings"}
CATEGORIES = ("single", "colors", "counting", "positional", "text", "rare_words", "misspellings", "multi")
MAX_OBJECTS = 4


# --------------------------------------------------------------------------- specs (what a caption asks)


@dataclass(frozen=True)
class ObjectSpec:
    """One object a caption asks for; ``size`` None when the caption does not say."""

    color: str
    shape: str
    size: str | None = None

    def accepts(self, color: str, shape: str, size: str) -> bool:
        return color == self.color and shape == self.shape and (self.size is None or size == self.size)


@dataclass(frozen=True)
class Relation:
    """``objects[a]`` is ``type`` (left_of, right_of, above, below) ``objects[b]``."""

    type: str
    a: int = 0
    b: int = 1


@dataclass(frozen=True)
class Spec:
    """The machine-checkable content of a caption: the scene holds exactly these objects (no more),
    in this relation, and one sign with ``text`` when given (no sign otherwise)."""

    objects: tuple[ObjectSpec, ...] = ()
    relation: Relation | None = None
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": [{"color": o.color, "shape": o.shape, "size": o.size} for o in self.objects],
            "relation": None
            if self.relation is None
            else {"type": self.relation.type, "a": self.relation.a, "b": self.relation.b},
            "text": self.text,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Spec:
        """Parse and validate a spec dict (ValueError naming the bad field)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a spec must be a JSON object, got {type(data).__name__}")  # noqa: TRY004 (bad data)
        objects = []
        for n, o in enumerate(data.get("objects") or []):
            if not isinstance(o, Mapping):
                raise ValueError(f"spec objects[{n}] must be an object")  # noqa: TRY004 (bad data)
            color, shape, size = o.get("color"), o.get("shape"), o.get("size")
            if color not in PALETTE or shape not in SHAPES or (size is not None and size not in SIZES):
                raise ValueError(
                    f"spec objects[{n}] = {dict(o)} is not a world object "
                    f"(colors {COLORS}, shapes {SHAPES}, sizes {tuple(SIZES)} or null)"
                )
            objects.append(ObjectSpec(color, shape, size))
        if len(objects) > MAX_OBJECTS:
            raise ValueError(f"spec asks for {len(objects)} objects; the world has at most {MAX_OBJECTS}")
        return Spec(
            tuple(objects), _relation_from_json(data.get("relation"), len(objects)), _text_from_json(data.get("text"))
        )


def _relation_from_json(rel: Any, n_objects: int) -> Relation | None:
    if rel is None:
        return None
    if not isinstance(rel, Mapping) or rel.get("type") not in RELATIONS:
        raise ValueError(f"spec relation {rel!r} must be {{type: one of {RELATIONS}, a: int, b: int}}")
    a, b = rel.get("a", 0), rel.get("b", 1)
    if not (isinstance(a, int) and isinstance(b, int) and a != b and 0 <= min(a, b) and max(a, b) < n_objects):
        raise ValueError(f"spec relation indices a={a!r}, b={b!r} must name two different objects")
    return Relation(str(rel["type"]), a, b)


def _text_from_json(text: Any) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"spec text must be a non-empty string or null, got {text!r}")
    return text


# --------------------------------------------------------------------------- ground truth (what is drawn)


@dataclass(frozen=True)
class WorldObject:
    color: str
    shape: str
    size: str
    cell: tuple[int, int]  # (row, col) on the 3×3 grid
    center: tuple[float, float]  # (x, y), fractions of the image side

    @property
    def extent(self) -> float:
        return SIZES[self.size]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        h = self.extent / 2
        return (self.center[0] - h, self.center[1] - h, self.center[0] + h, self.center[1] + h)

    def to_json(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "shape": self.shape,
            "size": self.size,
            "cell": list(self.cell),
            "center": [round(v, 6) for v in self.center],
            "bbox": [round(v, 6) for v in self.bbox],
        }


@dataclass(frozen=True)
class Sign:
    text: str
    center: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "center": [round(v, 6) for v in self.center]}


@dataclass(frozen=True)
class Scene:
    """What is drawn. ``relation`` records the relation the layout was built for (positional)."""

    objects: tuple[WorldObject, ...] = ()
    sign: Sign | None = None
    relation: Relation | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": [o.to_json() for o in self.objects],
            "sign": None if self.sign is None else self.sign.to_json(),
            "relation": None
            if self.relation is None
            else {"type": self.relation.type, "a": self.relation.a, "b": self.relation.b},
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Scene:
        objects = tuple(
            WorldObject(o["color"], o["shape"], o["size"], tuple(o["cell"]), tuple(o["center"]))
            for o in data.get("objects") or []
        )
        sign = data.get("sign")
        rel = data.get("relation")
        return Scene(
            objects,
            None if sign is None else Sign(sign["text"], tuple(sign["center"])),
            None if rel is None else Relation(rel["type"], rel["a"], rel["b"]),
        )


# --------------------------------------------------------------------------- sampling


def pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    """One element of ``seq`` (``rng.choice`` would turn strings into ``numpy.str_``)."""
    return seq[int(rng.integers(len(seq)))]


def _center(rng: np.random.Generator, row: int, col: int) -> tuple[float, float]:
    jx, jy = rng.uniform(-JITTER, JITTER, size=2)
    return ((col + 0.5) / GRID + float(jx), (row + 0.5) / GRID + float(jy))


def _relation_cells(rng: np.random.Generator, relation: str) -> list[tuple[int, int]]:
    """Cells of (a, b) such that a is ``relation`` b, sharing a row (left/right) or a column."""
    line = int(rng.integers(GRID))
    lo, hi = sorted(int(v) for v in rng.permutation(GRID)[:2])
    first, second = (lo, hi) if relation in ("left_of", "above") else (hi, lo)
    if relation in ("left_of", "right_of"):
        return [(line, first), (line, second)]
    return [(first, line), (second, line)]


def place(
    rng: np.random.Generator,
    attrs: Sequence[tuple[str, str, str]],
    relation: Relation | None = None,
    text: str | None = None,
) -> Scene:
    """A scene holding objects with these (color, shape, size), in ``relation`` if given, or a sign."""
    if text is not None:
        row = int(rng.integers(GRID))
        jx, jy = rng.uniform(-1.0, 1.0, size=2)
        sign = Sign(text, (0.5 + 0.06 * float(jx), (row + 0.5) / GRID + 0.02 * float(jy)))
        return Scene((), sign, None)
    if relation is not None:
        cells = _relation_cells(rng, relation.type)
        order = [relation.a, relation.b]
        cell_of = {order[0]: cells[0], order[1]: cells[1]}
    else:
        chosen = rng.permutation(GRID * GRID)[: len(attrs)]
        cell_of = {i: divmod(int(c), GRID) for i, c in enumerate(chosen)}
    objects = tuple(WorldObject(c, s, z, cell_of[i], _center(rng, *cell_of[i])) for i, (c, s, z) in enumerate(attrs))
    return Scene(objects, None, relation)


def _distinct_pairs(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """``n`` (color, shape) pairs with all colours and all shapes different (binding is then testable)."""
    colors = [COLORS[int(i)] for i in rng.permutation(len(COLORS))[:n]]
    shapes = [SHAPES[int(i)] for i in rng.permutation(len(SHAPES))[:n]]
    return list(zip(colors, shapes))


def sample_scene(rng: np.random.Generator, kind: str) -> Scene:
    """A random scene of ``kind`` (one of :data:`KINDS`)."""
    size = lambda: pick(rng, tuple(SIZES))
    if kind == "single":
        return place(rng, [(pick(rng, COLORS), pick(rng, SHAPES), size())])
    if kind == "colors":
        return place(rng, [(c, s, size()) for c, s in _distinct_pairs(rng, 2)])
    if kind == "counting":
        n, color, shape = 2 + int(rng.integers(3)), pick(rng, COLORS), pick(rng, SHAPES)
        return place(rng, [(color, shape, size()) for _ in range(n)])
    if kind == "positional":
        relation = Relation(pick(rng, RELATIONS), 0, 1)
        return place(rng, [(c, s, size()) for c, s in _distinct_pairs(rng, 2)], relation)
    if kind == "text":
        return place(rng, [], text=pick(rng, WORDS))
    if kind == "multi":
        n = 3 + int(rng.integers(2))
        return place(rng, [(pick(rng, COLORS), pick(rng, SHAPES), size()) for _ in range(n)])
    raise ValueError(f"unknown scene kind {kind!r} (expected one of {KINDS})")


def scene_for_spec(spec: Spec, rng: np.random.Generator) -> Scene:
    """A ground-truth scene that satisfies ``spec`` (unspecified sizes drawn at random)."""
    if spec.text is not None:
        return place(rng, [], text=spec.text)
    attrs = [(o.color, o.shape, o.size or pick(rng, tuple(SIZES))) for o in spec.objects]
    return place(rng, attrs, spec.relation)


def category_of(kind: str, style: str) -> str:
    return STYLE_CATEGORY.get(style, kind)
