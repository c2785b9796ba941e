"""The per-group score table every benchmark writes: per category (suites) or per stage (COCO), with
intervals that respect each output's kind, JSON/frame/Markdown forms and an overall row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from drawbench.fakes import write_fake_run
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.evaluation.scoring import aggregate
from harness.formats.values import ResultTable
from harness.metrics.base import Output, SetValue
from harness.metrics.maths.intervals import mean_ci, proportion_ci

SUITE = load_suite("drawbench", categories=["Colors", "Counting", "Text"], limit_per_category=2)
CLIP = Output("clip_score", True, "continuous", label="CLIP score")
EXACT = Output("ocr_exact_match", True, "binary", label="OCR exact match")
SIM = Output("ocr_char_similarity", True, "bounded", label="OCR char similarity")
FID = Output("fid", False, "continuous", per_image=False, label="FID")


@pytest.fixture
def run(tmp_path):
    records = write_fake_run(tmp_path, SUITE)
    rng = np.random.default_rng(0)
    final = [r for r in records if r.stage == "sr256"]
    per_image = {
        "clip_score": {("sr256", r.sample_key): float(rng.normal(30, 2)) for r in final},
        "ocr_exact_match": {("sr256", r.sample_key): float(r.seed < 2) for r in final if r.category == "Text"},
        "ocr_char_similarity": {
            ("sr256", r.sample_key): 1.0 if r.seed < 2 else 0.5 for r in final if r.category == "Text"
        },
    }
    return records, final, per_image


def test_per_category_rows_overall_and_kinds(run):
    records, final, per_image = run
    table = aggregate(records, ["sr256"], [CLIP, EXACT, SIM], per_image, {})
    assert [r.group for r in table.rows] == ["Colors", "Counting", "Text", "overall"]
    colors = table.rows[0]
    expected = mean_ci([per_image["clip_score"][("sr256", r.sample_key)] for r in final if r.category == "Colors"])
    assert (colors.n_prompts, colors.n_images) == (2, 16)
    assert colors.prompts == ("drawbench-0001", "drawbench-0002") and table.rows[-1].prompts is None
    clip = table.value("Colors", "clip_score")
    assert (
        clip.value == expected.mean
        and clip.method == "t"
        and (clip.ci_low, clip.ci_high) == (expected.low, expected.high)
    )
    assert table.value("Colors", "ocr_exact_match") is None
    exact = table.value("Text", "ocr_exact_match")
    assert exact.value == pytest.approx(2 / 8) and exact.method == "wilson"
    assert (exact.ci_low, exact.ci_high) == pytest.approx(proportion_ci([1, 1, 0, 0, 0, 0, 0, 0] * 2).low_high)
    assert 0.0 <= exact.ci_low < 0.25 < exact.ci_high <= 1.0
    sim = table.value("Text", "ocr_char_similarity")
    assert sim.value == pytest.approx((2 * 1.0 + 6 * 0.5) / 8) and sim.method == "bootstrap"
    assert 0.5 <= sim.ci_low < sim.value < sim.ci_high <= 1.0
    overall = table.rows[-1]
    assert (overall.n_prompts, overall.n_images) == (6, 48)
    assert table.value("overall", "clip_score").value == pytest.approx(np.mean(list(per_image["clip_score"].values())))
    assert table.value("overall", "ocr_exact_match").n == 16 and exact.n == 16


def test_json_frame_and_markdown(run):
    records, _, per_image = run
    table = aggregate(
        records, ["sr256"], [CLIP, EXACT, SIM], per_image, {}, category_order=["Text", "Colors", "Counting"]
    )
    data = json.loads(json.dumps(table.table.to_json()))
    assert data["ci_unit"] == "image" and data["rows"][-1]["group"] == "overall" and data["stage"] == "sr256"
    assert ResultTable.from_json(data) == table.table  # one writer, one reader
    assert list(table.values) == ["Text", "Colors", "Counting", "overall"]
    assert data["rows"][0]["n_images"] == 16 and "ocr_exact_match" not in table.values["Colors"]
    frame = table.to_frame()
    assert list(frame["group"]) == ["Text", "Colors", "Counting", "overall"]
    assert {"clip_score", "clip_score_ci_low", "ocr_exact_match", "ocr_char_similarity_ci_high"} <= set(frame)
    assert np.isnan(frame.loc[1, "ocr_exact_match"]) and frame.loc[0, "ocr_exact_match"] == pytest.approx(0.25)
    md = table.to_markdown().splitlines()
    assert md[0].startswith("| category | prompts | images | CLIP score ↑ [95% CI] | OCR exact match ↑")
    assert md[2].startswith("| Text | 2 | 16 | ") and "0.250 [" in md[2]
    assert md[-1].startswith("| **overall** | 6 | 48 |") and len(md) == 6


def test_prompt_unit_uses_per_prompt_means(run):
    records, final, per_image = run
    table = aggregate(records, ["sr256"], [CLIP], per_image, {}, unit="prompt")
    per_prompt = [
        np.mean([per_image["clip_score"][("sr256", r.sample_key)] for r in final if r.prompt_id == pid])
        for pid in ("drawbench-0001", "drawbench-0002")
    ]
    expected = mean_ci(per_prompt)
    assert table.value("Colors", "clip_score").value == pytest.approx(expected.mean)
    assert table.value("Colors", "clip_score").n == 2 and [o.name for o in table.outputs] == ["clip_score"]


def test_binary_values_per_prompt_never_leave_zero_one(run):
    records, final, _ = run
    text = sorted({r.prompt_id for r in final if r.category == "Text"})
    exact = {
        ("sr256", r.sample_key): float(r.seed < (1 if r.prompt_id == text[0] else 7))
        for r in final
        if r.category == "Text"
    }
    table = aggregate(records, ["sr256"], [EXACT], {"ocr_exact_match": exact}, {}, unit="prompt")
    row = table.value("Text", "ocr_exact_match")
    assert row.n == 2 and row.value == pytest.approx(0.5)
    assert row.method == "bootstrap" and 0.0 <= row.ci_low <= row.ci_high <= 1.0


def test_stage_grouping_and_set_values(run):
    records, _, _ = run
    per_image = {"clip_score": {(r.stage, r.sample_key): 20.0 + r.seed for r in records}}
    sets = {("base64", "fid"): SetValue(12.5, 11.0, 14.0, 48), ("sr256", "fid"): SetValue(9.5, n=48)}
    table = aggregate(records, ["base64", "sr256"], [CLIP, FID], per_image, sets, group_by="stage")
    assert [r.group for r in table.rows] == ["base64", "sr256"] and table.rows[0].prompts is None
    assert table.value("base64", "fid").value == 12.5 and table.value("base64", "fid").ci_high == 14.0
    assert table.value("base64", "fid").level == 0.95  # the table's level is stamped on set values
    assert "FID ↓" in table.to_markdown() and table.value("sr256", "clip_score").value == pytest.approx(23.5)


def test_undefined_interval_is_said_not_hidden(run):
    records, _, _ = run
    flat = {"clip_score": {(r.stage, r.sample_key): 25.0 for r in records if r.stage == "sr256"}}
    table = aggregate(records, ["sr256"], [CLIP], flat, {})
    v = table.value("Colors", "clip_score")
    assert v.ci_low is None and v.ci_high is None and "undefined" in v.note
    assert "[undefined]" in table.to_markdown()


def test_bad_unit_and_multi_stage_category_table(run):
    records, _, per_image = run
    with pytest.raises(UserError, match="ci_unit"):
        aggregate(records, ["sr256"], [CLIP], per_image, {}, unit="seed")
    with pytest.raises(UserError, match="one stage"):
        aggregate(records, ["base64", "sr256"], [CLIP], per_image, {})
