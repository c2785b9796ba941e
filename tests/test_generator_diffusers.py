"""Any diffusers pipeline as a generator, on tiny pipelines built from configs with random weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from harness.errors import MissingWeightsError, UserError
from harness.evaluation.evaluate import run_benchmark
from harness.formats.results import read_results, read_samples
from harness.generation.diffusers import DiffusersGenerator, PipelineStage, load_pipeline
from harness.generation.fingerprint import fingerprint_fields
from harness.generation.generate import build_generator, check_generation
from tests.helpers.fixtures import tiny_clip_folder
from tests.helpers.tiny_hf import tiny_if_folders, tiny_sd_folder

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    return tiny_sd_folder(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def if_pair(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_if_folders(tmp_path_factory.mktemp("if"))


def _cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                "benchmark=drawbench",
                "benchmark.categories=[Colors,Text]",
                "benchmark.limit_per_category=1",
                "benchmark.images_per_prompt=2",
                "benchmark.seeds=[0,1]",
                "benchmark.grid={rows: 1, cols: 2}",
                f"paths.runs_dir={tmp_path / 'runs'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "progress=false",
                *overrides,
            ],
        )


def _sd_generator(folder: Path, steps: int = 2, per_sample: bool = True) -> DiffusersGenerator:
    pipe, where, source = load_pipeline(str(folder))
    stage = PipelineStage("base", source, where, pipe, {"num_inference_steps": steps, "guidance_scale": 3.0})
    return DiffusersGenerator([stage], name="tiny-sd", per_sample=per_sample)


def test_each_image_is_a_function_of_its_prompt_and_seed(sd):
    gen = _sd_generator(sd)
    both = gen.generate(["a red cat", "a blue dog"], [3, 4])["base"]
    assert both.dtype == torch.uint8 and both.shape == (2, 3, 16, 16) and both.float().std() > 5
    alone = gen.generate(["a blue dog"], [4])["base"]
    assert torch.equal(alone[0], both[1])  # the same (prompt, seed) gives the same bytes in another batch
    other_seed = gen.generate(["a blue dog"], [5])["base"]
    other_prompt = gen.generate(["a red cat"], [4])["base"]
    assert not torch.equal(other_seed[0], both[1]) and not torch.equal(other_prompt[0], both[1])
    batched = _sd_generator(sd, per_sample=False).generate(["a red cat", "a blue dog"], [3, 4])["base"]
    assert (batched.int() - both.int()).abs().max() <= 2  # one call for the group: its own generator per image


def test_describe_records_the_pipeline_and_the_fingerprint_ignores_the_folder(sd, tmp_path):
    d = _sd_generator(sd).describe()
    base = d["pipelines"]["base"]
    assert d["kind"] == "diffusers" and base["class"] == "StableDiffusionPipeline" and d["grouping"] == "per-sample"
    assert base["call"]["num_inference_steps"] == 2 and base["call"]["guidance_scale"] == 3.0
    assert base["scheduler"]["class"] == "DDIMScheduler" and base["scheduler"]["config"]["steps_offset"] == 1
    assert (
        len(base["components"]["unet"]["weights_sha256"]) == 64
        and base["components"]["safety_checker"]["class"] is None
    )
    moved = tmp_path / "elsewhere" / sd.name
    shutil.copytree(sd, moved)
    assert fingerprint_fields(_sd_generator(moved).describe()) == fingerprint_fields(d)
    assert fingerprint_fields(_sd_generator(moved, steps=3).describe()) != fingerprint_fields(d)
    (moved / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(
        (sd / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()[:-8] + b"\0" * 8
    )
    changed = _sd_generator(moved).describe()["pipelines"]["base"]["components"]["unet"]["weights_sha256"]
    assert changed != base["components"]["unet"]["weights_sha256"]


def test_eval_with_generator_diffusers_writes_results_and_refuses_a_mixed_resume(sd, tmp_path):
    clip = tiny_clip_folder(tmp_path / "clip")
    common = [
        "generator=diffusers",
        f"generator.path={sd}",
        "generator.steps=2",
        "benchmark.metrics=[clip_score]",
        f"clip.model={clip}",
        "clip.pretrained=",
        "checkpoint=random",
    ]
    run_dir = tmp_path / "runs" / "sd"
    run_benchmark(_cfg(tmp_path, *common), run_dir)
    r = read_results(run_dir)
    assert r.model["kind"] == "diffusers" and r.model["stages"] == ["base"]
    assert r.model["pipelines"]["base"]["call"]["num_inference_steps"] == 2
    samples = read_samples(run_dir)
    assert len(samples) == 4 and all(s["stage"] == "base" for s in samples) and "clip_score" in samples[0]
    before = {p: p.stat().st_mtime_ns for p in (run_dir / "images").rglob("*.png")}
    run_benchmark(_cfg(tmp_path, *common), run_dir)  # same settings: nothing regenerated
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "images").rglob("*.png")} == before
    with pytest.raises(UserError, match=r"pipelines\.base\.call\.num_inference_steps"):
        run_benchmark(
            _cfg(tmp_path, *[c if c != "generator.steps=2" else "generator.steps=3" for c in common]), run_dir
        )


def test_deepfloyd_if_cascade_keeps_every_stage_and_stop_at_ends_it(if_pair, tmp_path):
    stage1, stage2 = if_pair
    cfg = _cfg(
        tmp_path,
        "generator=diffusers",
        f"generator.path={stage1}",
        "generator.steps=2",
        f"generator.super_resolution=[{{path: {stage2}, steps: 2}}]",
        "guidance.sr=2.5",
    )
    gen = build_generator(cfg, None)
    out = gen.generate(["a red circle", "a blue square"], [0, 1])
    assert gen.stages == ["base", "sr1"] and out["base"].shape[-1] == 16 and out["sr1"].shape[-1] == 32
    d = gen.describe()
    assert d["pipelines"]["sr1"]["class"] == "IFSuperResolutionPipeline"
    assert d["pipelines"]["sr1"]["call"]["guidance_scale"] == 2.5  # guidance.sr overrides the SR stages
    assert d["pipelines"]["base"]["call"]["extra"] == {"clean_caption": False} or d["pipelines"]["base"]["call"][
        "extra"
    ] == {"clean_caption": True}  # IF's caption cleaning: explicit
    with pytest.raises(UserError, match="stop_at='sr256' is not a stage"):
        build_generator(_cfg(tmp_path, "generator=diffusers", f"generator.path={stage1}", "stop_at=sr256"), None)
    early = build_generator(
        _cfg(
            tmp_path,
            "generator=diffusers",
            f"generator.path={stage1}",
            "generator.steps=2",
            f"generator.super_resolution=[{{path: {stage2}}}]",
            "stop_at=base",
        ),
        None,
    )
    assert early.stages == ["base"] and set(early.generate(["a dog"], [0])) == {"base"}


def test_a_missing_pipeline_or_path_is_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError) as err:
        build_generator(_cfg(tmp_path, "generator=diffusers", "generator.path=DeepFloyd/IF-I-XL-v1.0"), None)
    assert "`hf download DeepFloyd/IF-I-XL-v1.0`" in str(err.value) and "generator.path=" in str(err.value)
    with pytest.raises(UserError, match="generator=diffusers needs generator.path"):
        check_generation(_cfg(tmp_path, "generator=diffusers"))
    with pytest.raises(UserError, match="generator.dtype must be one of"):
        check_generation(_cfg(tmp_path, "generator=diffusers", "generator.path=x", "generator.dtype=float8"))
    cfg = _cfg(tmp_path, "checkpoint=random")
    cfg.generator.name = "midjourney"
    with pytest.raises(UserError, match="unknown generator 'midjourney'; registered: diffusers, imagen"):
        build_generator(cfg, None)
