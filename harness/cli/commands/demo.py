"""``imagen-bench demo``: the whole product offline, on the procedural world, in one command.

Seven phases of ``imagen-bench`` commands, each command its own process (commands never import each other;
its output goes to ``<run>/logs/<name>.log``), with a progress line per phase here:

1. ``data world``: held-out world images, the FID/KID reference;
2. ``eval benchmark=world`` of the shipped final and early checkpoints (56 prompts × 8 seeds, every stage);
3. ``eval -m guidance.base=...``: a guidance sweep of the final checkpoint's base stage, and
   ``eval -m +experiment=thresholding_ablation``: none / static / dynamic thresholding at high guidance;
4. ``study create`` + ``study simulate``: final vs early with raters named ``simulated-NNN`` (the study stays
   open: the printed command starts the rater app for real raters); ``study export-labels`` + ``meta-eval``:
   each metric's agreement with the raters' alignment votes;
5. ``regress``: the early checkpoint as the candidate against the final one (a regression: exit code 1);
6. ``report``: the comparison report of all of it;
7. the summary: the report's path, the verdict and the rater-app command.

The two commands of phases 2 and 3 run side by side with ``threads`` CPU threads each (``parallel: 2``):
the tiny U-Nets are too narrow to use two threads well, so two one-thread processes get more done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.cli.hydra_app import command
from harness.errors import UserError
from harness.formats.files import atomic_write_bytes
from harness.formats.results import RESULTS_NAME, read_results
from harness.formats.values import MetricValue
from harness.formats.verdict import read_verdict

VERDICT_EXIT = {0: "PASS", 1: "FAIL", 3: "INCONCLUSIVE"}
PHASES = 7


class Demo:
    def __init__(self, cfg: DictConfig, out: Path) -> None:
        self.cfg, self.out, self.start = cfg, out, time.time()
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(
            os.environ,
            IMAGEN_BENCH_RUNS=str(out),
            IMAGEN_BENCH_STUDIES=str(out / "studies"),
            IMAGEN_BENCH_CACHE=str(cfg.paths.cache_dir),
        )
        self.step = 0

    def run(self, name: str, args: list[str], ok: tuple[int, ...] = (0,)) -> int:
        """One phase: ``imagen-bench <args>`` with its output in logs/<name>.log; one line here."""
        return self.run_together(name, {name: args}, ok)[name]

    def run_together(self, title: str, commands: dict[str, list[str]], ok: tuple[int, ...] = (0,)) -> dict[str, int]:
        """One phase of several commands, ``parallel`` at a time; a failure names the command and its log."""
        self.step += 1
        t0 = time.time()
        print(f"[{self.step}/{PHASES}] {title} ...", flush=True)
        codes: dict[str, int] = {}
        names = list(commands)
        width = max(1, int(self.cfg.get("parallel") or 1))
        for i in range(0, len(names), width):
            running = {}
            for name in names[i : i + width]:
                log = open(self.logs / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 — closed below
                running[name] = (
                    subprocess.Popen(
                        [sys.executable, "-m", "harness.cli", *commands[name]],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=self.env,
                        cwd=self.out,
                    ),
                    log,
                )
            for name, (proc, log) in running.items():
                codes[name] = proc.wait()
                log.close()
        for name, code in codes.items():
            if code not in ok:
                log_path = self.logs / f"{name}.log"
                lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                print("".join(lines[-15:]), file=sys.stderr)
                raise UserError(f"demo phase {name!r} failed (exit {code}); its log: {log_path}")
        print(f"      done in {time.time() - t0:.0f} s (total {(time.time() - self.start) / 60:.1f} min)", flush=True)
        return codes

    def generation(self) -> list[str]:
        c = self.cfg
        threads = [f"threads={c.threads}"] if c.threads else ["threads=null"]
        return [
            f"model={c.model}",
            f"sampler={c.sampler}",
            f"sampler.steps={c.steps}",
            f"steps.sr={c.sr_steps}",
            f"batch_size={c.batch_size}",
            f"channels_last={str(bool(c.channels_last)).lower()}",
            "progress=false",
            f"clip.model=local-dir:{c.tiny_clip}",
            "clip.pretrained=",
            *threads,
        ]

    def world_eval(self, run_id: str, checkpoint: str, metrics: list[str], *extra: str) -> list[str]:
        ref = self.out / "world" / "test" / "images"
        per_prompt = self.cfg.suite.get("images_per_prompt")
        seeds = (
            [
                f"benchmark.images_per_prompt={per_prompt}",
                f"benchmark.seeds=[{','.join(str(k) for k in range(int(per_prompt)))}]",
            ]
            if per_prompt
            else []
        )
        return [
            "benchmark=world",
            f"run_id={run_id}",
            f"checkpoint={checkpoint}",
            f"benchmark.metrics=[{','.join(metrics)}]",
            f"benchmark.reference={{root:'{ref}',dataset:world,split:test}}",
            *seeds,
            *self.generation(),
            *extra,
        ]


def _overall(run: Path, output: str) -> MetricValue | None:
    """The run's overall value of one output, or None (no results.json, or no number there)."""
    return read_results(run).value("overall", output) if (run / RESULTS_NAME).is_file() else None


