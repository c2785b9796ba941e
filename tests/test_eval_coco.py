"""``imagen-bench eval benchmark=coco_fid30k`` on a COCO-style mini dataset made here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.formats.results import load_results, read_results, read_samples
from tests.helpers.cli import run_cli
from tests.helpers.fixtures import mini_coco

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coco_and_clip(tmp_path_factory, tiny_clip):
    return mini_coco(tmp_path_factory.mktemp("coco") / "coco", n_images=24), tiny_clip


def eval_args(coco, clip, *extra, flags=()) -> list[str]:
    return [
        "eval",
        *flags,
        "model=imagen_micro",
        "checkpoint=random",
        f"coco.root={coco}",
        "benchmark.num_prompts=12",
        f"clip.model={clip}",
        "clip.pretrained=",
        "sampler=ddim",
        "sampler.steps=3",
        "fid.kid_subset_size=10",
        "progress=false",
        *extra,
    ]


def run_eval(tmp_path, coco, clip, *extra, check=True, flags=()):
    env = dict(os.environ, IMAGEN_BENCH_RUNS=str(tmp_path / "runs"), IMAGEN_BENCH_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "harness.cli", *eval_args(coco, clip, *extra, flags=flags)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_coco_eval_writes_results_with_provenance_and_reuses_caches(tmp_path, coco_and_clip):
    coco, clip = coco_and_clip
    run_eval(tmp_path, coco, clip, "run_id=first")
    r = read_results(tmp_path / "runs" / "first")
    for stage in ("base16", "sr32"):  # FID, KID and CLIP at every stage of the cascade
        m = r.metrics[stage]
        assert m["fid"].value > 0 and m["fid"].n == 12 and m["fid"].extra["n_reference"] == 24
        assert m["kid"].value is not None and m["clip_score"].n == 12
        assert m["clip_score"].ci_low <= m["clip_score"].value <= m["clip_score"].ci_high
    assert r.benchmark["caption_source"] == "random-draw" and r.benchmark["caption_seed"] == 0
    assert r.benchmark["stop_at"] == "sr32" and r.benchmark["reference"]["count"] == 24
    assert r.extractors["fid"]["sha256"] and r.extractors["fid"]["mode"] == "clean"
    assert r.extractors["clip"]["weights_sha256"] and r.model["checkpoint_sha256"] == {
        "base16": "random",
        "sr32": "random",
    }
    assert r.environment["packages"]["torch"] and "git" in r.environment and r.prompts["count"] == 12
    assert r.config["benchmark"]["num_prompts"] == 12 and r.timings["total"] > 0
    assert r.caches["reference_stats_hit"] is False and r.caches["text_embeddings"] == {"hits": 0, "misses": 12}
    samples = read_samples(tmp_path / "runs" / "first")
    assert len(samples) == 24 and all("clip_score" in s for s in samples)
    run_eval(tmp_path, coco, clip, "run_id=second")
    second = read_results(tmp_path / "runs" / "second")
    assert second.caches["reference_stats_hit"] is True  # reference statistics read back, not recomputed
    assert second.caches["text_embeddings"] == {"hits": 12, "misses": 0}  # nothing re-encoded
    assert second.metrics["sr32"]["fid"].value == pytest.approx(r.metrics["sr32"]["fid"].value)
    frame = load_results(tmp_path / "runs")
    assert set(frame.run_id) == {"first", "second"} and {"fid", "kid", "clip_score"} <= set(frame.metric)


def test_shipped_caption_list_is_used_and_labelled_without_annotations(tmp_path, coco_and_clip):
    coco, clip = coco_and_clip
    images_only = tmp_path / "coco_images_only"
    (images_only / "val2014").mkdir(parents=True)
    for f in (coco / "val2014").iterdir():
        (images_only / "val2014" / f.name).write_bytes(f.read_bytes())
    run_eval(
        tmp_path,
        images_only,
        clip,
        "run_id=shipped",
        "benchmark.num_prompts=10",
        "stop_at=base16",
        "benchmark.stop_at=base16",
    )
    r = read_results(tmp_path / "runs" / "shipped")
    assert r.benchmark["caption_source"] == "shipped-fixed-30k" and "not the paper's random draw" in r.benchmark["note"]
    first = json.loads((tmp_path / "runs" / "shipped" / "samples.jsonl").read_text().splitlines()[0])
    assert first["prompt"] == "A bicycle replica with a clock as the front wheel."
    assert list(r.metrics) == ["base16"]


@pytest.mark.parametrize("case", ["missing_coco", "missing_checkpoint", "corrupt_reference", "bad_annotations"])
def test_bad_input_is_one_line_exit_2_and_no_results(tmp_path, coco_and_clip, case, capsys, isolated_dirs):
    coco, clip = coco_and_clip
    extra, root = [f"run_id={case}"], coco
    if case == "missing_coco":
        root = tmp_path / "nowhere"
    elif case == "missing_checkpoint":
        extra.append(f"checkpoint={tmp_path / 'no.safetensors'}")
    elif case == "corrupt_reference":
        root = tmp_path / "corrupt"
        (root / "val2014").mkdir(parents=True)
        for i, f in enumerate(sorted((coco / "val2014").iterdir())):
            data = f.read_bytes()
            (root / "val2014" / f.name).write_bytes(data[: len(data) // 3] if i == 5 else data)
    else:
        root = tmp_path / "badann"
        (root / "annotations").mkdir(parents=True)
        (root / "val2014").mkdir()
        (root / "annotations" / "captions_val2014.json").write_text('{"images": []}')
    if case == "missing_coco":  # one case as its own process: the exit code and the stderr a user sees
        out = run_eval(tmp_path, root, clip, *extra, check=False)
        code, err, runs = out.returncode, out.stderr, tmp_path / "runs"
    else:  # the rest through the same entry point in this process (no second torch import, ~4 s each)
        code, _, err = run_cli(eval_args(root, clip, *extra), capsys)
        runs = isolated_dirs["runs"]
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("imagen-bench eval: error:")]
    assert code == 2 and len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    assert not (runs / case / "results.json").exists()
    expected = {
        "missing_coco": "COCO folder not found",
        "missing_checkpoint": "checkpoint not found",
        "corrupt_reference": "COCO_val2014_",
        "bad_annotations": "not a COCO captions file",
    }[case]
    assert expected in lines[0]


@pytest.mark.slow
def test_guidance_sweep_is_a_multirun_with_one_result_per_point(tmp_path, coco_and_clip, micro_cascade):
    coco, clip = coco_and_clip
    cascade = micro_cascade
    out = run_eval(
        tmp_path,
        coco,
        clip,
        "guidance.base=1,4",
        "run_id=sweep",
        "benchmark.num_prompts=10",
        f"checkpoint={cascade}",
        flags=["-m"],
    )
    assert sorted(p.name for p in (tmp_path / "runs" / "sweep").iterdir() if p.is_dir()) == [
        "guidance.base=1",
        "guidance.base=4",
    ]
    summary = (tmp_path / "runs" / "sweep" / "sweep_summary.csv").read_text().splitlines()
    assert summary[0].startswith("point,guidance.base,run_id,") and "fid[base16]" in summary[0] and len(summary) == 3
    frame = load_results(tmp_path / "runs" / "sweep")
    fid = frame[(frame.metric == "fid") & (frame.group == "base16")]
    assert sorted(fid["guidance.base16"]) == [1.0, 4.0] and fid.value.nunique() == 2, out.stdout


def test_sweep_and_slurm_launcher_configs_compose():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=["+experiment=guidance_sweep", "hydra/launcher=slurm", "coco.root=/x", "checkpoint=random"],
            return_hydra_config=True,
        )
    assert cfg.hydra.sweeper.params["guidance.base"].startswith("1,1.25,1.5,1.75,2,3")
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.gpus_per_node == 1
