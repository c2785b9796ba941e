"""``imagen-bench meta-eval``: the agreement maths against scipy and hand counts, the label files' checks, and
label sets with a known ordering that the command must recover — synthetic ratings and votes that follow the
images' brightness (a metric that measures brightness must agree, one that measures something else must not),
and world images rated by whether they are right (the exact question-graph judge must agree)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness.errors import UserError
from harness.formats.labels import read_labels
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from harness.metrics.maths.agreement import pairwise_accuracy, rank_correlation, rating_ceiling, vote_ceiling
from tests.helpers.cli import run_cli


class Brightness(Metric):
    """Mean pixel value: what the synthetic raters judge."""

    name = "test_brightness"
    version = "test/1"
    outputs = (Output("brightness", higher_is_better=True, kind="bounded", bounds=(0.0, 255.0)),)

    @staticmethod
    def measure(pixels: np.ndarray) -> float:
        return float(pixels.mean())

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        from PIL import Image

        values = {r.sample_key: self.measure(np.asarray(Image.open(p))) for r, p in zip(images.records, images.paths())}
        return Scores(per_image={self.outputs[0].name: values})


class Blueness(Brightness):
    """The blue channel alone, drawn independently of brightness: unrelated to the raters."""

    name = "test_blueness"
    outputs = (Output("blueness", higher_is_better=True, kind="bounded", bounds=(0.0, 255.0)),)

    @staticmethod
    def measure(pixels: np.ndarray) -> float:
        return float(pixels[..., 2].mean())


def test_rank_correlation_is_scipys_with_an_interval_inside_its_range():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = x + rng.normal(scale=1.0, size=60)
    for kind, ref in (("spearman", stats.spearmanr(x, y).statistic), ("kendall", stats.kendalltau(x, y).statistic)):
        a = rank_correlation(x, y, kind, n_boot=400)
        assert a.value == pytest.approx(ref, abs=1e-12) and a.n == 60
        assert -1 <= a.ci_low < a.value < a.ci_high <= 1
    assert np.isnan(rank_correlation([1, 2], [2, 1]).value)  # fewer than 3 items: undefined, not 0


def test_pairwise_accuracy_counts_ties_apart_and_the_vote_ceiling_is_one_voter_vs_the_rest():
    p = pairwise_accuracy([1.0, 2.0, -1.0, 0.0, 3.0], ["a", "b", "b", "a", "tie"])
    assert (p.agree, p.decided, p.metric_ties, p.human_ties) == (2, 3, 1, 1) and p.rate == pytest.approx(2 / 3)
    assert 0 <= p.ci_low < p.rate < p.ci_high <= 1
    # pair (x, y): votes a, a, b (one voter disagrees with the other two); the reversed pair counts the same
    c = vote_ceiling([(("x", "y"), "a"), (("x", "y"), "a"), (("y", "x"), "a")])
    # voter 1 vs {a, b}: even → skipped; voter 2 likewise; voter 3 ("b" for x, y) vs {a, a}: wrong
    assert (c.agree, c.decided) == (0, 1)
    perfect = rating_ceiling([("i", 1), ("i", 1), ("j", 3), ("j", 3), ("k", 5), ("k", 5)], n_boot=50)
    assert perfect.value == pytest.approx(1.0) and perfect.n == 6


def _brightness_labels(tmp_path: Path, kind: str, n: int = 40) -> Path:
    from PIL import Image

    rng = np.random.default_rng(3)
    (tmp_path / "imgs").mkdir()
    level = rng.uniform(20, 235, size=n)
    blue = rng.uniform(0, 255, size=n)
    rows = []
    for i in range(n):
        pixel = np.array([level[i], level[i], 0], dtype=float)
        img = np.broadcast_to(pixel, (16, 16, 3)).copy()
        img[..., 2] = blue[i]  # the blue channel is its own, random
        img[..., :2] = (3 * level[i] - blue[i]) / 2  # so the mean pixel stays `level`
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    if kind == "likert":
        for i in range(n):
            for r in range(3):
                rating = int(np.clip(np.round(1 + 4 * (level[i] - 20) / 215 + rng.normal(scale=0.5)), 1, 5))
                rows.append({"image": f"imgs/{i}.png", "prompt": f"p{i % 5}", "rating": rating, "rater": f"r{r}"})
    else:
        seen: set[frozenset] = set()
        while len(seen) < 120:  # one vote on each of 120 distinct pairs (a repeated pair would be one item)
            i, j = rng.choice(n, size=2, replace=False)
            if frozenset((i, j)) in seen:
                continue
            seen.add(frozenset((i, j)))
            k = len(seen) - 1
            right = "a" if level[i] > level[j] else "b"
            vote = right if rng.uniform() > 0.1 else {"a": "b", "b": "a"}[right]
            rows.append(
                {
                    "prompt": "p",
                    "image_a": f"imgs/{i}.png",
                    "image_b": f"imgs/{j}.png",
                    "vote": vote,
                    "rater": f"r{k % 4}",
                }
            )
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _meta_eval(capsys, tmp_path: Path, labels: Path, metrics: str, *extra: str) -> list[dict]:
    args = [f"labels={labels}", f"metrics={metrics}", f"paths.runs_dir={tmp_path / 'runs'}", "run_id=me"]
    code, out, err = run_cli(["meta-eval", *args, "progress=false", *extra], capsys)
    assert code == 0, err
    assert "written:" in out
    return json.loads((tmp_path / "runs" / "me" / "meta_eval.json").read_text())["rows"]


def _rows(rows: list[dict], statistic: str) -> dict[str, dict]:
    return {r["output"]: r for r in rows if r["statistic"] == statistic}


def test_meta_eval_recovers_the_metric_the_raters_follow_from_likert_ratings(capsys, tmp_path):
    labels = _brightness_labels(tmp_path, "likert")
    rows = _meta_eval(capsys, tmp_path, labels, "[tests.test_meta_eval:Brightness,tests.test_meta_eval:Blueness]")
    rho = _rows(rows, "spearman")
    assert rho["brightness"]["ci_low"] > 0.7 and rho["brightness"]["n"] == 40
    assert rho["blueness"]["ci_low"] < 0 < rho["blueness"]["ci_high"]  # unrelated: the interval holds 0
    assert rho["brightness"]["ci_low"] > rho["blueness"]["ci_high"]
    ceiling = rho["(one rater vs the rest)"]
    assert ceiling["n"] == 120 and 0.5 < ceiling["value"] <= 1
    assert set(_rows(rows, "kendall")) == set(rho)


def test_meta_eval_recovers_it_from_pairwise_votes(capsys, tmp_path):
    labels = _brightness_labels(tmp_path, "pairwise")
    rows = _meta_eval(capsys, tmp_path, labels, "[tests.test_meta_eval:Brightness,tests.test_meta_eval:Blueness]")
    acc = _rows(rows, "pairwise_accuracy")
    assert acc["brightness"]["value"] > 0.8 and acc["brightness"]["ci_low"] > 0.75  # votes flipped 10% of the time
    assert acc["blueness"]["ci_low"] < 0.5 < acc["blueness"]["ci_high"]
    assert acc["brightness"]["n"] == 120


def test_world_images_rated_by_whether_they_are_right_rank_the_exact_judge_first(capsys, tmp_path):
    """Built-in metrics through the same command: ratings 5 for a right world image and 1-2 for a near miss;
    the question-graph judge (exact answerer) must agree almost perfectly."""
    from benchmarks.world.render import render_scene
    from benchmarks.world.scenes import Spec, scene_for_spec
    from benchmarks.world.suite import read_suite
    from tests.test_question_graph import _near_misses

    rng = np.random.default_rng(0)
    rows = []
    (tmp_path / "imgs").mkdir()
    for row in [r for r in read_suite() if r["category"] in ("colors", "counting")][:6]:
        variants = _near_misses(scene_for_spec(Spec.from_json(row["spec"]), rng), rng)[:4]
        for k, scene in enumerate(variants):
            name = f"imgs/{row['id']}-{k}.png"
            render_scene(scene, 128).save(tmp_path / name)
            rows.append(
                {"image": name, "prompt": row["prompt"], "prompt_id": row["id"], "rating": 5 if k == 0 else 1 + k % 2}
            )
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _meta_eval(capsys, tmp_path, tmp_path / "labels.jsonl", "[question_graph]", "benchmark=world")
    rho = _rows(out, "spearman")
    assert rho["qg_all"]["value"] > 0.6 and rho["qg_all"]["ci_low"] > 0.3 and rho["qg_all"]["n"] == 24


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"image": "x.png", "prompt": "p", "rating": 3}], "image 'x.png' not found"),
        ([{"image": "a.png", "prompt": "p", "rating": "high"}], "rating must be a number"),
        ([{"prompt": "p", "image_a": "a.png", "image_b": "a.png", "vote": "a"}], "share the image 'a.png'"),
        ([{"prompt": "p", "image_a": ["a.png", "a.png"], "image_b": "b.png", "vote": "a"}], "names an image twice"),
        ([{"prompt": "p", "image_a": "a.png", "image_b": "b.png", "vote": "left"}], "vote must be one of"),
        (
            [
                {"image": "a.png", "prompt": "p", "rating": 3},
                {"prompt": "p", "image_a": "a.png", "image_b": "b.png", "vote": "a"},
            ],
            "mixes",
        ),
    ],
)
def test_a_bad_label_file_is_one_line_naming_the_row(tmp_path, rows, message):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=message) as err:
        read_labels(path)
    assert f"{path}:" in str(err.value)


def test_meta_eval_without_labels_is_one_line_and_exit_2(capsys, tmp_path):
    code, _, err = run_cli(["meta-eval", f"paths.runs_dir={tmp_path}", "run_id=x"], capsys)
    assert code == 2 and "no label file; usage: imagen-bench meta-eval labels=" in err
    assert len(err.strip().splitlines()) == 1
