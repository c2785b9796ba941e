"""The world prompt suite: reproducible, pinned, loadable as ``benchmark=world``, and judged end to end."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.world.judge import judge_image
from benchmarks.world.scenes import Spec
from benchmarks.world.suite import (
    SUITE_CATEGORIES,
    SUITE_FILE,
    build_suite,
    ground_truth_image,
    read_suite,
    suite_bytes,
)
from drawbench.ocr_judge import extract_quoted_text
from drawbench.suites import load_suite

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")


def test_the_shipped_suite_is_build_suite_byte_for_byte_and_pinned_in_its_config():
    data = SUITE_FILE.read_bytes()
    assert suite_bytes(build_suite()) == data
    cfg = OmegaConf.load(REPO / "conf" / "benchmark" / "world.yaml")
    assert cfg.sha256 == hashlib.sha256(data).hexdigest()
    assert cfg.images_per_prompt == 8 and list(cfg.seeds) == list(range(8))


def test_suite_loads_with_specs_balanced_categories_and_no_repeats():
    suite = load_suite("world")
    assert len(suite) == 56 and suite.counts == {c: 8 for c in SUITE_CATEGORIES}
    assert len({i.prompt for i in suite.items}) == 56
    assert suite.items[0].prompt_id == "world-single-01"
    specs = {i.prompt_id: Spec.from_json(i.extra["spec"]) for i in suite.items}
    by_cat = {c: [specs[i.prompt_id] for i in suite.items if i.category == c] for c in SUITE_CATEGORIES}
    assert sorted(len(s.objects) for s in by_cat["counting"]) == [2, 2, 2, 3, 3, 3, 4, 4]
    assert Counter(s.relation.type for s in by_cat["positional"]) == {
        "left_of": 2,
        "right_of": 2,
        "above": 2,
        "below": 2,
    }
    assert len({s.text for s in by_cat["text"]}) == 8
    for item in suite.items:
        if item.category == "text":
            assert extract_quoted_text(item.prompt) == specs[item.prompt_id].text  # the OCR metric reads it too
    words = {w for i in suite.items for w in i.prompt.split()}
    assert {"vermilion", "orbs"} & words and {"cirlce", "sqaure"} & words


@pytest.mark.parametrize("category", SUITE_CATEGORIES)
def test_ground_truth_images_of_every_prompt_are_judged_correct(category):
    rows = [r for r in read_suite() if r["category"] == category]
    for row in rows:
        seed = int(row["id"][-1]) % 8  # one seed per prompt, different across prompts
        assert judge_image(ground_truth_image(row, seed), row["spec"])["correct"], row["prompt"]
    # and a prompt's image fails another prompt of the category (the suite's prompts are distinct)
    assert not judge_image(ground_truth_image(rows[0], 0), rows[1]["spec"])["correct"]


def test_world_benchmark_runs_end_to_end_on_ground_truth_images(tmp_path):
    """``eval benchmark=world images_from=<world>/suite_gt``: the judge is a registered metric, per category."""
    from harness.evaluation.evaluate import run_benchmark
    from harness.formats.results import read_results

    gt = tmp_path / "gt"
    rows = read_suite()
    picked = [next(r for r in rows if r["category"] == c) for c in ("counting", "text")]
    for row in picked:
        for seed in range(8):
            (gt / row["id"]).mkdir(parents=True, exist_ok=True)
            ground_truth_image(row, seed).save(gt / row["id"] / f"{seed}.png")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                "benchmark=world",
                f"benchmark.prompt_ids=[{','.join(r['id'] for r in picked)}]",
                f"images_from={gt}",
                "checkpoint=null",
                "clip.enabled=false",
                "ocr.enabled=false",
                f"paths.runs_dir={tmp_path / 'runs'}",
                "progress=false",
            ],
        )
    results = run_benchmark(cfg, tmp_path / "runs" / "world-gt", task="eval")
    saved = read_results(tmp_path / "runs" / "world-gt")
    for cat in ("counting", "text"):
        acc = saved.metrics[cat]["world_accuracy"]
        assert acc.value == 1.0 and acc.n == 8 and acc.ci_low < 1.0  # Wilson interval, n images
    assert saved.metrics["text"]["world_text"].value == 1.0
    assert "world_relation" not in saved.metrics["counting"]
    assert saved.metric_info["world_accuracy"].higher_is_better is True
    assert results is not None
