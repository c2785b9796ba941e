"""Numbers you can trust: a run folder never mixes settings, every bad value is refused before work
starts (one line, exit 2, nothing left behind), documented settings apply, and results are honest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.cli import COMMANDS
from harness.formats.results import Results, load_results, read_results, write_results
from tests.helpers.cli import run_cli
from tests.helpers.fixtures import mini_coco

MICRO = ["model=imagen_micro", "sampler=ddim", "sampler.steps=3", "progress=false"]


run = run_cli


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ": error:" in ln]


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tiny_clip, micro_cascade):
    root = tmp_path_factory.mktemp("trust")
    return {"coco": mini_coco(root / "coco", n_images=12), "clip": tiny_clip, "cascade": micro_cascade}


# --- 1. a resume never mixes settings -----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["checkpoint", "steps", "guidance"])
def test_rerun_with_other_settings_is_refused_and_changes_nothing(tmp_path, capsys, assets, change):
    runs = tmp_path / "runs"
    suite = [
        "drawbench",
        *MICRO,
        f"paths.runs_dir={runs}",
        "run_id=db",
        "benchmark.categories=[Colors]",
        "benchmark.limit_per_category=1",
        f"clip.model={assets['clip']}",
        "clip.pretrained=",
    ]
    code, _, err = run([*suite, "checkpoint=random"], capsys)
    assert code == 0, err
    before = snapshot(runs / "db")
    other = {
        "checkpoint": [f"checkpoint={assets['cascade']}"],
        "steps": ["checkpoint=random", "sampler.steps=4"],
        "guidance": ["checkpoint=random", "guidance.base=7"],
    }[change]
    code, _, err = run([*suite, *other], capsys)
    lines = error_lines(err)
    expected = {"checkpoint": "checkpoint_sha256", "steps": "sampler.steps", "guidance": "guidance"}[change]
    assert code == 2 and len(lines) == 1 and expected in lines[0] and "pick a new run_id" in lines[0], err
    assert snapshot(runs / "db") == before


def test_coco_rerun_with_another_checkpoint_is_refused(tmp_path, capsys, assets):
    runs = tmp_path / "runs"
    coco = [
        "eval",
        *MICRO,
        f"paths.runs_dir={runs}",
        "run_id=c",
        f"coco.root={assets['coco']}",
        "benchmark.num_prompts=10",
        f"clip.model={assets['clip']}",
        "clip.pretrained=",
        "fid.kid_subset_size=5",
        "fid.n_boot=20",
    ]
    assert run([*coco, "checkpoint=random"], capsys)[0] == 0
    r = read_results(runs / "c")
    assert r.model["fingerprint"] and r.model["checkpoint_sha256"] == {"base16": "random", "sr32": "random"}
    assert "RANDOM WEIGHTS" in r.model["warning"]
    fid = r.metrics["sr32"]["fid"]
    assert fid.ci_low <= fid.value <= fid.ci_high and fid.n == 10 and "bootstrap" in fid.method
    assert any("singular" in w for w in fid.extra["warnings"])  # the small-n warning is in results.json
    manifest = [json.loads(ln) for ln in (runs / "c" / "manifest.jsonl").read_text().splitlines()]
    assert {m["generator"] for m in manifest} == {r.model["fingerprint"]}
    before = snapshot(runs / "c")
    code, _, err = run([*coco, f"checkpoint={assets['cascade']}"], capsys)
    assert code == 2 and "checkpoint_sha256" in error_lines(err)[0]
    assert snapshot(runs / "c") == before


def test_sweep_points_are_named_by_value_and_a_rerun_never_mixes_settings(tmp_path, capsys):
    runs = tmp_path / "runs"
    sweep = [
        "sample",
        "-m",
        *MICRO,
        "checkpoint=random",
        f"paths.runs_dir={runs}",
        "run_id=sw",
        "prompts=[a cat]",
        "seeds=[0]",
    ]
    assert run([*sweep, "guidance.base=1,3"], capsys)[0] == 0
    assert sorted(p.name for p in (runs / "sw").iterdir() if p.is_dir()) == ["guidance.base=1", "guidance.base=3"]
    assert (runs / "sw" / "sweep_summary.csv").read_text().splitlines()[0] == "point,guidance.base"
    points = lambda: {k: v for k, v in snapshot(runs / "sw").items() if "/" in k}
    before = points()
    code, _, err = run([*sweep, "guidance.base=1,3", "sampler.steps=4"], capsys)  # same points, other settings
    assert code == 2 and "run sw/guidance.base=1 was made with other settings (sampler.steps" in error_lines(err)[0]
    assert points() == before
    assert run([*sweep, "guidance.base=3,5"], capsys)[0] == 0  # a new value is a new point beside the old ones
    kept = {k: v for k, v in before.items() if not k.endswith(".log")}  # a resumed point's log grows, nothing else
    assert {k: v for k, v in points().items() if k in kept} == kept
    assert (runs / "sw" / "guidance.base=5" / "fingerprint.json").is_file()


def test_same_settings_resume_completes_only_what_is_missing(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = [
        "sample",
        *MICRO,
        "checkpoint=random",
        f"paths.runs_dir={runs}",
        "run_id=s",
        "prompts=[a cat,a dog]",
        "seeds=[0,1]",
        "batch_size=2",
    ]
    assert run(args, capsys)[0] == 0
    first = snapshot(runs / "s" / "images")
    (runs / "s" / "images" / "sr32" / "prompt-0001" / "1.png").unlink()
    code, out, _ = run(args, capsys)
    assert code == 0 and '"generated": 2, "skipped": 2' in out and snapshot(runs / "s" / "images") == first
    log = (runs / "s" / "sample.log").read_text()
    assert out.strip().splitlines()[-1] in log  # the log gets the lines the terminal showed


# --- 2. every value is checked before any work starts -------------------------------------------------------

BAD = {
    "steps-zero": (["sampler.steps=0"], "sampler.steps must be a positive integer"),
    "steps-float": (["sampler.steps=2.5"], "sampler.steps must be a positive integer"),
    "guidance-nan": (["guidance.base=nan"], "guidance.base must be a finite number"),
    "guidance-negative": (["guidance.base=-1"], "guidance.base must be >= 0"),
    "stage-guidance-inf": (["model.stages.sr32.guidance=inf"], "model.stages.sr32.guidance must be a finite"),
    "seed-float": (["seeds=[0.7]"], "seeds must hold integers only"),
    "seed-duplicate": (["seeds=[1,1]"], "more than once"),
    "seed-negative": (["seeds=[-1]"], "outside [0, 2^63)"),
    "seed-huge": (["seeds=[9223372036854775808]"], "outside [0, 2^63)"),
    "seed-bare-number": (["seeds=5"], "must be a list of integers"),
    "seed-bare-string": (["seeds=abc"], "must be a list of integers"),
    "unknown-plus-key": (["+sampler.stepz=1"], "unknown key 'sampler.stepz'"),
    "typo-key": (["samplerr.steps=3"], "unknown key 'samplerr.steps'"),
    "typo-group": (["model=imagen_mikro"], "Could not find 'model/imagen_mikro'"),
    "checkpoint-null": (["checkpoint=null"], "checkpoint=null is ambiguous"),
    "checkpoint-empty": (["checkpoint="], "checkpoint= is empty"),
    "sweep-without-m": (["guidance.base=1,2"], "add -m"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_generation_values_are_one_line_exit_2_and_leave_nothing(tmp_path, capsys, case):
    extra, message = BAD[case]
    runs = tmp_path / "runs"
    base = ["sample", *MICRO, f"paths.runs_dir={runs}", "run_id=bad", "prompts=[a cat]", "seeds=[0]"]
    if not any(e.startswith("checkpoint") for e in extra):
        base.append("checkpoint=random")
    code, _, err = run([*base, *extra], capsys)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err and not (runs / "bad").exists()


def test_bad_training_values_and_prompt_files(tmp_path, capsys):
    for extra, message in (
        (["train.lr=0"], "train.lr must be > 0"),
        (["train.lr=-1e-4"], "train.lr must be > 0"),
        (["train.steps=0"], "train.steps must be a positive integer"),
    ):
        code, _, err = run(
            ["train", "model=imagen_micro", f"data.root={tmp_path}", f"paths.runs_dir={tmp_path}/r", *extra], capsys
        )
        assert code == 2 and message in error_lines(err)[0], err
    latin1 = tmp_path / "prompts.txt"
    latin1.write_bytes("une cr\xe8me br\xfbl\xe9e\n".encode("latin-1"))
    code, _, err = run(
        ["sample", *MICRO, "checkpoint=random", f"prompts_file={latin1}", f"paths.runs_dir={tmp_path}/r", "run_id=p"],
        capsys,
    )
    assert code == 2 and "is not UTF-8 text" in error_lines(err)[0] and not (tmp_path / "r" / "p").exists()


def test_eval_checks_reference_and_clip_before_generating(tmp_path, capsys, assets):
    runs = tmp_path / "runs"
    corrupt = tmp_path / "coco"
    (corrupt / "val2014").mkdir(parents=True)
    for i, f in enumerate(sorted((assets["coco"] / "val2014").iterdir())):
        (corrupt / "val2014" / f.name).write_bytes(f.read_bytes()[:200] if i == 3 else f.read_bytes())
    (corrupt / "annotations").mkdir()
    (corrupt / "annotations" / "captions_val2014.json").write_bytes(
        (assets["coco"] / "annotations" / "captions_val2014.json").read_bytes()
    )
    common = ["eval", *MICRO, "checkpoint=random", f"paths.runs_dir={runs}", "benchmark.num_prompts=10"]
    code, _, err = run(
        [*common, "run_id=ref", f"coco.root={corrupt}", f"clip.model={assets['clip']}", "clip.pretrained="], capsys
    )
    assert code == 2 and "not a readable image" in error_lines(err)[0] and not (runs / "ref").exists()
    code, _, err = run([*common, "run_id=clip", f"coco.root={assets['coco']}"], capsys)
    assert code == 2 and "clip.pretrained=" in error_lines(err)[0] and not (runs / "clip").exists()
    code, _, err = run(
        [*common, "run_id=noclip", f"coco.root={assets['coco']}", "clip.enabled=false", "fid.kid_subset_size=5"], capsys
    )
    r = read_results(runs / "noclip")
    assert code == 0 and r.skipped_metrics == {"clip_score": "disabled (clip.enabled=false)"}
    assert "clip_score" not in r.metrics["sr32"] and "clip_score" not in r.metric_info


# --- 3. documented settings apply ------------------------------------------------------------------------------


def test_eval_stop_at_and_sample_guidance_apply(tmp_path, capsys, assets):
    runs = tmp_path / "runs"
    code, _, err = run(
        [
            "eval",
            *MICRO,
            "checkpoint=random",
            f"paths.runs_dir={runs}",
            "run_id=s",
            f"coco.root={assets['coco']}",
            "benchmark.num_prompts=10",
            "clip.enabled=false",
            "fid.kid_subset_size=5",
            "stop_at=base16",
        ],
        capsys,
    )
    assert code == 0, err
    assert list(read_results(runs / "s").metrics) == ["base16"]
    images = {}
    for g in (1, 6):
        args = [
            "sample",
            *MICRO,
            f"checkpoint={assets['cascade']}",
            f"paths.runs_dir={runs}",
            f"run_id=g{g}",
            "prompts=[a red square]",
            "seeds=[0]",
            f"guidance.base={g}",
        ]
        assert run(args, capsys)[0] == 0
        images[g] = (runs / f"g{g}" / "images" / "base16" / "prompt-0000" / "0.png").read_bytes()
        assert f"guidance: {g}.0" in (runs / f"g{g}" / "config.yaml").read_text()
    assert images[1] != images[6]


# --- 4. honest results -----------------------------------------------------------------------------------------


def test_truncated_prompts_are_counted_and_warned(tmp_path, capsys, assets):
    runs = tmp_path / "runs"
    long = " ".join(["word"] * 2000)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"a red square\n{long}\n")
    code, _, err = run(
        [
            "sample",
            *MICRO,
            "checkpoint=random",
            f"paths.runs_dir={runs}",
            "run_id=t",
            f"prompts_file={prompts}",
            "seeds=[0]",
        ],
        capsys,
    )
    assert code == 0 and "1 of 2 prompts exceed the text encoder's" in err


def test_nan_never_reaches_a_json_file_and_imported_rows_name_their_source(tmp_path):
    from harness.formats.values import MetricValue, ResultTable, TableRow

    table = ResultTable("category", "b", "image", 0.95, ("m",), (TableRow("overall", "b", 1, 1),))
    r = Results(
        run_id="x",
        task="eval",
        suite="s",
        benchmark={},
        table=table,
        metrics={"overall": {"m": MetricValue(float("nan"))}},
        model={"kind": "folder", "folder": "/elsewhere/images"},
        seeds={},
        prompts={},
        extractors={},
        config={"sampler": {"name": "ddpm", "steps": 250}, "model": {"stages": {"b": {"guidance": 3}}}},
        environment={},
        timings={"total": float("inf")},
    )
    path = write_results(tmp_path, r)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and json.loads(text)["timings"]["total"] is None
    row = load_results(tmp_path).iloc[0]
    assert row.source == "/elsewhere/images" and row.sampler is None and "guidance.b" not in row.index


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_own_help(name, capsys):
    code, out, _ = run([name, "--help"], capsys)
    assert code == 0 and out.startswith(f"imagen-bench {name}: ") and "example: imagen-bench" in out
    assert "required:" in out or name not in ("eval", "sample", "train")
    if name in ("train", "study", "raters"):
        assert "benchmark=" not in out and "+experiment" not in out
