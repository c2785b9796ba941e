"""Zero-shot COCO FID-30K (Imagen §4.2, Table 1): the captions, the seeds and the reference images.

Protocol: 30K captions drawn at random (seed recorded) from the 2014 validation annotations the
user points to, one image per caption at 256×256, FID against the validation images. When no
``captions_val2014.json`` is available, the shipped fixed 30K list (benchmarks/data/coco/SOURCES.md)
supplies the captions — labelled as such in the results, because it is not a random draw.
FID-5K / FID-10K (the paper's ablations) are ``benchmark.num_prompts=5000`` / ``10000``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError

SHIPPED_CSV = Path(__file__).resolve().parent / "data" / "coco" / "val2014_30k_captions.csv"
SHIPPED_SHA256 = "de058dcfb9d1fa0791a38a93e6294368b0ec7c498b682123d2ec2fb4384a59c4"
IMAGE_NAME = "COCO_val2014_{:012d}.jpg"


@dataclass(frozen=True)
class CocoPrompt:
    prompt_id: str
    caption: str
    image_id: int


def normalize_caption(text: str) -> str:
    """Collapse runs of whitespace (97 COCO captions contain line feeds, 3,405 pad with spaces)."""
    return " ".join(text.split())


def _read_annotations(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        anns = data["annotations"]
        return [{"id": int(a["id"]), "image_id": int(a["image_id"]), "caption": str(a["caption"])} for a in anns]
    except FileNotFoundError:
        raise UserError(f"COCO annotations not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} is not a COCO captions file (captions_val2014.json format): {err}") from None


def draw_from_annotations(path: Path, n: int, seed: int) -> list[CocoPrompt]:
    """n captions drawn uniformly without replacement from all annotations, with ``seed``."""
    anns = sorted(_read_annotations(path), key=lambda a: a["id"])  # order-independent of the file
    if n > len(anns):
        raise UserError(f"{path} has {len(anns)} captions; cannot draw {n}")
    picks = np.random.default_rng(seed).choice(len(anns), size=n, replace=False)
    return [
        CocoPrompt(f"coco-{anns[i]['id']}", normalize_caption(anns[i]["caption"]), anns[i]["image_id"]) for i in picks
    ]


def shipped_prompts(n: int, path: Path = SHIPPED_CSV) -> list[CocoPrompt]:
    """The first n rows of the shipped fixed list (its order is the file's)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if n > len(rows):
        raise UserError(f"the shipped caption list has {len(rows)} captions; cannot take {n}")
    return [
        CocoPrompt(f"coco-img{int(r['image_id'])}", normalize_caption(r["caption"]), int(r["image_id"]))
        for r in rows[:n]
    ]


def resolve_annotations(coco: Any) -> Path | None:
    """The annotations file to draw from, or None for the shipped list (``annotations: auto``)."""
    root = Path(coco.root)
    if not root.is_dir():
        raise UserError(
            f"COCO folder not found: {root}; set coco.root to the folder holding val2014/ "
            "(and annotations/captions_val2014.json), downloaded from cocodataset.org"
        )
    if coco.annotations in (None, "auto"):
        default = root / "annotations" / "captions_val2014.json"
        return default if default.exists() else None
    path = Path(coco.annotations)
    if not path.exists():
        raise UserError(f"COCO annotations not found: {path}")
    return path


def load_prompts(benchmark: Any, coco: Any) -> tuple[list[CocoPrompt], dict[str, Any]]:
    """The evaluation captions and a description of where they came from (for results.json)."""
    n = int(benchmark.num_prompts)
    if n < 1:
        raise UserError("benchmark.num_prompts must be at least 1")
    ann = resolve_annotations(coco)
    if ann is not None:
        prompts = draw_from_annotations(ann, n, int(benchmark.caption_seed))
        source = {"caption_source": "random-draw", "annotations": str(ann), "caption_seed": int(benchmark.caption_seed)}
    else:
        prompts = shipped_prompts(n)
        source = {
            "caption_source": "shipped-fixed-30k",
            "file": str(SHIPPED_CSV),
            "file_sha256": SHIPPED_SHA256,
            "note": "fixed first-30K subset used by other papers, not the paper's random draw",
        }
    source["caption_normalization"] = "whitespace collapsed"
    source["num_prompts"] = n
    return prompts, source


def reference_files(benchmark: Any, coco: Any, prompts: list[CocoPrompt]) -> list[Path]:
    """Real images FID compares against: every val2014 image (``full``) or the drawn ones (``drawn``)."""
    images = Path(coco.images)
    if not images.is_dir():
        raise UserError(f"COCO images folder not found: {images} (expected val2014/ under coco.root)")
    if benchmark.reference == "full":
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    elif benchmark.reference == "drawn":
        files = sorted({images / IMAGE_NAME.format(p.image_id) for p in prompts})
        missing = [f for f in files if not f.exists()]
        if missing:
            raise UserError(f"{len(missing)} drawn COCO images are missing, e.g. {missing[0]}")
    else:
        raise UserError(f"benchmark.reference must be 'full' or 'drawn', got {benchmark.reference!r}")
    if not files:
        raise UserError(f"no images in {images}")
    return files
