"""Checkpoints: bit-exact round trip; mismatched, truncated or corrupt files refused with one line."""

import json
import struct

import pytest
import torch

from harness.errors import UserError
from imagen.checkpoints import load_stage, read_record, save_stage
from tests.helpers.tiny import BASE_UNET, tiny_base

TE = {"identity": "t5:tiny@00", "dim": 24, "max_length": 6}


def save(path, model, unet=BASE_UNET):
    return save_stage(
        path, model.state_dict(), stage="base16", unet=unet, spec={"resolution": 16}, step=7, ema=True, text_encoder=TE
    )


def test_round_trip_is_bit_exact(tmp_path):
    src = tiny_base(seed=3)
    rec = save(tmp_path / "base16.safetensors", src)
    dst = tiny_base(seed=4)
    loaded = load_stage(tmp_path / "base16.safetensors", dst, stage="base16", unet=BASE_UNET)
    assert loaded.step == 7 and loaded.ema and loaded.content_sha256 == rec.content_sha256
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    assert read_record(tmp_path / "base16.safetensors").text_encoder == TE


def test_config_mismatch_is_refused(tmp_path):
    save(tmp_path / "c.safetensors", tiny_base())
    other = dict(BASE_UNET, channels=32)
    with pytest.raises(UserError, match="different U-Net config: channels: checkpoint 16 vs config 32"):
        load_stage(tmp_path / "c.safetensors", tiny_base(), stage="base16", unet=other)
    with pytest.raises(UserError, match="holds stage 'base16'"):
        load_stage(tmp_path / "c.safetensors", tiny_base(), stage="sr32", unet=BASE_UNET)


def test_shape_mismatch_is_refused_without_partial_load(tmp_path):
    from imagen.unets import UNet

    kw = {k: v for k, v in BASE_UNET.items() if k != "_target_"}
    big = UNet(**dict(kw, channels=32))
    save(tmp_path / "c.safetensors", big, unet=BASE_UNET)  # lies about its config
    target = tiny_base(seed=9)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(UserError, match="wrong shapes"):
        load_stage(tmp_path / "c.safetensors", target, stage="base16", unet=BASE_UNET)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save(path, tiny_base())
    data = path.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="unreadable or truncated"):
        load_stage(tmp_path / "t.safetensors", tiny_base(), stage="base16", unet=BASE_UNET)
    header = struct.unpack("<Q", data[:8])[0]
    flipped = bytearray(data)
    flipped[8 + header + 100] ^= 0xFF  # one byte of tensor data
    (tmp_path / "f.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="corrupt"):
        load_stage(tmp_path / "f.safetensors", tiny_base(), stage="base16", unet=BASE_UNET)
    with pytest.raises(UserError, match="not found"):
        load_stage(tmp_path / "missing.safetensors", tiny_base(), stage="base16", unet=BASE_UNET)


def test_foreign_files_and_pickles_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(UserError, match="not an imagen-bench stage checkpoint"):
        read_record(tmp_path / "plain.safetensors")
    torch.save(tiny_base().state_dict(), tmp_path / "model.pt")
    with pytest.raises(UserError, match="refusing to unpickle"):
        load_stage(tmp_path / "model.pt", tiny_base(), stage="base16", unet=BASE_UNET)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(UserError, match="unreadable or truncated"):
        read_record(tmp_path / "junk.safetensors")


def test_record_is_json_with_provenance(tmp_path):
    rec = save(tmp_path / "c.safetensors", tiny_base())
    meta = json.loads(rec.to_json())
    assert meta["format"] == "imagen-bench.stage" and meta["version"] == 1
    assert len(meta["content_sha256"]) == 64 and meta["code_version"]
