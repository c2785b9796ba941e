"""The question-graph judge (TIFA/DSG style): the stored format, DSG's dependency rule, the world suite's
questions written from its specs, and — answered by the exact parser — the same verdict as the world judge,
image by image, on ground truth and on near misses (a wrong colour, size, count, place, word or an extra sign)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from benchmarks.world.judge import check
from benchmarks.world.parser import parse_scene
from benchmarks.world.questions import QUESTIONS_FILE, WorldAnswerer, answer_check, build_questions
from benchmarks.world.render import render_scene
from benchmarks.world.scenes import COLORS, SHAPES, WORDS, Scene, Sign, Spec, scene_for_spec
from benchmarks.world.suite import read_suite
from drawbench.question_graph import credited, image_scores
from harness.errors import UserError
from harness.formats.questions import Question, QuestionSet, effective_answers, read_questions, write_questions

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")


def _q(qid: str, *parents: str, type_: str = "object") -> Question:
    return Question(qid, type_, f"question {qid}?", parents)  # type: ignore[arg-type]


def test_dependency_rule_withholds_credit_below_a_no():
    qs = (_q("a"), _q("b", "a"), _q("c", "b"), _q("d"))
    assert effective_answers(qs, [True, True, True, False]) == [True, True, True, False]
    # "is the triangle green?" answered yes is not credited when there is no triangle, nor its child
    assert effective_answers(qs, [False, True, True, True]) == [False, False, False, True]
    qset = QuestionSet("p", "prompt", (*qs[:3], _q("e", "a", type_="relation")))
    ok = credited(qset, [0.9, 0.2, 0.8, 0.5], threshold=0.5)  # P("yes") >= threshold is a yes
    assert ok == [True, False, False, True]
    scores = image_scores(qset, ok)
    assert scores["qg_score"] == 0.5 and scores["qg_all"] == 0.0
    assert scores["qg_object"] == 1 / 3 and scores["qg_relation"] == 1.0 and "qg_count" not in scores
    assert image_scores(qset, [True] * 4)["qg_all"] == 1.0


def test_a_question_set_lists_parents_first_and_unique_ids():
    with pytest.raises(UserError, match="names parents \\['b'\\] not listed before it"):
        QuestionSet("p", "x", (_q("a", "b"), _q("b")))
    with pytest.raises(UserError, match="appears twice"):
        QuestionSet("p", "x", (_q("a"), _q("a")))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"prompt_id": "p", "prompt": "x", "questions": {}}', "'questions' must be a list"),
        (
            '{"prompt_id": "p", "prompt": "x", "questions": [{"id": "q1", "type": "colour", "text": "Red?"}]}',
            "has type 'colour'",
        ),
        (
            '{"prompt_id": "p", "prompt": "x", "questions": [{"id": "q1", "type": "object", "text": ""}]}',
            "'text' must be a non-empty string",
        ),
    ],
)
def test_a_bad_question_file_is_one_line_naming_the_line(tmp_path, line, message):
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UserError, match=message) as err:
        read_questions(path)
    assert f"{path}:1" in str(err.value) and "\n" not in str(err.value)


def test_write_then_read_round_trips(tmp_path):
    sets = read_questions(QUESTIONS_FILE)
    write_questions(tmp_path / "q.jsonl", sets.values())
    assert read_questions(tmp_path / "q.jsonl") == sets
    assert (tmp_path / "q.jsonl").read_bytes() == QUESTIONS_FILE.read_bytes()


def test_the_shipped_world_questions_are_rebuilt_byte_for_byte_from_the_suite():
    assert build_questions(read_suite()) == QUESTIONS_FILE.read_text(encoding="utf-8")
    sets = read_questions(QUESTIONS_FILE)
    assert len(sets) == 56
    positional = sets["world-positional-01"]
    assert [q.type for q in positional.questions].count("relation") == 1
    relation = next(q for q in positional.questions if q.type == "relation")
    assert len(relation.parents) == 2  # both objects are presupposed
    text = next(s for s in sets.values() if s.prompt.startswith("a sign"))
    assert [q.type for q in text.questions] == ["object", "text", "count"]


def _near_misses(scene: Scene, rng: np.random.Generator) -> list[Scene]:
    """The scene, and copies each wrong in one way a model gets wrong."""
    rep = dataclasses.replace
    out = [scene]
    objs = list(scene.objects)
    for i, o in enumerate(objs):
        recolour = rep(o, color=next(c for c in COLORS if c != o.color))
        reshape = rep(o, shape=next(s for s in SHAPES if s != o.shape))
        resize = rep(o, size="small" if o.size == "large" else "large")
        for changed in (recolour, reshape, resize):
            out.append(rep(scene, objects=tuple(changed if j == i else p for j, p in enumerate(objs))))
        out.append(rep(scene, objects=tuple(p for j, p in enumerate(objs) if j != i)))  # one missing
    if objs:
        extra = rep(objs[0], center=(0.9 - objs[0].center[0] * 0.1, 0.1))
        out.append(rep(scene, objects=(*objs, extra)))  # one too many
    if len(objs) >= 2:  # swapped places: the relation flips
        a, b = objs[0], objs[1]
        out.append(rep(scene, objects=(rep(a, center=b.center), rep(b, center=a.center), *objs[2:])))
    if scene.sign is None:
        out.append(rep(scene, sign=Sign(str(rng.choice(WORDS)), (0.5, 0.83))))
    else:
        out.append(rep(scene, sign=Sign(next(w for w in WORDS if w != scene.sign.text), scene.sign.center)))
        out.append(rep(scene, sign=None))
    return out


def test_all_questions_yes_is_the_world_judges_verdict_on_every_scene_and_near_miss():
    """Every suite prompt × 3 ground-truth scenes × their near misses (plus every other prompt's scenes):
    all questions answered exactly "yes" ⇔ the judge's ``correct``, for each (scene, prompt) pair."""
    rows = read_suite()
    sets = read_questions(QUESTIONS_FILE)
    specs = {r["id"]: Spec.from_json(r["spec"]) for r in rows}
    rng = np.random.default_rng(0)
    scenes = [s for r in rows for k in range(3) for s in _near_misses(scene_for_spec(specs[r["id"]], rng), rng)]
    agree, correct, pairs = 0, 0, 0
    for scene in scenes:
        parse = parse_scene(scene)
        for pid, spec in specs.items():
            qs = sets[pid]
            yes = [answer_check(parse, dict(q.check)) for q in qs.questions]
            all_yes = all(effective_answers(qs.questions, yes))
            verdict = check(parse, spec)["correct"]
            agree += all_yes == verdict
            correct += verdict
            pairs += 1
    assert pairs == 98_112 and agree == pairs
    assert correct >= 56 * 3 and pairs - correct > 50_000  # both answers occur, often (not vacuous)


def test_eval_with_the_exact_answerer_equals_world_accuracy_per_category(tmp_path):
    """``eval benchmark=world benchmark.metrics=[world_accuracy,question_graph]`` on rendered images (one prompt
    per category, 8 seeds, every other image a near miss): per category, ``qg_all`` is ``world_accuracy``
    (value and n), through the real image parser and RapidOCR."""
    from harness.evaluation.evaluate import run_benchmark
    from harness.formats.results import read_results

    rows = read_suite()
    picked = [next(r for r in rows if r["category"] == c) for c in dict.fromkeys(r["category"] for r in rows)]
    rng = np.random.default_rng(1)
    images = tmp_path / "images"
    for row in picked:
        (images / row["id"]).mkdir(parents=True)
        for seed in range(8):
            variants = _near_misses(scene_for_spec(Spec.from_json(row["spec"]), rng), rng)
            scene = variants[0] if seed % 2 == 0 else variants[1 + seed // 2 % (len(variants) - 1)]
            render_scene(scene, 128).save(images / row["id"] / f"{seed}.png")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                "benchmark=world",
                f"benchmark.prompt_ids=[{','.join(r['id'] for r in picked)}]",
                "benchmark.metrics=[world_accuracy,question_graph]",
                f"images_from={images}",
                "checkpoint=null",
                f"paths.runs_dir={tmp_path / 'runs'}",
                "progress=false",
            ],
        )
    run_benchmark(cfg, tmp_path / "runs" / "qg", task="eval")
    saved = read_results(tmp_path / "runs" / "qg")
    between = 0
    for row in picked:
        cat = row["category"]
        acc, qg = saved.metrics[cat]["world_accuracy"], saved.metrics[cat]["qg_all"]
        assert (qg.value, qg.n) == (acc.value, acc.n) == (qg.value, 8), cat
        assert saved.metrics[cat]["qg_score"].value >= qg.value
        between += 0 < acc.value < 1
    assert between >= 5  # near misses fail and the rest pass: the equality is not all-ones
    assert saved.metric_info["qg_all"].higher_is_better and saved.metric_info["qg_score"].kind == "bounded"
    sample = json.loads((tmp_path / "runs" / "qg" / "samples.jsonl").read_text().splitlines()[1])
    assert "qg_failed" in json.dumps(sample)


def test_the_exact_answerer_needs_checks():
    qs = QuestionSet("p", "x", (_q("a"),))
    with pytest.raises(ValueError, match="has no 'check'"):
        WorldAnswerer(read_text=lambda *a: []).answer(render_scene(Scene(), 32), qs)
