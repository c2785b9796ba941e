"""Our own study's votes as meta-eval's human labels: ``study export-labels`` writes each rating as a vote between
the item's two image sets (what the rater saw), and ``meta-eval`` reads them with one pair per item (the majority
of its raters), so a metric that measures what the raters judged agrees and one that measures its opposite does not.

The synthetic study shows a sharp set (sys1) against a blurred copy of the same drawings (sys2); simulated raters
prefer sys1 on every item (their scores say so), so sharpness must agree on all 6 items and blur on none."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.formats.labels import read_labels
from harness.metrics.base import ImageSet, Metric, MetricEnv, Output, Scores
from raters_ui.simulate import SimulationSpec, simulate_raters
from raters_ui.synthetic import make_study
from tests.helpers.cli import run_cli
from tests.test_raters_simulate import _write_scores


class Sharpness(Metric):
    """Mean absolute difference of neighbouring pixels: high for the sharp set, low for its blurred copy."""

    name = "test_sharpness"
    version = "test/1"
    outputs = (Output("sharpness", higher_is_better=True, kind="continuous"),)

    @staticmethod
    def measure(pixels: np.ndarray) -> float:
        g = pixels.astype(float).mean(axis=2)
        return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())

    def compute(self, images: ImageSet, env: MetricEnv) -> Scores:
        from PIL import Image

        values = {r.sample_key: self.measure(np.asarray(Image.open(p))) for r, p in zip(images.records, images.paths())}
        return Scores(per_image={self.outputs[0].name: values})


class Blur(Sharpness):
    """The opposite claim: blurrier is better."""

    name = "test_blur"
    outputs = (Output("blur", higher_is_better=True, kind="continuous"),)

    @staticmethod
    def measure(pixels: np.ndarray) -> float:
        return -Sharpness.measure(pixels)


@pytest.fixture
def rated_study(tmp_path):
    db, _ = make_study(tmp_path, n_prompts=6, raters=1, ratings_per_item=3)  # the one real rater never rates
    _write_scores(db, high="sys1")
    simulate_raters(db, "demo", SimulationSpec(raters=3, temperature=0.01))
    return tmp_path / "study.db"


def test_export_labels_writes_each_rating_as_a_vote_between_the_two_sets_the_rater_saw(capsys, tmp_path, rated_study):
    out = tmp_path / "labels" / "alignment.jsonl"
    code, stdout, err = run_cli(["study", "export-labels", "demo", f"db={rated_study}", f"out={out}"], capsys)
    assert code == 0, err
    assert f"wrote {out}: 18 votes on 6 items" in stdout and "imagen-bench meta-eval labels=" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["question"] for r in rows} == {"alignment"} and len({r["rater"] for r in rows}) == 3
    for r in rows:  # the vote names the slot of the preferred system, wherever the screen showed it
        assert r["vote"] == ("a" if r["system_a"] == "sys1" else "b")
        assert not r["image_a"][0].startswith("/")  # relative to the label file: the folder can move
    labels = read_labels(out)
    assert labels.kind == "pairwise" and len(labels.votes) == 18 and len(labels.images) == 6 * 16
    assert {len(v.image_a) for v in labels.votes} == {8}


def _meta_eval(capsys, tmp_path, study) -> tuple[dict, str]:
    out = tmp_path / "alignment.jsonl"
    assert run_cli(["study", "export-labels", "demo", f"db={study}", f"out={out}"], capsys)[0] == 0
    metrics = "[tests.test_study_labels:Sharpness,tests.test_study_labels:Blur]"
    args = [f"labels={out}", f"metrics={metrics}", f"paths.runs_dir={tmp_path / 'runs'}", "run_id=me", "progress=false"]
    code, stdout, err = run_cli(["meta-eval", *args], capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "runs" / "me" / "meta_eval.json").read_text())["rows"]
    return {r["output"]: r for r in rows}, stdout


def test_meta_eval_on_the_study_counts_one_pair_per_item_and_recovers_what_raters_judged(capsys, tmp_path, rated_study):
    rows, stdout = _meta_eval(capsys, tmp_path, rated_study)
    assert (rows["sharpness"]["value"], rows["sharpness"]["n"]) == (1.0, 6)  # 6 items, not 18 correlated votes
    assert (rows["blur"]["value"], rows["blur"]["n"]) == (0.0, 6)
    assert rows["sharpness"]["ci_low"] > 0.5 and "pairs, majority of 18 votes" in rows["sharpness"]["method"]
    ceiling = rows["(one rater vs the rest)"]
    assert (ceiling["value"], ceiling["n"]) == (1.0, 18)  # the raters agree with each other every time
    assert "sharpness" in stdout and "pairwise_accuracy" in stdout


def test_the_report_shows_the_agreement_as_a_figure_and_a_table_with_its_source(capsys, tmp_path, rated_study):
    from reports.build import ReportOptions
    from reports.command import make_report
    from tests.helpers.report_runs import write_drawbench_run

    _meta_eval(capsys, tmp_path, rated_study)
    run = write_drawbench_run(tmp_path / "run", "r1", ckpt=1, guidance=3.0)
    opts = ReportOptions(meta_eval=str(tmp_path / "runs" / "me"), grid_prompts=0)
    written = make_report([str(run)], tmp_path / "report", opts)
    md = written.markdown.read_text(encoding="utf-8")
    section = md[md.index("Which metric agrees with people (meta-eval)") :]
    assert "plots/meta-eval.png" in section and (tmp_path / "report" / "plots" / "meta-eval.png").is_file()
    assert "| sharpness | pairwise_accuracy | 1.000 |" in section.replace("`", "")
    assert "meta-eval: labels" in md[md.index("## Sources") :]


@pytest.mark.parametrize(
    ("option", "message"),
    [("question=beauty", "question must be one of fidelity, alignment"), ("out=x.csv", "must be a .jsonl file")],
)
def test_bad_export_options_are_one_line_and_exit_2(capsys, tmp_path, rated_study, option, message):
    out = [] if option.startswith("out=") else [f"out={tmp_path / 'l.jsonl'}"]
    code, _, err = run_cli(["study", "export-labels", "demo", f"db={rated_study}", *out, option], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
