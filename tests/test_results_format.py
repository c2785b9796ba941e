"""results.json version 3: typed values with one writer and one reader, and version-2 folders still read.

``tests/data/results_v2/drawbench-v2`` was written by the previous release (the commit before version 3)
scoring fake external images (:func:`drawbench.fakes.write_external_folder`) with OCR on two DrawBench
categories. This build reads it, scores the same images again, and the gate compares the two.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from drawbench.fakes import write_external_folder
from drawbench.suites import load_suite
from harness.errors import UserError
from harness.evaluation.evaluate import run_benchmark
from harness.formats.results import VERSION, Results, read_results, write_results
from harness.formats.values import MetricValue, OutputInfo
from harness.gate.regress import build_verdict

REPO = Path(__file__).resolve().parents[1]
V2 = REPO / "tests" / "data" / "results_v2" / "drawbench-v2"
SUITE = dict(categories=["Colors", "Text"], limit_per_category=2)
OPTS = {"n_boot": 200, "n_boot_sets": 50, "seed": 0, "level": 0.95}


def test_a_version_2_folder_reads_as_typed_results():
    raw = json.loads((V2 / "results.json").read_text(encoding="utf-8"))
    assert raw["version"] == 2 and "table" in raw["benchmark"]
    r = read_results(V2)
    assert r.version == VERSION == 3 and "table" not in r.benchmark
    assert (r.table.group_by, r.table.stage, r.table.ci_unit) == ("category", "external", "image")
    assert [(row.group, row.n_prompts, row.n_images) for row in r.table.rows] == [
        ("Colors", 2, 16),
        ("Text", 2, 16),
        ("overall", 4, 32),
    ]
    assert r.table.row("Text").prompts == ("drawbench-0180", "drawbench-0181")  # from samples.jsonl
    assert r.table.row("overall").prompts is None
    assert set(r.metrics["Colors"]) == set() and "n_prompts" not in r.metrics["overall"]  # counts are rows' now
    for group in ("Text", "overall"):
        for output in ("ocr_exact_match", "ocr_char_similarity"):
            assert r.metrics[group][output] == MetricValue.from_json(raw["metrics"][group][output])
    exact = r.value("overall", "ocr_exact_match")
    assert (exact.value, exact.n, exact.method) == (0.0, 16, "wilson") and exact.ci_high == pytest.approx(
        0.1936, abs=1e-4
    )
    assert r.metric_info["ocr_exact_match"] == OutputInfo.from_json(raw["metric_info"]["ocr_exact_match"])
    assert r.metric_info["ocr_exact_match"].kind == "binary" and r.metric_info["ocr_exact_match"].higher_is_better


def _rescore(tmp_path: Path) -> Path:
    """The images the version-2 run scored, scored again by this build."""
    folder = tmp_path / "images-ext"
    write_external_folder(folder, load_suite("drawbench", **SUITE))
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                "benchmark=drawbench",
                "benchmark.categories=[Colors,Text]",
                "benchmark.limit_per_category=2",
                f"images_from={folder}",
                "checkpoint=null",
                "benchmark.metrics=[ocr]",
                f"paths.runs_dir={tmp_path / 'runs'}",
                "progress=false",
                "run_id=drawbench-v3",
            ],
        )
    run_benchmark(cfg, tmp_path / "runs" / "drawbench-v3", task="eval")
    return tmp_path / "runs" / "drawbench-v3"


def test_this_build_writes_version_3_and_agrees_with_the_version_2_run(tmp_path):
    v3 = _rescore(tmp_path)
    raw = json.loads((v3 / "results.json").read_text(encoding="utf-8"))
    assert raw["version"] == 3 and "table" not in raw["benchmark"] and raw["table"]["rows"][0]["prompts"]
    assert all("n_prompts" not in vals for vals in raw["metrics"].values())
    old, new = read_results(V2), read_results(v3)
    assert new.table == old.table and new.metrics == old.metrics and new.metric_info == old.metric_info
    v2 = tmp_path / "v2"
    shutil.copytree(V2, v2)  # the gate reads samples.jsonl beside each results.json
    verdict = build_verdict(old, new, (v2, v3), {}, OPTS, {})
    assert verdict.overall == "pass" and verdict.rows
    assert all(row.improvement == 0.0 and row.verdict == "pass" for row in verdict.rows)


def test_one_writer_one_reader_round_trip(tmp_path):
    r = read_results(V2)
    write_results(tmp_path, r)
    again = read_results(tmp_path)
    assert again == r and Results.from_json(json.loads(json.dumps(r.to_json()))) == r


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=1), "results file version 1; this build reads 2 and 3"),
        (
            lambda d: d["metrics"]["overall"]["ocr_exact_match"].update(value="high"),
            "metrics.overall.ocr_exact_match.value must be a number, got 'high'",
        ),
        (lambda d: d["metric_info"]["ocr_exact_match"].pop("version"), "metric_info.ocr_exact_match lacks 'version'"),
        (lambda d: d.pop("table"), "is missing result field 'table'"),
        (lambda d: d["table"].update(group_by="prompt"), "table.group_by must be 'stage' or 'category', got 'prompt'"),
    ],
)
def test_a_damaged_file_is_one_line_naming_the_field(tmp_path, edit, message):
    write_results(tmp_path, read_results(V2))
    path = tmp_path / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UserError, match="^" + str(path).replace(".", r"\.") + ".*") as err:
        read_results(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
