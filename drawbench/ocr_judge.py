"""OCR judge for prompts that ask for written text (DrawBench "Text": "A sign that says 'Diffusion'.").

The quoted string is extracted from the prompt, RapidOCR (PP-OCRv4 ONNX weights shipped inside
``rapidocr-onnxruntime``, so it runs offline) reads every text box in the image, and the reading is
compared with the target after normalisation:

* NFKC, case-folded, all whitespace removed. OCR often drops or inserts spaces between words
  ("HelloWorld"), and a missing space is not what the prompt tests.
* ``fold_confusables`` (default on): lowercase ``l`` and uppercase ``I`` become one letter. In the
  sans-serif lettering that models usually render, they are the same glyph, so an OCR reading
  cannot tell them apart ("NeurIPS" is read as "NeurlPS").

``char_similarity`` = 1 − Levenshtein(target, reading) / max(len(target), len(reading)), in [0, 1].
The reading compared is the best-matching run of consecutive text boxes in RapidOCR's reading
order (top to bottom, left to right). Unrelated text elsewhere in the image (an "OPEN" sign next to
the storefront's name) is therefore not counted against the image. ``exact_match`` means that
similarity is 1. ``read`` reports every box, joined with spaces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from PIL import Image

from harness.formats.files import open_rgb
from harness.formats.manifest import ImageRecord
from harness.formats.runs import select_stage

# (opening, closing) quote pairs. For the characters that double as apostrophes (' and ’), an
# opening quote must not follow a letter or digit and a closing one must not precede one, so that
# "Mom's" and "strings' vibration" are not read as quotes.
_QUOTE_PATTERNS = [
    re.compile(r"(?<!\w)'(.+?)'(?!\w)"),
    re.compile(r'"(.+?)"'),
    re.compile(r"(?<!\w)‘(.+?)’(?!\w)"),
    re.compile(r"“(.+?)”"),
    re.compile(r"„(.+?)[“”]"),
    re.compile(r"«\s?(.+?)\s?»"),
    re.compile(r"`(.+?)`"),
]


def extract_quoted_texts(prompt: str) -> list[str]:
    """Every quoted string in ``prompt``, in order of appearance; quotes of any style listed above."""
    found: list[tuple[int, str]] = []
    for pattern in _QUOTE_PATTERNS:
        found += [(m.start(), m.group(1).strip()) for m in pattern.finditer(prompt)]
    return [text for _, text in sorted(found) if text]


def extract_quoted_text(prompt: str) -> str | None:
    """The first quoted string in ``prompt`` (what the image should show), or None when none is quoted."""
    texts = extract_quoted_texts(prompt)
    return texts[0] if texts else None


def normalise(text: str, fold_confusables: bool = True) -> str:
    """The comparison form of a text: NFKC, case-folded, no whitespace, optionally l/I folded."""
    out = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    return out.replace("l", "i") if fold_confusables else out


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1), two-row dynamic programme."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_similarity(target: str, reading: str) -> float:
    """1 − normalised edit distance of two already-normalised strings; 1.0 only when equal."""
    if not target and not reading:
        return 1.0
    return 1.0 - levenshtein(target, reading) / max(len(target), len(reading))


class OcrScore(TypedDict):
    target: str
    read: str
    exact_match: bool
    char_similarity: float


@lru_cache(maxsize=4)
def _engine(threads: int) -> Any:
    # Building the three ONNX sessions is slow, so one engine per thread count, per process.
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


class OcrJudge:
    """Scores images against the quoted text of their prompt. ``threads=-1`` lets ONNX use every core."""

    def __init__(self, fold_confusables: bool = True, threads: int = -1, min_confidence: float = 0.5) -> None:
        self.fold_confusables = fold_confusables
        self.threads = threads
        self.min_confidence = min_confidence
        self.engine = _engine(threads)

    def read_boxes(self, image: Image.Image | str | Path) -> list[str]:
        """Text of every box RapidOCR finds with confidence ≥ ``min_confidence``, in reading order."""
        if not isinstance(image, Image.Image):
            image = open_rgb(image)
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # RapidOCR wants BGR
        result, _ = self.engine(bgr)
        return [str(text) for _, text, conf in (result or []) if float(conf) >= self.min_confidence]

    def score_text(self, target: str, boxes: Sequence[str]) -> OcrScore:
        """Compare ``target`` with the best run of consecutive boxes (see the module docstring)."""
        want = normalise(target, self.fold_confusables)
        best = 0.0 if want else 1.0
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes) + 1):
                got = normalise("".join(boxes[i:j]), self.fold_confusables)
                if len(got) > len(want) and len(want) / len(got) <= best:
                    break  # similarity ≤ len(want)/len(got): longer runs cannot beat `best`
                best = max(best, char_similarity(want, got))
        return OcrScore(target=target, read=" ".join(boxes), exact_match=best == 1.0, char_similarity=best)

    def score(self, image: Image.Image | str | Path, prompt: str) -> OcrScore:
        """Score one image against the text quoted in ``prompt`` (ValueError when it quotes none)."""
        target = extract_quoted_text(prompt)
        if target is None:
            raise ValueError(f"prompt quotes no text to read: {prompt!r}")
        return self.score_text(target, self.read_boxes(image))

    def score_records(
        self,
        run_dir: str | Path,
        records: Iterable[ImageRecord],
        categories: Sequence[str] = ("Text",),
        stage: str | None = None,
    ) -> list[dict[str, Any]]:
        """OCR rows (prompt_id, seed, category + :class:`OcrScore`) for the records in ``categories``.

        Only ``stage`` is read (default: the final, highest-resolution stage), so that each
        (prompt_id, seed) has one row. The result is what
        :func:`drawbench.scoring.category_table` takes as ``ocr``.
        """
        rows = []
        _, chosen = select_stage(records, stage)
        for rec in chosen:
            if rec.category in categories:
                s = self.score(Path(run_dir) / rec.path, rec.prompt)
                rows.append({"prompt_id": rec.prompt_id, "seed": rec.seed, "category": rec.category, **s})
        return rows
