"""precision=bf16: the U-Nets run under autocast, images stay reproducible, and a run never mixes precisions."""

from __future__ import annotations

import json

import pytest
import torch

from harness.cli import main as cli
from imagen.cascade import UNetCall, check_precision
from imagen.errors import UserError
from tests.helpers.tiny import random_text, tiny_base, tiny_cascade

MICRO = ["model=imagen_micro", "sampler=ddim", "sampler.steps=2", "progress=false", "checkpoint=random"]


def run(args: list[str], capsys) -> tuple[int, str]:
    try:
        cli(args)
        code = 0
    except SystemExit as err:
        code = int(err.code or 0)
    return code, capsys.readouterr().err


def test_bf16_images_are_bit_exact_for_the_same_batch_and_close_to_float32():
    emb, mask = random_text(3)
    seeds = [4, 5, 6]
    cascade = tiny_cascade(steps=4, microbatch=None)
    f32 = cascade.sample(["p"] * 3, seeds, text=(emb, mask))
    cascade.precision = "bf16"
    bf1 = cascade.sample(["p"] * 3, seeds, text=(emb, mask))
    fresh = tiny_cascade(steps=4, microbatch=None)
    fresh.precision = "bf16"
    bf2 = fresh.sample(["p"] * 3, seeds, text=(emb, mask))
    for stage in f32:
        assert bf1[stage].dtype == torch.float32
        assert torch.equal(bf1[stage], bf2[stage]), stage  # reproducible at its batch size
        assert not torch.equal(bf1[stage], f32[stage]), stage  # bf16 really ran: rounding differs
        assert (bf1[stage] - f32[stage]).abs().mean() < 0.05, stage  # ... and only by rounding


def test_bf16_with_microbatch_1_keeps_images_independent_of_the_batch():
    cascade = tiny_cascade(steps=3, microbatch=1)
    cascade.precision = "bf16"
    emb, mask = random_text(3)
    batch = cascade.sample(["p"] * 3, [1, 2, 3], text=(emb, mask), stop_at="base16")["base16"]
    single = cascade.sample(["p"], [2], text=(emb[1:2], mask[1:2]), stop_at="base16")["base16"]
    assert torch.equal(batch[1], single[0])


def test_unet_call_runs_the_network_in_bf16_and_returns_float32_in_the_default_layout():
    seen = {}

    def spy(module, args, output):
        seen["dtype"] = output.dtype

    net = tiny_base()
    net.out.register_forward_hook(spy)
    z = torch.randn(2, 3, 16, 16)
    emb, mask = random_text(2)
    out = UNetCall(net, "bf16", channels_last=True)(z, torch.rand(2), emb, mask)
    assert seen["dtype"] == torch.bfloat16 and out.dtype == torch.float32 and out.is_contiguous()
    with torch.no_grad():
        plain = net(z, torch.full((2,), 0.5), emb, mask)
        layout = UNetCall(net, "float32", channels_last=True)(z, torch.full((2,), 0.5), emb, mask)
    assert torch.allclose(plain, layout, atol=1e-5)


def test_sampled_images_are_ordinary_tensors():
    """Sampling runs in inference mode, but what it returns can be modified like any tensor."""
    images = tiny_cascade(steps=2).sample(["p"], [0], text=random_text(1), stop_at="base16")["base16"]
    assert not images.is_inference()
    images.mul_(0.5)


def test_precision_values_are_checked():
    assert check_precision("bf16") == "bf16"
    with pytest.raises(UserError, match=r"precision must be one of float32, bf16, got 'fp16'"):
        check_precision("fp16")


def test_bad_precision_is_one_line_before_any_work(tmp_path, capsys):
    runs = tmp_path / "runs"
    code, err = run(
        ["sample", *MICRO, f"paths.runs_dir={runs}", "run_id=p", "prompts=[a cat]", "seeds=[0]", "precision=half"],
        capsys,
    )
    lines = [ln for ln in err.splitlines() if ": error:" in ln]
    assert code == 2 and len(lines) == 1 and "precision must be one of float32, bf16" in lines[0], err
    assert not (runs / "p").exists()


def test_precision_is_in_the_fingerprint_and_a_bf16_rerun_of_a_float32_run_is_refused(tmp_path, capsys):
    runs = tmp_path / "runs"
    base = ["sample", *MICRO, f"paths.runs_dir={runs}", "prompts=[a cat]", "seeds=[0]"]
    code, err = run([*base, "run_id=f32"], capsys)
    assert code == 0, err
    assert json.loads((runs / "f32" / "fingerprint.json").read_text())["fields"]["precision"] == "float32"
    before = sorted(p.name for p in (runs / "f32").rglob("*"))
    code, err = run([*base, "run_id=f32", "precision=bf16"], capsys)
    lines = [ln for ln in err.splitlines() if ": error:" in ln]
    assert code == 2 and len(lines) == 1 and "precision" in lines[0] and "pick a new run_id" in lines[0], err
    assert sorted(p.name for p in (runs / "f32").rglob("*")) == before
    code, err = run([*base, "run_id=b16", "precision=bf16"], capsys)
    assert code == 0, err
    assert json.loads((runs / "b16" / "fingerprint.json").read_text())["fields"]["precision"] == "bf16"


def test_channels_last_is_in_the_fingerprint_and_checked(tmp_path, capsys):
    runs = tmp_path / "runs"
    base = ["sample", *MICRO, f"paths.runs_dir={runs}", "prompts=[a cat]", "seeds=[0]", "run_id=nhwc"]
    code, err = run([*base, "channels_last=true"], capsys)
    assert code == 0, err
    assert json.loads((runs / "nhwc" / "fingerprint.json").read_text())["fields"]["memory_format"] == "channels_last"
    code, err = run(base, capsys)  # the same run_id in the default layout: refused, naming the field
    assert code == 2 and "memory_format" in err and "pick a new run_id" in err, err
    code, err = run([*base.copy()[:-1], "run_id=bad", "channels_last=maybe"], capsys)
    assert code == 2 and "channels_last must be true or false, got 'maybe'" in err, err


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns_before_sampling(tmp_path, capsys, monkeypatch, native):
    import imagen.cascade

    monkeypatch.setattr(imagen.cascade, "cpu_has_native_bf16", lambda: native)
    runs = tmp_path / "runs"
    code, err = run(
        ["sample", *MICRO, f"paths.runs_dir={runs}", "prompts=[a cat]", "seeds=[0]", "run_id=b", "precision=bf16"],
        capsys,
    )
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if "without native bf16" in ln]
    assert len(warned) == (0 if native else 1), err
    code, err = run(["sample", *MICRO, f"paths.runs_dir={runs}", "prompts=[a cat]", "seeds=[0]", "run_id=f"], capsys)
    assert code == 0 and "without native bf16" not in err, err  # float32 never warns
