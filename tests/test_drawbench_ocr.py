"""OCR judge: quote extraction for every DrawBench Text prompt, the string measure, and real RapidOCR."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from drawbench.ocr_judge import (
    OcrJudge,
    char_similarity,
    extract_quoted_text,
    extract_quoted_texts,
    levenshtein,
    normalise,
)
from drawbench.suites import load_suite
from harness.formats.files import sha256_file
from harness.formats.manifest import ImageRecord

DRAWBENCH = load_suite("drawbench")
TEXT_PROMPTS = [i for i in DRAWBENCH if i.category == "Text"]
# The file's Text rows: three templates ("A storefront with '…' written on it.", "A sign that says '…'.",
# "New York Skyline with '…' written with fireworks on the sky.") × these seven strings, in this order.
WORDS = [
    "Hello World",
    "Diffusion",
    "Text to Image",
    "NeurIPS",
    "Deep Learning",
    "Google Brain Toronto",
    "Google Research Pizza Cafe",
]


# --------------------------------------------------------------------------- quoted text


@pytest.mark.parametrize("item", TEXT_PROMPTS, ids=[i.prompt_id for i in TEXT_PROMPTS])
def test_every_text_prompt_yields_its_string(item):
    expected = WORDS[TEXT_PROMPTS.index(item) % 7]
    assert extract_quoted_text(item.prompt) == expected


def test_no_other_drawbench_prompt_quotes_text():
    # Apostrophes ("kid's", "it's", "strings' vibration") must not be read as quotes.
    quoted = [i.prompt_id for i in DRAWBENCH if i.category != "Text" and extract_quoted_text(i.prompt)]
    assert quoted == []


@pytest.mark.parametrize(
    "prompt,expected",
    [
        ('A sign that says "Hello World".', "Hello World"),
        ("A sign that says ‘Hello World’.", "Hello World"),
        ("A sign that says “Hello World”.", "Hello World"),
        ("Ein Schild mit „Hallo Welt“.", "Hallo Welt"),
        ("Un panneau « Bonjour » rouge.", "Bonjour"),
        ("A sign that says `Hello`.", "Hello"),
        ("A diner sign that says 'Mom's Diner'.", "Mom's Diner"),
        ("A book with the words 'Don't Panic!' on it", "Don't Panic!"),
        ('a robot holding a sign with "Let\'s PAINT!" written on it', "Let's PAINT!"),
        ('"G I G G L E" painted in thick colorful lettering', "G I G G L E"),
        ("A store front that has the word ‘openai’ written on it.", "openai"),
        ("Photo of a mega Lego space station inside a kid's bedroom.", None),
        ("The strings' vibration is stopped by dampers.", None),
        ("A red colored car.", None),
    ],
)
def test_quote_styles(prompt, expected):
    assert extract_quoted_text(prompt) == expected


def test_several_quoted_strings_come_in_order():
    assert extract_quoted_texts("the word 'START' written above the word \"SMILING\"") == ["START", "SMILING"]


# --------------------------------------------------------------------------- the string measure


def test_levenshtein_and_similarity():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0
    assert char_similarity("abcd", "abcd") == 1.0
    assert char_similarity("abcd", "") == 0.0
    assert char_similarity("abcd", "abce") == pytest.approx(0.75)


def test_normalisation_ignores_case_spaces_and_the_l_I_glyph():
    assert normalise("Hello  World") == normalise("HELLOWORLD")
    assert normalise("NeurIPS") == normalise("NeurlPS")
    assert normalise("NeurIPS", fold_confusables=False) != normalise("NeurlPS", fold_confusables=False)


class _NoEngineJudge(OcrJudge):
    """The scoring logic without loading RapidOCR (boxes are given directly)."""

    def __init__(self, fold_confusables: bool = True):
        self.fold_confusables = fold_confusables


def test_best_run_of_boxes_is_compared():
    judge = _NoEngineJudge()
    assert judge.score_text("Hello World", ["OPEN", "Hello", "World", "24h"])["exact_match"] is True
    split = judge.score_text("Google Research Pizza Cafe", ["Google Research Pizza", "Cafe"])
    assert split["exact_match"] and split["read"] == "Google Research Pizza Cafe"
    assert judge.score_text("NeurIPS", ["NeurlPS"])["exact_match"] is True
    assert _NoEngineJudge(fold_confusables=False).score_text("NeurIPS", ["NeurlPS"])["exact_match"] is False
    assert judge.score_text("Diffusion", [])["char_similarity"] == 0.0
    assert 0.7 < judge.score_text("Diffusion", ["Difusion"])["char_similarity"] < 1.0


# --------------------------------------------------------------------------- real RapidOCR


def _font_path() -> str | None:
    if shutil.which("fc-list"):
        out = subprocess.run(
            ["fc-list", ":style=Regular:lang=en", "file"], capture_output=True, text=True, check=False
        ).stdout
        for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
            for line in out.splitlines():
                if line.strip().rstrip(":").endswith(name):
                    return line.strip().rstrip(":")
    return None


def render(text: str, size: tuple[int, int] = (512, 256), background="white", ink="black") -> Image.Image:
    """``text`` in a TrueType font (else PIL's scalable default), filling ~85% of the width."""
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    path = _font_path()
    for pt in range(72, 8, -2):
        font = ImageFont.truetype(path, pt) if path else ImageFont.load_default(size=pt)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= 0.85 * size[0]:
            break
    draw.text(
        ((size[0] - (right - left)) // 2 - left, (size[1] - (bottom - top)) // 2 - top), text, fill=ink, font=font
    )
    return img


@pytest.fixture(scope="module")
def judge() -> OcrJudge:
    return OcrJudge()  # one engine for the module: RapidOCR is slow to build


# Hello World, Text to Image, NeurIPS (I/l) on storefronts; Google Research Pizza Cafe on a sign
@pytest.mark.parametrize("item_id", ["drawbench-0180", "drawbench-0182", "drawbench-0183", "drawbench-0193"])
def test_rendered_target_scores_near_one(judge, item_id):
    item = DRAWBENCH.by_id(item_id)
    score = judge.score(render(extract_quoted_text(item.prompt)), item.prompt)
    assert score["char_similarity"] >= 0.85, score  # "Text to Image" reads as "Text to I Image" (0.92)
    assert score["target"] == extract_quoted_text(item.prompt)


def test_light_text_on_dark_background_is_read(judge):
    score = judge.score(
        render("Diffusion", background=(20, 30, 60), ink=(250, 240, 200)), "A sign that says 'Diffusion'."
    )
    assert score["exact_match"] is True, score


def test_blank_image_scores_zero(judge):
    score = judge.score(Image.new("RGB", (512, 256), "white"), "A sign that says 'Hello World'.")
    assert score == {"target": "Hello World", "read": "", "exact_match": False, "char_similarity": 0.0}


def test_different_text_scores_near_zero(judge):
    score = judge.score(render("Banana Split"), "A sign that says 'Deep Learning'.")
    assert score["read"] and score["exact_match"] is False
    assert score["char_similarity"] < 0.35, score


def test_prompt_without_quotes_is_a_programming_error(judge):
    with pytest.raises(ValueError, match="quotes no text"):
        judge.score(Image.new("RGB", (64, 64)), "A red colored car.")


def test_score_records_reads_files_of_the_text_category_only(judge, tmp_path: Path):
    records = []
    for pid, seed, text, cat in [
        ("drawbench-0188", 0, "Diffusion", "Text"),
        ("drawbench-0188", 1, "", "Text"),
        ("drawbench-0001", 0, "Diffusion", "Colors"),
    ]:
        path = tmp_path / "images" / "sr" / pid / f"{seed}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (render(text) if text else Image.new("RGB", (512, 256), "white")).save(path)
        records.append(
            ImageRecord(
                pid,
                DRAWBENCH.by_id(pid).prompt,
                seed,
                "sr",
                512,
                path.relative_to(tmp_path).as_posix(),
                sha256_file(path),
                cat,
            )
        )
    low_res = dataclasses.replace(records[0], stage="base", resolution=64)
    rows = judge.score_records(tmp_path, [low_res, *records])  # only the final stage is read
    assert [(r["prompt_id"], r["seed"], r["exact_match"]) for r in rows] == [
        ("drawbench-0188", 0, True),
        ("drawbench-0188", 1, False),
    ]
