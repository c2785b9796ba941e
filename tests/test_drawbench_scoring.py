"""Per-category table: CLIP mean and CI per category, OCR for Text, an overall row; JSON, frame, Markdown."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drawbench.fakes import write_fake_run
from drawbench.scoring import category_table
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.metrics.intervals import mean_ci

SUITE = load_suite("drawbench", categories=["Colors", "Counting", "Text"], limit_per_category=2)


@pytest.fixture
def run(tmp_path):
    records = write_fake_run(tmp_path, SUITE)
    rng = np.random.default_rng(0)
    final = [r for r in records if r.stage == "sr256"]
    clip = {(r.prompt_id, r.seed): float(rng.normal(0.3, 0.02)) for r in final}
    ocr = [{"prompt_id": r.prompt_id, "seed": r.seed, "exact_match": r.seed < 2,
            "char_similarity": 1.0 if r.seed < 2 else 0.5} for r in final if r.category == "Text"]
    return records, final, clip, ocr


def test_per_category_rows_and_overall(run):
    records, final, clip, ocr = run
    table = category_table(records, clip, ocr)
    assert table.stage == "sr256"
    assert [r["category"] for r in table.rows] == ["Colors", "Counting", "Text", "overall"]
    colors = table.rows[0]
    expected = mean_ci([clip[(r.prompt_id, r.seed)] for r in final if r.category == "Colors"])
    assert (colors["n_prompts"], colors["n_images"]) == (2, 16)
    assert colors["clip_score"] == expected.as_dict()
    assert "ocr_exact_match" not in colors
    text = table.rows[2]
    assert text["ocr_exact_match"]["mean"] == pytest.approx(2 / 8)
    assert text["ocr_char_similarity"]["mean"] == pytest.approx((2 * 1.0 + 6 * 0.5) / 8)
    assert text["ocr_exact_match"]["ci_low"] < 0.25 < text["ocr_exact_match"]["ci_high"]
    overall = table.rows[-1]
    assert (overall["n_prompts"], overall["n_images"]) == (6, 48)
    assert overall["clip_score"]["mean"] == pytest.approx(np.mean(list(clip.values())))
    assert overall["ocr_n_images"] == 16


def test_json_frame_and_markdown(run):
    records, _, clip, ocr = run
    table = category_table(records, clip, ocr, category_order=["Text", "Colors", "Counting"])
    data = json.loads(json.dumps(table.to_json()))
    assert data["ci_unit"] == "image" and data["overall"]["category"] == "overall"
    assert [c["category"] for c in data["categories"]] == ["Text", "Colors", "Counting"]
    frame = table.to_frame()
    assert list(frame["category"]) == ["Text", "Colors", "Counting", "overall"]
    wanted = {"clip_mean", "clip_ci_low", "clip_ci_high", "ocr_exact_mean", "ocr_char_sim_mean"}
    assert wanted <= set(frame.columns)
    assert np.isnan(frame.loc[1, "ocr_exact_mean"]) and frame.loc[0, "ocr_exact_mean"] == pytest.approx(0.25)
    md = table.to_markdown().splitlines()
    assert md[0].startswith("| category | prompts | images | CLIP score [95% CI] | OCR exact match")
    assert md[2].startswith("| Text | 2 | 16 | ") and "0.250 [" in md[2]
    assert md[-1].startswith("| **overall** | 6 | 48 |") and len(md) == 6


def test_prompt_unit_uses_per_prompt_means(run):
    records, final, clip, _ = run
    table = category_table(records, clip, unit="prompt")
    per_prompt = [np.mean([clip[(r.prompt_id, r.seed)] for r in final if r.prompt_id == pid])
                  for pid in ("drawbench-0001", "drawbench-0002")]
    assert table.rows[0]["clip_score"] == mean_ci(per_prompt).as_dict()
    assert table.rows[0]["clip_score"]["n"] == 2 and table.metrics == ["clip_score"]


def test_clip_as_dataframe_and_explicit_stage(run):
    records, _, _, _ = run
    base = [r for r in records if r.stage == "base64"]
    frame = pd.DataFrame({"prompt_id": [r.prompt_id for r in base], "seed": [r.seed for r in base],
                          "clip_score": [0.25 + 0.01 * r.seed for r in base]})
    table = category_table(records, frame, stage="base64")
    assert table.stage == "base64" and table.rows[-1]["clip_score"]["mean"] == pytest.approx(0.285)


def test_missing_clip_score_is_named(run):
    records, _, clip, _ = run
    del clip[("drawbench-0036", 4)]
    with pytest.raises(UserError, match=r"no CLIP score for drawbench-0036 seed 4 \(1 of 48"):
        category_table(records, clip)
    with pytest.raises(UserError, match="columns"):
        category_table(records, pd.DataFrame({"prompt_id": [], "score": []}))


def test_ocr_only_table(run):
    records, _, _, ocr = run
    table = category_table(records, ocr=ocr)
    assert table.metrics == ["ocr_exact_match", "ocr_char_similarity"]
    assert "CLIP" not in table.to_markdown()
