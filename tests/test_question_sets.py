"""The stored question graphs of DrawBench, GenEval and T2I-CompBench: rebuilt by rule byte for byte (GenEval,
T2I-CompBench), one set per prompt where the suite's structure allows it, each question's kind where the prompt
says it should be, and every file accepted by the ``question_graph`` metric for its benchmark (prompt texts
equal the suite's, so the metric would run on it)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from drawbench.question_sets import BUILT, QUESTIONS_DIR, build
from drawbench.suites import load_suite
from harness.formats.questions import dumps_questions, read_questions

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.mark.parametrize("suite", sorted(BUILT))
def test_the_rule_built_question_files_are_rebuilt_byte_for_byte(suite):
    assert (QUESTIONS_DIR / BUILT[suite][0]).read_text(encoding="utf-8") == dumps_questions(build(suite))


def test_geneval_questions_follow_its_metadata_exactly():
    items = {i.prompt_id: i for i in load_suite("geneval")}
    sets = read_questions(QUESTIONS_DIR / "geneval.jsonl")
    assert set(sets) == set(items)  # every prompt
    kinds = Counter(q.type for s in sets.values() for q in s.questions)
    specs = [o for i in items.values() for o in i.extra["include"]]
    assert kinds["object"] == len(specs) == 852
    assert kinds["count"] == sum(o["count"] > 1 for o in specs)
    assert kinds["attribute"] == sum("color" in o for o in specs) == 294
    assert kinds["relation"] == sum("position" in o for o in specs) == 100
    two = sets[next(p for p, i in items.items() if i.prompt == "a photo of two clocks")]
    assert [q.text for q in two.questions] == ["Are there clocks?", "Are there exactly two clocks?"]
    assert two.questions[1].parents == ("q1",) and two.questions[1].check == {"object": "clock", "count": 2}


def test_t2i_compbench_covers_its_templated_sets_and_leaves_free_form_prompts_unscored():
    sets = read_questions(QUESTIONS_DIR / "t2i_compbench.jsonl")
    per = Counter(p.rsplit("-", 1)[0].removeprefix("t2i_compbench-") for p in sets)
    assert per == {"3d_spatial": 300, "spatial": 300, "color": 240, "numeracy": 240, "texture": 240, "shape": 216}
    items = {i.prompt_id: i for i in load_suite("t2i_compbench")}
    for pid, qs in sets.items():
        expected = {"numeracy": "count", "spatial": "relation", "3d_spatial": "relation"}.get(items[pid].category)
        kinds = {q.type for q in qs.questions}
        assert kinds == {"object", expected or "attribute"}, (items[pid].prompt, kinds)
    relation = sets["t2i_compbench-3d_spatial-0001"].questions[-1]
    assert relation.text == "Is the dog in front of the desk?" and relation.parents == ("q1", "q2")


def test_drawbench_questions_cover_every_prompt_and_ask_what_its_category_tests():
    items = {i.prompt_id: i for i in load_suite("drawbench")}
    sets = read_questions(QUESTIONS_DIR / "drawbench.jsonl")
    assert set(sets) == set(items)
    for pid, qs in sets.items():
        kinds = {q.type for q in qs.questions}
        category = items[pid].category
        want = {"Colors": "attribute", "Counting": "count", "Positional": "relation", "Text": "text"}.get(category)
        assert want is None or want in kinds, (items[pid].prompt, kinds)
        if category == "Text":  # the text question quotes what the prompt asks to be written
            quoted = re.findall(r"'([^']+)'|\"([^\"]+)\"", items[pid].prompt)
            asked = [q.text for q in qs.questions if q.type == "text"]
            assert any(any(w in t for w in filter(None, pair)) for pair in quoted for t in asked), items[pid].prompt


@pytest.mark.parametrize("suite", ["drawbench", "geneval", "t2i_compbench"])
def test_each_suites_question_file_is_accepted_by_the_question_graph_metric(suite, tmp_path):
    from drawbench.question_graph import QuestionGraph
    from harness.metrics.base import MetricEnv

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("eval", overrides=[f"benchmark={suite}", f"paths.runs_dir={tmp_path}", "checkpoint=null"])
    metric = QuestionGraph.from_config(MetricEnv(cfg, device="cpu", cache_dir=str(tmp_path), progress=False))
    assert metric.identity()["questions"] == Path(cfg.benchmark.questions).name
    assert json.dumps(metric.identity())  # recorded in results.json as is
