"""Finished runs written straight to disk for report tests: results.json, samples.jsonl and PNGs,
plus :func:`make_assets`: a guidance sweep over two checkpoints (COCO-style), two DrawBench-style runs, a
synthetic study whose systems are those two runs (simulated raters) and a regression verdict.

Their numbers are simple functions of the checkpoint and guidance weight, so tests can pin what the
report shows; their structure (config, model, metric_info, table) is what ``eval`` and
``drawbench`` write.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from harness.formats.results import Results, write_results
from harness.formats.values import MetricValue, OutputInfo, ResultTable, TableRow
from harness.formats.verdict import Verdict, VerdictRow, write_verdict
from raters_ui.synthetic import CATEGORIES, PROMPTS

STAGES = ("base16", "sr32")
RES = {"base16": 16, "sr32": 32}
# the prompts and categories of raters_ui.synthetic.make_pairs, so a synthetic study's items are these prompts
DRAWBENCH = [(f"drawbench-{p + 1:04d}", PROMPTS[p % len(PROMPTS)], CATEGORIES[p % len(CATEGORIES)]) for p in range(8)]
INFO = {
    "fid": {
        "metric": "fid",
        "version": "imagen-bench-fid/1",
        "higher_is_better": False,
        "kind": "continuous",
        "per_image": False,
        "bounds": None,
        "label": "FID",
        "unit": None,
    },
    "clip_score": {
        "metric": "clip_score",
        "version": "imagen-bench-clip-score/1",
        "higher_is_better": True,
        "kind": "continuous",
        "per_image": True,
        "bounds": [0.0, 100.0],
        "label": "CLIP score",
        "unit": None,
    },
    "ocr_exact_match": {
        "metric": "ocr",
        "version": "imagen-bench-ocr/1",
        "higher_is_better": True,
        "kind": "binary",
        "per_image": True,
        "bounds": [0.0, 1.0],
        "label": "OCR exact match",
        "unit": None,
    },
}


def png(key: str, size: int) -> bytes:
    colour = tuple(hashlib.sha256(key.encode()).digest()[:3])
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def _config(run_id: str, checkpoint: str, guidance: float, suite: str, steps: int) -> dict:
    return {
        "run_id": run_id,
        "task_name": "eval",
        "checkpoint": checkpoint,
        "progress": False,
        "paths": {"runs_dir": "/runs", "cache_dir": "/cache"},
        "guidance": {"base": guidance, "sr": None},
        "sampler": {"name": "ddim", "steps": steps, "eta": 0.0},
        "benchmark": {"name": suite},
        "model": {
            "name": "imagen_micro",
            "stages": {
                "base16": {"guidance": float(guidance), "resolution": 16},
                "sr32": {"guidance": 3.0, "resolution": 32},
            },
        },
    }


def _model(checkpoint: str, guidance: float, ckpt: int) -> dict:
    return {
        "kind": "imagen-cascade",
        "stages": list(STAGES),
        "model": "imagen_micro",
        "checkpoint": checkpoint,
        "checkpoint_sha256": {s: hashlib.sha256(f"{checkpoint}/{s}".encode()).hexdigest() for s in STAGES},
        "fingerprint": hashlib.sha256(f"{checkpoint}/{guidance}".encode()).hexdigest()[:16],
        "sampler": {"name": "ddim", "steps": 3},
    }


def _results(
    run_id: str,
    task: str,
    suite: str,
    benchmark: dict,
    metrics: dict,
    info: dict,
    config: dict,
    model: dict,
    n_prompts: int,
    layout: tuple[str, str | None],
    prompts: dict | None = None,
) -> Results:
    """Typed results from plain per-group values (``n_prompts``/``n_images`` among them, as the rows' counts)."""
    group_by, stage = layout
    rows = tuple(
        TableRow(
            g, stage or g, int(m.pop("n_prompts")["value"]), int(m.pop("n_images")["value"]), (prompts or {}).get(g)
        )
        for g, m in metrics.items()
    )
    table = ResultTable(group_by, stage, "image", 0.95, tuple(info), rows)
    return Results(
        run_id=run_id,
        task=task,
        suite=suite,
        benchmark=benchmark,
        table=table,
        metrics={g: {o: MetricValue.from_json(v) for o, v in m.items()} for g, m in metrics.items()},
        model=model,
        seeds={"image_seeds": [0, 1]},
        prompts={"count": n_prompts, "sha256": "0" * 64},
        extractors={},
        config=config,
        environment={"git": "abc1234+dirty"},
        metric_info={o: OutputInfo.from_json(i) for o, i in info.items()},
    )


def fid_value(ckpt: int, guidance: float, stage: str) -> float:
    return 300.0 - 40.0 * ckpt + 6.0 * guidance + (10.0 if stage == "sr32" else 0.0)


def clip_value(ckpt: int, guidance: float, stage: str) -> float:
    return 20.0 + 2.0 * guidance + ckpt + (1.0 if stage == "sr32" else 0.0)


def write_coco_run(folder: Path, run_id: str, *, ckpt: int, guidance: float, n_prompts: int = 4) -> Path:
    """A COCO-style run: FID and CLIP score per stage; one image per prompt (seed = 100 + k)."""
    checkpoint = f"/ckpt/model{ckpt}"
    samples, metrics = [], {}
    for stage in STAGES:
        for k in range(n_prompts):
            pid, seed = f"coco-{50000 + k}", 100 + k
            rel = f"images/{stage}/{pid}/{seed}.png"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(png(f"{run_id}/{rel}", RES[stage]))
            samples.append(
                {
                    "prompt_id": pid,
                    "prompt": f"caption {k}",
                    "category": None,
                    "seed": seed,
                    "stage": stage,
                    "path": rel,
                    "clip_score": clip_value(ckpt, guidance, stage) + (k - 1.5),
                }
            )
        f, c = fid_value(ckpt, guidance, stage), clip_value(ckpt, guidance, stage)
        metrics[stage] = {
            "n_prompts": {"value": n_prompts},
            "n_images": {"value": n_prompts},
            "fid": {"value": f, "ci_low": f - 5, "ci_high": f + 7, "n": n_prompts, "level": 0.95},
            "clip_score": {"value": c, "ci_low": c - 1, "ci_high": c + 1, "n": n_prompts, "level": 0.95},
        }
    info = {k: INFO[k] for k in ("fid", "clip_score")}
    res = _results(
        run_id,
        "eval",
        "coco_fid30k",
        {"name": "coco_fid30k"},
        metrics,
        info,
        _config(run_id, checkpoint, guidance, "coco_fid30k", 3),
        _model(checkpoint, guidance, ckpt),
        n_prompts,
        ("stage", None),
    )
    return write_results(folder, res, samples)


def write_drawbench_run(
    folder: Path, run_id: str, *, ckpt: int, guidance: float, clip: dict[str, float] | None = None
) -> Path:
    """A DrawBench-style run over :data:`DRAWBENCH` (the prompts of ``raters_ui.synthetic``), seeds 0-1 at
    sr32: CLIP score per image (``clip[prompt_id]``, default by checkpoint), OCR on Text prompts."""
    checkpoint = f"/ckpt/model{ckpt}"
    samples = []
    for pid, prompt, cat in DRAWBENCH:
        for seed in (0, 1):
            rel = f"images/sr32/{pid}/{seed}.png"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(png(f"{run_id}/{rel}", 32))
            row = {
                "prompt_id": pid,
                "prompt": prompt,
                "category": cat,
                "seed": seed,
                "stage": "sr32",
                "path": rel,
                "clip_score": (clip or {}).get(pid, 20.0 + ckpt) + 0.5 * seed,
            }
            if cat == "Text":
                row["ocr_exact_match"] = 0.0
            samples.append(row)
    metrics = {}
    for group in ("Colors", "Counting", "Positional", "Text", "overall"):
        rows = [s for s in samples if group in ("overall", s["category"])]
        m = sum(s["clip_score"] for s in rows) / len(rows)
        metrics[group] = {
            "n_prompts": {"value": len(rows) // 2},
            "n_images": {"value": len(rows)},
            "clip_score": {"value": m, "ci_low": m - 2, "ci_high": m + 2, "n": len(rows), "level": 0.95},
        }
        if group in ("Text", "overall"):
            metrics[group]["ocr_exact_match"] = {
                "value": 0.0,
                "ci_low": 0.0,
                "ci_high": 0.49,
                "n": 4,
                "level": 0.95,
                "method": "wilson",
            }
    info = {k: INFO[k] for k in ("clip_score", "ocr_exact_match")}
    prompts = {c: tuple(pid for pid, _, cat in DRAWBENCH if cat == c) for _, _, c in DRAWBENCH}
    res = _results(
        run_id,
        "drawbench",
        "drawbench",
        {"name": "drawbench"},
        metrics,
        info,
        _config(run_id, checkpoint, guidance, "drawbench", 3),
        _model(checkpoint, guidance, ckpt),
        8,
        ("category", "sr32"),
        prompts,
    )
    return write_results(folder, res, samples)


# --- the report tests' assets ---------------------------------------------------------------------

SWEEP = {0: (1.0, 3.0, 6.0), 1: (1.0, 4.0)}  # checkpoint -> guidance weights
SYS1, SYS2 = "drawbench-run-sys1", "drawbench-run-sys2"  # raters_ui.synthetic's run ids


@dataclass
class Assets:
    root: Path
    sweep: Path
    drawbench: list[Path]
    db: Path
    verdict: Path

    @property
    def run_ids(self) -> list[str]:
        return [coco_id(c, w) for c, ws in SWEEP.items() for w in ws] + [SYS1, SYS2]


def coco_id(ckpt: int, w: float) -> str:
    return f"coco-ckpt{ckpt}/guidance.base={w:g}"


def sys1_clip_higher(pid: str) -> bool:
    """Prompts 1-6: sys1 has the higher CLIP score; 7-8: sys2."""
    return int(pid.rsplit("-", 1)[1]) <= 6


def simulate(db, made, choose) -> None:
    from raters_ui import assign
    from raters_ui.db import Assignment, Item

    for label, token in made.tokens.raters.items():
        rater = assign.find_rater(db, token)
        rng = random.Random(label)
        while (screen := assign.current_screen(db, rater)) is not None:
            with db.read() as s:
                kind = s.get(Item, s.get(Assignment, screen.assignment_id).item_id).kind
            fid, aln = choose(label, screen.assignment_id, kind, rng)
            assign.submit(db, rater, screen.assignment_id, fid, aln)


def make_assets(root: Path) -> Assets:
    from raters_ui.synthetic import make_study, side_of

    sweep = root / "runs" / "sweep"
    for ckpt, weights in SWEEP.items():
        for w in weights:
            write_coco_run(sweep / f"ckpt{ckpt}" / f"guidance.base={w:g}", coco_id(ckpt, w), ckpt=ckpt, guidance=w)
    clip1 = {pid: 30.0 if sys1_clip_higher(pid) else 10.0 for pid, _, _ in DRAWBENCH}
    clip2 = {pid: 20.0 for pid, _, _ in DRAWBENCH}
    db_runs = [
        write_drawbench_run(root / "runs" / "db1", SYS1, ckpt=0, guidance=3.0, clip=clip1).parent,
        write_drawbench_run(root / "runs" / "db2", SYS2, ckpt=1, guidance=3.0, clip=clip2).parent,
    ]
    db, made = make_study(root / "study", name="demo", n_prompts=8, n_images=1, raters=2, ratings_per_item=2)

    def choose(label, aid, kind, rng):  # alignment: always sys1; fidelity: indifferent
        return "indifferent", side_of(db, aid, "sys1")

    simulate(db, made, choose)
    db.dispose()
    row = VerdictRow(
        output="clip_score",
        group="overall",
        metric="clip_score",
        metric_version="1",
        higher_is_better=True,
        baseline=20.0,
        candidate=21.0,
        delta=1.0,
        improvement=1.0,
        ci_low=-0.5,
        ci_high=2.5,
        n_prompts=8,
        max_worse=0.5,
        verdict="inconclusive",
        prompts_to_decide=40,
    )
    verdict = Verdict(
        baseline={"run_id": SYS2},
        candidate={"run_id": SYS1},
        benchmark="drawbench",
        prompts={"count": 8, "sha256": "0" * 64},
        seeds=[0, 1],
        level=0.95,
        n_boot=1000,
        seed=0,
        thresholds={},
        rows=[row],
        overall="inconclusive",
        exit_code=3,
    )
    path = write_verdict(root / "regress", verdict)
    return Assets(root, sweep, db_runs, root / "study" / "study.db", path)