def _bound(x: float | None) -> float:
    return float("nan") if x is None else x


def _compare(
    claim: str, better: MetricValue | None, worse: MetricValue | None, lower_is_better: bool, names: tuple[str, str]
) -> str:
    """One expected finding checked against the numbers: SHOWN (right direction, 95% intervals apart), RIGHT
    DIRECTION (intervals overlap) or NOT SHOWN; never adjusted to fit."""
    if better is None or worse is None or better.value is None or worse.value is None:
        return f"{claim}: NOT MEASURED (a run is missing)"
    b, w = better.value, worse.value
    cell = lambda r: f"{r.value:.3f} [{_bound(r.ci_low):.3f}, {_bound(r.ci_high):.3f}]"
    ahead = b < w if lower_is_better else b > w
    hi = lambda r, d: d if r.ci_high is None else r.ci_high
    lo = lambda r, d: d if r.ci_low is None else r.ci_low
    apart = hi(better, b) < lo(worse, w) if lower_is_better else lo(better, b) > hi(worse, w)
    verdict = "SHOWN" if ahead and apart else "RIGHT DIRECTION, intervals overlap" if ahead else "NOT SHOWN"
    return f"{claim}: {verdict} ({names[0]} {cell(better)} vs {names[1]} {cell(worse)}, 95% intervals)"


def findings(out: Path, cfg: DictConfig, verdict_code: int) -> list[str]:
    """What the demo is expected to show, each checked against its own results (written to findings.txt)."""
    g = cfg.sweep
    higher = [w for w in g.guidance if float(w) > 1]
    acc = {w: _overall(out / "guidance" / f"guidance.base={w}", "world_accuracy") for w in g.guidance}
    best = max(higher, key=lambda w: -1.0 if acc[w] is None else acc[w].value) if higher else None
    lines = [
        _compare(
            "final beats early on FID",
            _overall(out / "final", "fid"),
            _overall(out / "early", "fid"),
            True,
            ("final", "early"),
        ),
        _compare(
            "final beats early on world accuracy",
            _overall(out / "final", "world_accuracy"),
            _overall(out / "early", "world_accuracy"),
            False,
            ("final", "early"),
        ),
        (
            f"regress with early as the candidate fails: {'SHOWN' if verdict_code == 1 else 'NOT SHOWN'} "
            f"(exit code {verdict_code})"
        ),
    ]
    if best is not None and 1 in [float(w) for w in g.guidance]:
        one = next(w for w in g.guidance if float(w) == 1)
        lines.append(
            _compare(
                f"guidance above 1 raises world accuracy (best: {best})",
                acc[best],
                acc[one],
                False,
                (f"guidance {best}", "guidance 1"),
            )
        )
    th = {m: _overall(out / "thresholding" / f"thresholding.base={m}", "fid") for m in ("dynamic", "none")}
    lines.append(
        _compare(
            f"dynamic thresholding beats none on FID at guidance {g.thresholding_guidance}",
            th["dynamic"],
            th["none"],
            True,
            ("dynamic", "none"),
        )
    )
    return lines


def _summary(out: Path, verdict_code: int, found: list[str]) -> dict[str, Any]:
    verdict = read_verdict(out / "regress")
    values = {
        run: {k: _overall(out / run, k) for k in ("fid", "clip_score", "world_accuracy")} for run in ("final", "early")
    }
    pick = lambda run, k: None if values[run][k] is None else values[run][k].value
    return {
        "report": str(out / "report" / "report.html"),
        "verdict": verdict.overall,
        "verdict_exit_code": verdict_code,
        "final": {k: pick("final", k) for k in ("fid", "clip_score", "world_accuracy")},
        "early": {k: pick("early", k) for k in ("fid", "clip_score", "world_accuracy")},
        "findings": found,
    }


def _generate_and_score(d: Demo, cfg: DictConfig, out: Path) -> None:
    """Phases 1-3: the world's test split, the two checkpoints scored, the guidance and thresholding ablations."""
    s = cfg.sweep
    d.run(
        "world",
        [
            "data",
            "world",
            f"out={out / 'world'}",
            "n_train=0",
            f"n_test={cfg.world.n_test}",
            "suite_gt=false",
            "progress=false",
            "run_id=logs/data",
        ],
    )
    limit = cfg.suite.get("limit_per_category")
    quick = [f"benchmark.limit_per_category={limit}"] if limit else []
    d.run_together(
        "eval of the final and the early checkpoint on the world suite",
        {
            which: ["eval", *d.world_eval(which, cfg.checkpoints[which], list(cfg.suite.metrics), *quick)]
            for which in ("final", "early")
        },
    )
    subset = [f"benchmark.limit_per_category={s.limit_per_category}", "stop_at=base32"]
    d.run_together(
        "guidance sweep and thresholding ablation of the final checkpoint's base stage",
        {
            "guidance-sweep": [
                "eval",
                "-m",
                *d.world_eval(
                    "guidance",
                    cfg.checkpoints.final,
                    list(s.metrics),
                    *subset,
                    f"guidance.base={','.join(str(g) for g in s.guidance)}",
                ),
            ],
            "thresholding": [
                "eval",
                "-m",
                *d.world_eval(
                    "thresholding",
                    cfg.checkpoints.final,
                    list(s.metrics),
                    *subset,
                    "+experiment=thresholding_ablation",
                    f"guidance.base={s.thresholding_guidance}",
                ),
            ],
        },
    )


