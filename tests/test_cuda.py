"""The harness on a GPU (marked ``gpu``: skipped where torch sees none; ``benchmarks/scripts/gpu_check.py`` runs these).

* the starting noise of every (prompt, seed) is drawn from its own CPU generator and moved to the device,
  so it is the same on the CPU and the GPU;
* a run on the GPU with ``deterministic=true`` gives bit-identical images when run again;
* bf16 autocast and channels_last sample on the GPU, and the device identity is recorded.
"""

from __future__ import annotations

import pytest
import torch

from imagen.cascade import NoiseSource
from imagen.devices import device_identity, resolve_device, set_deterministic

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")]


def _cascade(device: torch.device, precision: str = "float32", channels_last: bool = False):
    from hydra import compose, initialize_config_dir

    from imagen.build import load_cascade
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "sample", overrides=["model=imagen_micro", "sampler=ddim", "sampler.steps=4", "sampler.microbatch=null"]
        )
    cascade = load_cascade(cfg, None, device=device)
    cascade.precision, cascade.channels_last = precision, channels_last
    return cascade


def test_noise_is_the_same_on_cpu_and_gpu():
    z = torch.zeros(3, 3, 16, 16)
    cpu = NoiseSource([0, 1, 2], 0, torch.device("cpu")).like(z)
    gpu = NoiseSource([0, 1, 2], 0, resolve_device("cuda")).like(z.cuda())
    assert gpu.device.type == "cuda" and torch.equal(cpu, gpu.cpu())


def test_deterministic_reruns_are_bit_identical_on_the_gpu():
    set_deterministic(True)
    try:
        runs = [_cascade(resolve_device("cuda")).sample(["a red square", "a blue circle"], [0, 1]) for _ in range(2)]
    finally:
        set_deterministic(False)
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize(("precision", "channels_last"), [("bf16", False), ("float32", True)])
def test_bf16_and_channels_last_sample_on_the_gpu(precision, channels_last):
    out = _cascade(resolve_device("cuda"), precision, channels_last).sample(["a red square"], [0])
    assert all(v.device.type == "cuda" and torch.isfinite(v).all() for v in out.values())
    ident = device_identity("cuda")
    assert ident["kind"] == "cuda" and ident["name"] and ident["cuda"] and ident["memory_gib"] > 0
