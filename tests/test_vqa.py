"""VQAScore and the question graphs' VQA answerer on tiny random vision-language models built from configs (a
LLaVA-style chat model, a Qwen2-VL and a BLIP-2 with a T5 encoder-decoder): the real transformers loading and scoring code,
no download. What is checked: the family is told from the config, P("Yes") is a probability that does not
depend on what else is in the batch (padding), a missing model is one line before any work, and ``eval`` runs
``vqascore`` and ``question_graph`` answered by a VLM end to end with the model's hash recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from harness.errors import MissingWeightsError, UserError
from harness.metrics.extractors.vqa import VQASCORE_TEMPLATE, load_vqa
from tests.helpers.tiny_vlm import build_tiny_blip2_t5, build_tiny_llava, build_tiny_qwen2_vl

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")


@pytest.fixture(scope="module")
def vlms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vlm")
    return {
        "chat": build_tiny_llava(root / "llava"),
        "seq2seq": build_tiny_blip2_t5(root / "blip2"),
        "qwen2_vl": build_tiny_qwen2_vl(root / "qwen2_vl"),
    }


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize(("model", "family"), [("chat", "chat"), ("seq2seq", "seq2seq"), ("qwen2_vl", "chat")])
def test_p_yes_is_a_probability_independent_of_the_batch(vlms, model, family):
    vqa = load_vqa(str(vlms[model]), "vqa.model")
    assert vqa.identity["family"] == family and len(vqa.identity["weights_sha256"]) == 64
    questions = ["Is there a red circle ?", "Does the sign say", VQASCORE_TEMPLATE.format(prompt="two blue squares")]
    yes, no = vqa.yes_no(_images(), questions)
    assert yes.shape == (3,) and np.all((yes > 0) & (yes < 1)) and np.all(yes + no <= 1 + 1e-6)
    alone = [vqa.yes_no([im], [q])[0][0] for im, q in zip(_images(), questions)]
    # questions of different lengths are padded in a batch: the answer is read at each row's own last token
    np.testing.assert_allclose(yes, alone, rtol=1e-4, atol=1e-7)
    assert len(set(np.round(yes, 6))) > 1  # the images and questions reach the answer (not a constant)


def test_a_missing_model_is_one_line_naming_what_to_fetch(tmp_path):
    with pytest.raises(MissingWeightsError, match="hf download org/absent-vlm") as err:
        load_vqa("org/absent-vlm", "vqa.model")
    assert "vqa.model" in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "llava"}')
    with pytest.raises(UserError, match="no weights") as err:
        load_vqa(str(tmp_path / "empty"), "vqa.model")
    assert "\n" not in str(err.value)


def _world_eval(tmp_path: Path, *overrides: str):
    from benchmarks.world.suite import ground_truth_image, read_suite

    rows = [r for r in read_suite() if r["id"] in ("world-single-01", "world-text-01")]
    gt = tmp_path / "gt"
    for row in rows:
        (gt / row["id"]).mkdir(parents=True)
        for seed in range(2):
            ground_truth_image(row, seed).save(gt / row["id"] / f"{seed}.png")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                "benchmark=world",
                f"benchmark.prompt_ids=[{','.join(r['id'] for r in rows)}]",
                "benchmark.images_per_prompt=2",
                "benchmark.seeds=[0,1]",
                f"images_from={gt}",
                "checkpoint=null",
                f"paths.runs_dir={tmp_path / 'runs'}",
                "progress=false",
                *overrides,
            ],
        )


def test_eval_runs_vqascore_and_question_graphs_answered_by_a_vlm(vlms, tmp_path):
    from harness.evaluation.evaluate import run_benchmark
    from harness.formats.results import read_results

    cfg = _world_eval(
        tmp_path,
        "benchmark.metrics=[vqascore,question_graph]",
        f"vqa.model={vlms['chat']}",
        "question_graph.answerer=vqa",
    )
    run_benchmark(cfg, tmp_path / "runs" / "vlm", task="eval")
    saved = read_results(tmp_path / "runs" / "vlm")
    for cat in ("single", "text"):
        v = saved.metrics[cat]["vqascore"]
        assert v.n == 2 and 0 < v.value < 1 and v.ci_low <= v.value <= v.ci_high
        assert 0 <= saved.metrics[cat]["qg_score"].value <= 1 and saved.metrics[cat]["qg_all"].n == 2
    assert saved.metric_info["vqascore"].higher_is_better
    raw = (tmp_path / "runs" / "vlm" / "results.json").read_text()
    assert VQASCORE_TEMPLATE.replace('"', '\\"') in raw  # the template is recorded with the model
    assert read_weights_hash(raw) == load_vqa(str(vlms["chat"]), "vqa.model").identity["weights_sha256"]


def read_weights_hash(raw: str) -> str:
    import json

    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("family") == "chat" and "weights_sha256" in node:
                found.append(node["weights_sha256"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(raw))
    assert found, "no VQA model identity in results.json"
    return found[0]


def test_vqascore_without_a_model_stops_before_any_image_is_read(tmp_path):
    from harness.evaluation.evaluate import run_benchmark

    cfg = _world_eval(tmp_path, "benchmark.metrics=[vqascore]")
    with pytest.raises(UserError, match="no VQA model: pass vqa.model="):
        run_benchmark(cfg, tmp_path / "runs" / "none", task="eval")
    assert not (tmp_path / "runs" / "none" / "results.json").exists()
