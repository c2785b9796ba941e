"""Every config in conf/ composes, and every group option instantiates (U-Nets on the meta device)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import harness.cli.hydra_app  # noqa: F401  (registers the config resolvers, as the CLI does)
from imagen.build import model_info
from imagen.cascade import SamplerConfig
from imagen.text.encoders import TextEncoderConfig, text_encoder_parameter_count

CONF = Path(__file__).resolve().parents[1] / "conf"
ROOTS = sorted(p.stem for p in CONF.glob("*.yaml"))
REQUIRED = {  # values a root config marks ??? (given here so that every interpolation resolves)
    "train": ["data.root=/data"],
    "sample": ["checkpoint=random"],
    "eval": ["checkpoint=random", "coco.root=/coco"],
    "drawbench": ["checkpoint=random"],
    "fid": ["a=/a", "b=/b"],
    "study": ["action=create", "study=s"],
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def load(root: str, *overrides: str, hydra: bool = False):
    required = REQUIRED.get(root, [])
    if any(o.startswith("benchmark=") and not o.startswith("benchmark=coco") for o in overrides):
        required = [r for r in required if not r.startswith("coco.")]  # prompt suites have no coco block
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(root, overrides=[*required, *overrides], return_hydra_config=hydra)


def test_the_expected_root_configs_exist():
    assert {"info", "train", "sample", "eval", "drawbench", "fid", "study", "raters", "demo"} <= set(ROOTS)


@pytest.mark.parametrize("root", ROOTS)
def test_root_config_composes_and_resolves(root):
    container = OmegaConf.to_container(load(root), resolve=True)  # every interpolation resolves
    assert container.get("task_name", root) == root
    hydra_cfg = load(root, hydra=True).hydra
    assert hydra_cfg.job.chdir is False and hydra_cfg.run.dir


@pytest.mark.parametrize("model", options("model"))
def test_every_model_builds_on_the_meta_device(model):
    cfg = load("info", f"model={model}")
    info = model_info(cfg)
    assert info["model"] == model and info["total_parameters"] > 0
    resolutions = [s["output_resolution"] for s in info["stages"]]
    assert resolutions == sorted(resolutions) and len(set(resolutions)) == len(resolutions)


@pytest.mark.parametrize("encoder", options("text_encoder"))
def test_every_text_encoder_config_parses_and_counts(encoder):
    cfg = load("info", f"text_encoder={encoder}")
    te = TextEncoderConfig.from_dict(OmegaConf.to_container(cfg.text_encoder, resolve=True))
    assert te.dim > 0 and te.max_length > 0
    assert text_encoder_parameter_count(te) > 0
    assert cfg.model.stages.base32.unet.text_dim == te.dim  # U-Nets follow the encoder width


@pytest.mark.parametrize("sampler", options("sampler"))
def test_every_sampler_config_parses(sampler):
    cfg = load("sample", f"sampler={sampler}")
    assert SamplerConfig.from_config(OmegaConf.to_container(cfg.sampler)).name == sampler


@pytest.mark.parametrize("benchmark", options("benchmark"))
def test_every_benchmark_composes_under_eval(benchmark):
    cfg = load("eval", f"benchmark={benchmark}")
    if "coco" in cfg:  # the COCO protocol's own block; prompt suites have none
        assert cfg.coco.images == "/coco/val2014"
    else:
        from drawbench.suites import load_suite

        assert len(load_suite(cfg.benchmark).items) == cfg.benchmark.expected_total


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = load("eval", f"+experiment={experiment}", hydra=True)
    assert cfg.hydra.sweeper.params


@pytest.mark.parametrize("launcher", options("hydra/launcher"))
def test_every_launcher_composes(launcher):
    cfg = load("eval", f"hydra/launcher={launcher}", hydra=True)
    assert cfg.hydra.launcher._target_


def test_model_config_picks_its_encoder_and_the_command_line_wins():
    assert load("info", "model=imagen_paper").text_encoder.name == "google/t5-v1_1-xxl"
    cfg = load("info", "model=imagen_paper", "text_encoder=clip_vit_l14")
    assert cfg.text_encoder.kind == "clip" and cfg.model.stages.base64.unet.text_dim == 768


def test_untracked_local_overrides_are_loaded_when_present(tmp_path):
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("local"))
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        plain = compose("eval", overrides=REQUIRED["eval"])
    (conf / "local").mkdir()
    (conf / "local" / "default.yaml").write_text(
        "# @package _global_\npaths:\n  cache_dir: /fast/cache\nclip:\n  pretrained: /models/clip.safetensors\n"
    )
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        local = compose("eval", overrides=REQUIRED["eval"])
    assert plain.clip.pretrained == "openai" and local.clip.pretrained == "/models/clip.safetensors"
    assert local.paths.cache_dir == "/fast/cache"


@pytest.mark.parametrize("bench", options("benchmark"))
def test_every_benchmark_names_its_runner_and_registered_metrics(bench):
    from harness.metrics.registry import get_metric

    cfg = load("eval", f"benchmark={bench}")
    module, _, cls = cfg.benchmark._target_.rpartition(".")
    runner = getattr(__import__(module, fromlist=[cls]), cls)
    from harness.evaluation.evaluate import Benchmark

    assert issubclass(runner, Benchmark)
    assert cfg.benchmark.metrics and all(get_metric(m).version for m in cfg.benchmark.metrics)


def test_model_independent_stage_overrides_reach_the_right_stages():
    from harness.errors import UserError
    from harness.generation.generate import apply_stage_overrides, check_generation

    cfg = load("sample", "model=imagen_tiny", "steps.sr=6", "guidance.base=5", "thresholding.sr=none")
    check_generation(cfg)
    apply_stage_overrides(cfg)
    stages = cfg.model.stages
    assert (stages.base32.get("steps"), stages.sr64.steps, stages.sr128.steps) == (None, 6, 6)
    assert stages.base32.guidance == 5.0 and stages.sr64.guidance == 1.0
    assert (stages.base32.thresholding, stages.sr128.thresholding) == ("dynamic", "none")
    with pytest.raises(UserError, match=r"steps.sr must be a positive integer"):
        check_generation(load("sample", "model=imagen_tiny", "steps.sr=0"))
