"""``device=auto`` and what a run records of its device: resolution, one-line errors, the fingerprint's device
kind (a folder made on one kind refuses a resume on another) and ``results.json``'s device identity.

The CUDA side of the same contract (noise identical on CPU and GPU, bit-exact reruns with
``deterministic=true``) is in ``tests/test_cuda.py``, marked ``gpu``: it runs where a GPU is visible
(``benchmarks/scripts/gpu_check.py`` runs it there) and skips elsewhere.
"""

from __future__ import annotations

import json

import pytest
import torch

from harness.formats.results import read_results
from imagen.devices import device_identity, device_kind, resolve_device
from imagen.errors import UserError
from tests.helpers.cli import run_cli

SAMPLE = [
    "model=imagen_micro",
    "checkpoint=random",
    "sampler=ddim",
    "sampler.steps=2",
    "progress=false",
    "prompts=[a red square]",
    "seeds=[0]",
]


def _run(args: list[str], capsys) -> tuple[int, str]:
    code, out, err = run_cli(args, capsys)
    return code, out + err


def test_auto_is_cuda_when_visible_else_cpu():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto") and resolve_device("CPU") == torch.device("cpu")
    for bad in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(UserError, match="device must be auto, cpu, cuda or cuda:<index>"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        resolve_device("cuda")


def test_the_cpu_identity():
    ident = device_identity("cpu")
    assert ident["kind"] == "cpu" and ident["threads"] >= 1 and device_kind("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error needs a machine without a GPU")
def test_a_run_asking_for_cuda_here_stops_before_any_work(tmp_path, capsys):
    code, out = _run(["sample", *SAMPLE, "device=cuda", f"paths.runs_dir={tmp_path}", "run_id=gpu"], capsys)
    assert code == 2 and "no CUDA GPU is visible" in out and not (tmp_path / "gpu" / "images").exists()
    code, out = _run(["sample", *SAMPLE, "deterministic=maybe", f"paths.runs_dir={tmp_path}", "run_id=det"], capsys)
    assert code == 2 and "deterministic must be true or false" in out


def test_a_folder_made_on_another_device_kind_refuses_a_resume(tmp_path, capsys):
    code, out = _run(["sample", *SAMPLE, "device=cpu", f"paths.runs_dir={tmp_path}", "run_id=here"], capsys)
    assert code == 0, out
    path = tmp_path / "here" / "fingerprint.json"
    data = json.loads(path.read_text())
    fields = data.get("fields", data)
    assert fields["device"] == "cpu" and fields["deterministic"] is False
    fields["device"] = "cuda"  # as if the folder had been made on a GPU
    path.write_text(json.dumps(data))
    code, out = _run(["sample", *SAMPLE, "device=cpu", f"paths.runs_dir={tmp_path}", "run_id=here"], capsys)
    assert code == 2 and "device" in out


def test_results_record_the_device(tmp_path, capsys):
    from tests.helpers.fixtures import mini_coco

    coco = mini_coco(tmp_path / "coco", n_images=4)
    code, out = _run(
        [
            "eval",
            "model=imagen_micro",
            "checkpoint=random",
            "sampler=ddim",
            "sampler.steps=2",
            "progress=false",
            "benchmark=coco_fid30k",
            "benchmark.num_prompts=4",
            "clip.enabled=false",
            "benchmark.metrics=[kid]",
            "fid.kid_subset_size=3",
            "fid.min_images=2",
            f"coco.root={coco}",
            "stop_at=base16",
            "benchmark.stop_at=base16",
            f"paths.runs_dir={tmp_path / 'runs'}",
            "run_id=dev",
        ],
        capsys,
    )
    assert code == 0, out
    env = read_results(tmp_path / "runs" / "dev").environment
    assert env["device"]["kind"] == ("cuda" if torch.cuda.is_available() else "cpu")