def _meta_eval(d: Demo, cfg: DictConfig, out: Path) -> None:
    """Phase 4, continued: the study's votes as human labels, and each metric's agreement with them."""
    labels = out / "studies" / "demo" / f"labels-{cfg.meta_eval.question}.jsonl"
    d.step -= 1
    d.run("study-labels", ["study", "export-labels", "demo", f"out={labels}", f"question={cfg.meta_eval.question}"])
    d.step -= 1
    metrics = ",".join(cfg.meta_eval.metrics)
    d.run(
        "meta-eval",
        [
            "meta-eval",
            "run_id=meta-eval",
            f"labels={labels}",
            f"metrics=[{metrics}]",
            "benchmark=world",
            f"clip.model=local-dir:{cfg.tiny_clip}",
            "clip.pretrained=",
            "progress=false",
        ],
    )


def _study_and_gate(d: Demo, cfg: DictConfig, out: Path) -> int:
    """Phases 4-5: the simulated human study and the regression gate (its exit code: the verdict)."""
    st = cfg.study
    d.run(
        "study-create",
        [
            "study",
            "create",
            "demo",
            f"runs=[{out / 'final'},{out / 'early'}]",
            f"ratings_per_item={st.ratings_per_item}",
            f"raters={st.raters}",
            "practice=0",
        ],
    )
    d.step -= 1  # create + simulate are one phase
    d.run("study-simulate", ["study", "simulate", "demo", f"simulate.raters={st.simulated}"])
    _meta_eval(d, cfg, out)
    limits = [f"thresholds.{k}.max_worse={v.max_worse}" for k, v in cfg.thresholds.items()]
    code = d.run(
        "regress",
        [
            "regress",
            "benchmark=world",
            "run_id=regress",
            f"baseline={out / 'final'}",
            f"candidate={out / 'early'}",
            *limits,
            *d.generation(),
        ],
        ok=(0, 1, 3),
    )
    return code


def run_demo(cfg: DictConfig, out: Path) -> dict[str, Any]:
    d = Demo(cfg, out)
    for which in ("final", "early"):
        if not Path(cfg.checkpoints[which]).is_dir():
            raise UserError(f"the shipped {which} checkpoint is missing: {cfg.checkpoints[which]}")
    _generate_and_score(d, cfg, out)
    code = _study_and_gate(d, cfg, out)
    found = findings(out, cfg, code)
    atomic_write_bytes(out / "findings.txt", ("\n".join(found) + "\n").encode("utf-8"))
    runs = ",".join(str(out / r) for r in ("final", "early", "guidance", "thresholding"))
    d.run(
        "report",
        [
            "report",
            f"notes={out / 'findings.txt'}",
            f"runs=[{runs}]",
            "study=demo",
            f"verdict={out / 'regress'}",
            f"out={out / 'report'}",
            f"meta_eval={out / 'meta-eval'}",
            "title=imagen-bench demo: the tiny cascade on the procedural world",
        ],
    )
    return _summary(out, code, found)


def _print_agreement(out: Path) -> None:
    """The metrics' agreement with the study's raters (meta-eval's table), named for what the raters are."""
    from harness.formats.meta_eval import META_EVAL_NAME, agreement_table, read_meta_eval

    if (out / "meta-eval" / META_EVAL_NAME).is_file():
        result = read_meta_eval(out / "meta-eval")
        print(f"\nAgreement with the study's raters ({result.labels_n} votes; the raters are simulated and follow")
        print("world_accuracy by construction, so its row checks the pipeline; real raters make it a finding):")
        print(agreement_table(result.rows))


@command("demo")
def main(cfg: DictConfig) -> dict[str, Any]:
    out = Path(HydraConfig.get().runtime.output_dir)
    summary = run_demo(cfg, out)
    print(f"[{PHASES}/{PHASES}] summary\n{json.dumps(summary, indent=2)}")
    _print_agreement(out)
    print(f"\nReport:   {summary['report']}")
    print(
        f"Verdict:  early checkpoint as the candidate against final: {summary['verdict'].upper()} "
        f"(exit code {summary['verdict_exit_code']}; {out / 'regress' / 'verdict.json'})"
    )
    print(
        f"Raters:   imagen-bench raters demo studies_dir={out / 'studies'}   (simulated raters are named "
        "simulated-NNN; the links printed there are for real raters)"
    )
    return summary


if __name__ == "__main__":
    main()
