"""Train the world's tiny CLIP contrastively and export it as an open_clip folder.

The shipped weights (``benchmarks/world/data/tiny_clip``) were made with::

    nice -n 10 .venv/bin/python -m benchmarks.world.train_tiny_clip \\
        --out benchmarks/world/data/tiny_clip --n-train 20000 --steps 3000 --threads 2

Data: world images (seed 0, train split, rendered at 128² and passed through the model's own eval
preprocess, so training sees exactly what scoring sees) with their captions; held-out: the test
split. Loss: the symmetric CLIP cross-entropy, except that the targets are *every* caption in the
batch that truly describes the image (the world's oracle, :func:`benchmarks.world.judge.truth_matrix`),
not only its own: "a red circle" is a true caption of the image captioned "a large red circle",
and treating it as a negative would teach the model to ignore words. Augmentation: pixel noise and
blur, because generated images are noisy and soft; never flips (left/right is a caption's meaning).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.world.dataset import WorldSettings, sample_item
from benchmarks.world.judge import truth_matrix
from benchmarks.world.render import render_scene
from benchmarks.world.scenes import Spec
from benchmarks.world.tiny_clip import CONTEXT_LENGTH, build_model, export, top1_true
from harness.formats.files import sha256_file


def load_split(split: str, n: int, preprocess: Any, tokenizer: Any, seed: int = 0) -> dict[str, Any]:
    """Images (preprocessed, float16), tokens, scenes and specs of the first ``n`` items of a split."""
    items = [sample_item(WorldSettings(seed=seed), split, i) for i in range(n)]
    images = torch.stack([preprocess(render_scene(it["scene"], 128)) for it in items]).to(torch.float16)
    tokens = tokenizer([it["caption"] for it in items])
    return {
        "images": images,
        "tokens": tokens,
        "scenes": [it["scene"] for it in items],
        "specs": [Spec.from_json(it["spec"]) for it in items],
        "captions": [it["caption"] for it in items],
        "categories": [it["category"] for it in items],
    }


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per image: Gaussian noise (σ up to 0.2 in [-1, 1] units) and, for a third, a 3×3 blur."""
    b = x.shape[0]
    sigma = torch.rand(b, 1, 1, 1, generator=gen) * 0.2
    x = x + sigma * torch.randn(x.shape, generator=gen)
    blur = torch.rand(b, generator=gen) < 1 / 3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), k, groups=3)
    return x


def clip_loss(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy against the normalised truth matrix (rows: images, columns: captions)."""
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(model.encode_text(tokens), dim=-1)
    logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
    t = truth.float()
    loss_i = -(t / t.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(t.T / t.T.sum(1, keepdim=True) * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_i + loss_t) / 2


@torch.inference_mode()
def evaluate(model: torch.nn.Module, data: dict[str, Any], truth: np.ndarray) -> dict[str, Any]:
    """Held-out top-1: the best of all held-out captions is true of the image; per category too."""
    model.eval()
    img = torch.cat(
        [model.encode_image(data["images"][s : s + 256].float()) for s in range(0, len(data["images"]), 256)]
    )
    txt = torch.cat([model.encode_text(data["tokens"][s : s + 256]) for s in range(0, len(data["tokens"]), 256)])
    sim = (F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T).numpy()
    model.train()
    hits = top1_true(sim, truth)
    cats = np.array(data["categories"])
    return {
        "top1": float(hits.mean()),
        "n": len(hits),
        "per_category": {c: round(float(hits[cats == c].mean()), 4) for c in sorted(set(cats))},
    }


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's rule: no weight decay on gains, biases, embeddings and the logit scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        skip = p.ndim < 2 or "embedding" in name or "logit_scale" in name or name.endswith(("bias", "class_embedding"))
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model, preprocess, tokenizer = build_model()
    t0 = time.time()
    train_data = load_split("train", args.n_train, preprocess, tokenizer)
    test_data = load_split("test", args.n_test, preprocess, tokenizer)
    test_truth = truth_matrix(test_data["scenes"], test_data["specs"])
    print(f"data: {args.n_train} train, {args.n_test} test images in {time.time() - t0:.0f} s", flush=True)
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randperm(args.n_train, generator=gen)[: args.batch].tolist()
        truth = torch.from_numpy(
            truth_matrix([train_data["scenes"][i] for i in idx], [train_data["specs"][i] for i in idx])
        )
        loss = clip_loss(model, augment(train_data["images"][idx].float(), gen), train_data["tokens"][idx], truth)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            ev = evaluate(model, test_data, test_truth)
            history.append({"step": step, "loss": round(loss.item(), 4), "top1": round(ev["top1"], 4)})
            print(
                f"step {step}/{args.steps} loss {loss.item():.3f} lr {lr:.2e} held-out top1 {ev['top1']:.3f} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
    final = evaluate(model, test_data, test_truth)
    used = sorted({int(t) for t in torch.unique(train_data["tokens"]).tolist()})
    weights = export(model, args.out, used)
    report = {
        "held_out": final,
        "history": history,
        "minutes": round((time.time() - t0) / 60, 1),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "used_tokens": len(used),
        "weights": weights.name,
        "context_length": CONTEXT_LENGTH,
    }
    report["weights_sha256"] = sha256_file(weights)
    (Path(args.out) / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    (Path(args.out) / "README.md").write_text(readme(report))
    return report


def readme(report: dict[str, Any]) -> str:
    """The folder's README: what it is, how it was made, what it scores on held-out world images."""
    a = report["args"]
    held = report["held_out"]
    cats = "\n".join(f"| {c} | {v:.3f} |" for c, v in held["per_category"].items())
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in a.items())
    return f"""# Tiny CLIP for the procedural world

An open_clip `CLIP` (ViT image tower at 64², text transformer, open_clip's `SimpleTokenizer`) built from
`open_clip_config.json` and trained contrastively on world images and captions only. Load it with
`load_clip_scorer("local-dir:<this folder>")` or `clip.model=local-dir:<this folder>`. It knows nothing
but the world. See `benchmarks/world/tiny_clip.py` for the architecture and why.

Reproduce (training took {report["minutes"]} min; `nice`, {a["threads"]} thread(s), on the shared 2-core CPU):

    nice -n 10 .venv/bin/python -m benchmarks.world.train_tiny_clip --out benchmarks/world/data/tiny_clip \\
        {flags}

Weights: `{report["weights"]}` (float16; token-embedding rows of the {49408 - report["used_tokens"]} tokens that
never occur in world captions are zero), sha256 `{report["weights_sha256"]}`.

Held-out (world test split, first {held["n"]} images): the best-scoring of all {held["n"]} held-out captions
is a true description of the image (judged by the world's ground-truth oracle) for **{held["top1"]:.3f}**
of the images.

| category | held-out top-1 |
|---|---|
{cats}

Training log: `training.json`.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the world's tiny CLIP (open_clip) and export it.")
    ap.add_argument("--out", required=True, help="open_clip folder to write")
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    report = train(ap.parse_args())
    print(json.dumps(report["held_out"]))


if __name__ == "__main__":
    main()
