"""Cost per 1K images of each metric on this CPU: one table.

    nice -n 10 .venv/bin/python -m benchmarks.scripts.metric_costs            # --images 16 --threads 2

Networks run through the metrics' own code paths (feature spaces, preference-model adapters) on world
images written as 256 × 256 PNGs, so decoding and preprocessing are included. Only the TF-FID Inception
has real weights offline; every other network is its published architecture with random weights (the
same compute: ViT-L/14 DINOv2, ViT-B/14 DINOv2, CLIP ViT-L/14@336, ViT-H/14 for PickScore and HPS,
BLIP ViT-L + BERT-base for ImageReward). Seconds per image are measured on ``--images`` images after
one warm-up batch and scaled to 1,000 (linear in the count). The set-level maths (Fréchet distance,
CMMD, PRDC, each with 200 bootstrap replicates) is measured at 1,000 generated vs 1,000 reference
features of the space's dimension: it is quadratic in the count, so at 30K it is ~900× this.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _world_files(folder: Path, n: int) -> list[Path]:
    from benchmarks.world.dataset import WorldSettings, sample_item
    from benchmarks.world.render import render_scene

    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.png"
        render_scene(sample_item(WorldSettings(seed=0), "test", i)["scene"], 256).save(path)
        paths.append(path)
    return paths


def _timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _per_image(run: Callable[[list[Path]], Any], files: list[Path], batch: int) -> float:
    run(files[:batch])  # warm-up (allocations, lazy init)
    return _timed(lambda: run(files)) / len(files)


# --- networks with their published architectures --------------------------------------------------


def _inception(files: list[Path], batch: int):
    from harness.metrics.extractors.images import batches
    from harness.metrics.extractors.inception import load_fid_extractor
    from harness.metrics.fid_api import extract_features

    ext = load_fid_extractor()
    return _per_image(lambda fs: extract_features(batches(fs, "clean", batch), ext), files, batch), 2048, "real weights"


def _dinov2(hidden: int, layers: int, heads: int) -> Callable:
    def run(files: list[Path], batch: int):
        from transformers import Dinov2Config, Dinov2Model

        from harness.metrics.extractors.dinov2 import Dinov2Space

        net = Dinov2Model(
            Dinov2Config(
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=4 * hidden,
                image_size=518,
                patch_size=14,
            )
        ).eval()
        space = Dinov2Space(
            net,
            {"weights_sha256": "-", "config_sha256": "-", "arch": "", "feature_dim": hidden, "path": ""},
            "clean",
            batch,
        )
        return _per_image(space.extract, files, batch), hidden, "random weights"

    return run


def _clip_space(files: list[Path], batch: int):
    import open_clip

    from harness.metrics.extractors.clip import ClipScorer
    from harness.metrics.extractors.feature_spaces import ClipSpace

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14-336", pretrained=None)
    scorer = ClipScorer(model.eval(), preprocess, open_clip.get_tokenizer("ViT-L-14-336"), {"weights_sha256": "-"})
    return _per_image(ClipSpace(scorer, batch).extract, files, batch), 768, "random weights"


def _prompts(n: int) -> list[str]:
    return [f"a photo of {k} red circles next to a blue square on a wooden table" for k in range(n)]


def _hps(files: list[Path], batch: int):
    import open_clip

    from harness.metrics.extractors.preference_models import HpsModel

    model = open_clip.create_model("ViT-H-14", pretrained=None, load_weights=False).eval()
    pre = open_clip.image_transform(224, is_train=False, resize_mode="longest")
    hps = HpsModel(model, pre, open_clip.get_tokenizer("ViT-H-14"), {})
    return _per_image(lambda fs: hps.score(fs, _prompts(len(fs)), batch), files, batch), None, "random weights"


def _byte_clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from harness.metrics.extractors.preference_models import CONTEXT

    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs + [256 + i for i in range(256 - len(bs))]
    chars = [chr(c) for c in cs]
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>", model_max_length=CONTEXT
    )


def _pickscore(files: list[Path], batch: int):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from harness.metrics.extractors.preference_models import PickScoreModel

    with tempfile.TemporaryDirectory() as tmp:
        tok = _byte_clip_tokenizer(Path(tmp))
    cfg = CLIPConfig(
        text_config={
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "vocab_size": 49408,
        },
        vision_config={
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_hidden_layers": 32,
            "num_attention_heads": 16,
            "image_size": 224,
            "patch_size": 14,
        },
        projection_dim=1024,
    )
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tok)
    model = PickScoreModel(CLIPModel(cfg).eval(), proc, {})
    return _per_image(lambda fs: model.score(fs, _prompts(len(fs)), batch), files, batch), None, "random weights"


def _imagereward(files: list[Path], batch: int):
    from transformers import BertTokenizer, BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

    from harness.metrics.extractors.imagereward import ImageRewardModel, published_mlp

    vision = BlipVisionModel(
        BlipVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=224,
            patch_size=16,
            layer_norm_eps=1e-6,
        )
    )
    text = BlipTextModel(
        BlipTextConfig(
            vocab_size=30524,
            hidden_size=768,
            encoder_hidden_size=1024,
            num_hidden_layers=12,
            num_attention_heads=12,
            is_decoder=True,
        ),
        add_pooling_layer=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nphoto")
        tok = BertTokenizer(str(Path(tmp) / "vocab.txt"))
    mlp = published_mlp([(768, 1024), (1024, 128), (128, 64), (64, 16), (16, 1)])
    model = ImageRewardModel(vision.eval(), text.eval(), mlp.eval(), tok, {})
    return _per_image(lambda fs: model.score(fs, _prompts(len(fs)), batch), files, batch), None, "random weights"


# --- set-level maths at 1K -------------------------------------------------------------------------


def _set_maths(dim: int | None, kind: str, n: int = 1000, n_boot: int = 200) -> float:
    from harness.metrics.maths.cmmd import cmmd, cmmd_bootstrap
    from harness.metrics.maths.frechet import (
        bootstrap_indices,
        feature_stats,
        frechet_distance_features,
        frechet_distance_resampled,
        reference_factor,
    )
    from harness.metrics.maths.prdc import prdc

    if dim is None:
        return float("nan")
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + 0.1
    sets = list(bootstrap_indices(n, n_boot, 0))
    if kind == "frechet":

        def run():
            frechet_distance_features(gen, ref)
            frechet_distance_resampled(gen, reference_factor(*feature_stats(ref)), sets)
    elif kind == "cmmd":
        gen, ref = gen / np.linalg.norm(gen, axis=1, keepdims=True), ref / np.linalg.norm(ref, axis=1, keepdims=True)

        def run():
            cmmd(gen, ref)
            cmmd_bootstrap(gen, ref, sets)
    else:

        def run():
            prdc(ref, gen, 5).resampled(sets)

    return _timed(run)


ROWS = [  # metric, network, runner, set maths, input
    ("fid / kid", "Inception-v3 (TF-FID)", _inception, "frechet", "299² clean"),
    ("prdc_inception", "Inception-v3 (shared with FID)", None, "prdc:2048", "299² clean"),
    ("fd_dinov2", "DINOv2 ViT-L/14", _dinov2(1024, 24, 16), "frechet", "224² clean"),
    ("fd_dinov2 (dinov2.model=…-base)", "DINOv2 ViT-B/14", _dinov2(768, 12, 12), "frechet", "224² clean"),
    ("prdc_dinov2", "DINOv2 ViT-L/14 (shared with FD)", None, "prdc:1024", "224² clean"),
    ("cmmd", "CLIP ViT-L/14@336", _clip_space, "cmmd", "336² open_clip"),
    ("prdc_clip", "CLIP (shared with CMMD when the same)", None, "prdc:768", "—"),
    ("pickscore", "CLIP ViT-H/14 (transformers)", _pickscore, None, "224² + text"),
    ("hpsv2 / hpsv21", "CLIP ViT-H/14 (open_clip)", _hps, None, "224² + text"),
    ("imagereward", "BLIP ViT-L/16 + BERT-base", _imagereward, None, "224² + text"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows, dims = [], {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        files = _world_files(Path(tmp), args.images)
        for metric, network, runner, maths, inp in ROWS:
            per_img, weights = float("nan"), ""
            if runner is not None:
                per_img, dim, weights = runner(files, args.batch)
                dims[metric] = dim
                gc.collect()
            kind, _, d = (maths or "").partition(":")
            dim = int(d) if d else dims.get(metric)
            set_s = _set_maths(dim, kind) if maths else float("nan")
            rows.append((metric, network, inp, weights, per_img, set_s))
            print(
                f"[{time.perf_counter() - start:5.0f} s] {metric}: {per_img:.3f} s/image, set maths {set_s:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    _print(rows, args, time.perf_counter() - start)


def _fmt(x: float, spec: str) -> str:
    return "—" if math.isnan(x) else format(x, spec)


def _print(rows: list[tuple], args: argparse.Namespace, seconds: float) -> None:
    head = ("metric", "network", "input", "weights", "s/image", "network s/1K", "set maths s/1K")
    print(
        f"cost per 1K images, {args.images} images measured per network (batch {args.batch}, "
        f"{args.threads} threads), set maths at 1K vs 1K features with 200 bootstrap replicates"
    )
    table = [head] + [
        (m, n, i, w or "shared", _fmt(p, ".3f"), _fmt(1000 * p, ".0f"), _fmt(s, ".2f")) for m, n, i, w, p, s in rows
    ]
    widths = [max(len(str(r[c])) for r in table) for c in range(len(head))]
    for r in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{seconds:.0f} s on {platform.machine()} with {os.cpu_count()} CPUs, load average {load} at the end "
        f"(CPython {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__})"
    )


if __name__ == "__main__":
    main()
