"""The shipped world checkpoints: EMA weights of imagen_tiny, small, loadable, and trained past the early one."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from imagen.build import load_cascade
from imagen.checkpoints import read_record

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "benchmarks" / "world" / "checkpoints"
CONF = str(ROOT / "conf")
STAGES = ("base32", "sr64", "sr128")


def test_both_checkpoints_hold_ema_weights_of_every_stage_and_fit_the_size_budget():
    total = 0
    for which in ("early", "final"):
        for stage in STAGES:
            path = CKPT / which / f"{stage}.safetensors"
            record = read_record(path)
            assert record.ema and record.stage == stage, path
            assert "all-MiniLM-L6-v2" in str(record.text_encoder["identity"])
            total += path.stat().st_size
        assert sorted(p.name for p in (CKPT / which).iterdir()) == sorted(f"{s}.safetensors" for s in STAGES)
    assert total < 50 * 2**20
    for stage in STAGES:  # the early checkpoint is an earlier point of the same runs
        early, final = (read_record(CKPT / w / f"{stage}.safetensors") for w in ("early", "final"))
        assert early.step < final.step and early.unet == final.unet


def test_the_final_checkpoint_loads_into_imagen_tiny_and_samples_finite_images():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("sample", overrides=["model=imagen_tiny", "sampler=ddim", "sampler.steps=2"])
    cascade = load_cascade(cfg, CKPT / "final")
    out = cascade.sample(["a red circle"], [0])
    assert [tuple(v.shape) for v in out.values()] == [(1, 3, 32, 32), (1, 3, 64, 64), (1, 3, 128, 128)]
    assert all(torch.isfinite(v).all() for v in out.values())
