"""``imagen-bench demo``: the whole product offline, on the procedural world, in one command.

Nine phases, each an ``imagen-bench`` command run as its own process (commands never import each other;
its output goes to ``<run>/logs/<phase>.log``) with a progress line here:

1. ``data world``: held-out world images, the FID/KID reference;
2–3. ``eval benchmark=world`` of the shipped final and early checkpoints (56 prompts × 8 seeds, every stage);
4. ``eval -m guidance.base=...``: a guidance sweep of the final checkpoint's base stage;
5. ``eval +experiment=thresholding_ablation``: none / static / dynamic thresholding at high guidance;
6. ``study create`` + ``study simulate``: final vs early with raters named ``simulated-NNN`` (the study stays
   open: the printed command starts the rater app for real raters);
7. ``regress``: the early checkpoint as the candidate against the final one (a regression: exit code 1);
8. ``report``: the comparison report of all of it;
9. the summary: the report's path, the verdict and the rater-app command.
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

from harness.errors import UserError
from harness.hydra_app import command

VERDICT_EXIT = {0: "PASS", 1: "FAIL", 3: "INCONCLUSIVE"}


class Demo:
    def __init__(self, cfg: DictConfig, out: Path) -> None:
        self.cfg, self.out, self.start = cfg, out, time.time()
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, IMAGEN_BENCH_RUNS=str(out), IMAGEN_BENCH_STUDIES=str(out / "studies"),
                        IMAGEN_BENCH_CACHE=str(cfg.paths.cache_dir))
        self.step = 0

    def run(self, name: str, args: list[str], ok: tuple[int, ...] = (0,)) -> int:
        """One phase: ``imagen-bench <args>`` with its output in logs/<name>.log; one line here."""
        self.step += 1
        t0 = time.time()
        print(f"[{self.step}/9] {name} ...", flush=True)
        log = self.logs / f"{name}.log"
        with open(log, "w", encoding="utf-8") as f:
            code = subprocess.run([sys.executable, "-m", "harness.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                                  env=self.env, cwd=self.out).returncode
        if code not in ok:
            tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
            print(tail, file=sys.stderr)
            raise UserError(f"demo phase {name!r} failed (exit {code}); its log: {log}")
        print(f"      done in {time.time() - t0:.0f} s (total {(time.time() - self.start) / 60:.1f} min)", flush=True)
        return code

    def generation(self) -> list[str]:
        c = self.cfg
        threads = [f"threads={c.threads}"] if c.threads else ["threads=null"]
        return [f"model={c.model}", f"sampler={c.sampler}", f"sampler.steps={c.steps}", f"batch_size={c.batch_size}",
                "progress=false", f"clip.model=local-dir:{c.tiny_clip}", "clip.pretrained=", *threads]

    def world_eval(self, run_id: str, checkpoint: str, metrics: list[str], *extra: str) -> list[str]:
        ref = self.out / "world" / "test" / "images"
        return ["eval", "benchmark=world", f"run_id={run_id}", f"checkpoint={checkpoint}",
                f"benchmark.metrics=[{','.join(metrics)}]",
                f"benchmark.reference={{root:'{ref}',dataset:world,split:test}}", *self.generation(), *extra]


def _summary(out: Path, verdict_code: int) -> dict[str, Any]:
    verdict = json.loads((out / "regress" / "verdict.json").read_text())
    final = json.loads((out / "final" / "results.json").read_text())["metrics"]
    early = json.loads((out / "early" / "results.json").read_text())["metrics"]
    pick = lambda m, k: (m.get("overall") or {}).get(k, {}).get("value")  # noqa: E731
    return {"report": str(out / "report" / "report.html"), "verdict": verdict["overall"],
            "verdict_exit_code": verdict_code,
            "final": {k: pick(final, k) for k in ("fid", "clip_score", "world_accuracy")},
            "early": {k: pick(early, k) for k in ("fid", "clip_score", "world_accuracy")}}


def run_demo(cfg: DictConfig, out: Path) -> dict[str, Any]:
    d = Demo(cfg, out)
    for which in ("final", "early"):
        if not Path(cfg.checkpoints[which]).is_dir():
            raise UserError(f"the shipped {which} checkpoint is missing: {cfg.checkpoints[which]}")
    s = cfg.sweep
    d.run("world", ["data", "world", f"out={out / 'world'}", "n_train=0", f"n_test={cfg.world.n_test}",
                    "suite_gt=false", "progress=false", "run_id=logs/data"])
    d.run("eval-final", d.world_eval("final", cfg.checkpoints.final, list(cfg.suite.metrics)))
    d.run("eval-early", d.world_eval("early", cfg.checkpoints.early, list(cfg.suite.metrics)))
    subset = [f"benchmark.limit_per_category={s.limit_per_category}", "stop_at=base32"]
    d.run("guidance-sweep", ["-m", *d.world_eval("guidance", cfg.checkpoints.final, list(s.metrics), *subset,
                                                 f"guidance.base={','.join(str(g) for g in s.guidance)}")])
    d.run("thresholding", ["-m", *d.world_eval("thresholding", cfg.checkpoints.final, list(s.metrics), *subset,
                                               "+experiment=thresholding_ablation",
                                               f"guidance.base={s.thresholding_guidance}")])
    st = cfg.study
    d.run("study", ["study", "create", "demo", f"runs=[{out / 'final'},{out / 'early'}]",
                    f"ratings_per_item={st.ratings_per_item}", f"raters={st.raters}", "practice=0"])
    d.step -= 1  # create + simulate are one phase
    d.run("study", ["study", "simulate", "demo", f"simulate.raters={st.simulated}"])
    limits = [f"thresholds.{k}.max_worse={v}" for k, v in cfg.thresholds.items()]
    code = d.run("regress", ["regress", "benchmark=world", "run_id=regress", f"baseline={out / 'final'}",
                             f"candidate={out / 'early'}", *limits, *d.generation()], ok=(0, 1, 3))
    d.run("report", ["report", f"runs=[{out / 'final'},{out / 'early'},{out / 'guidance'},{out / 'thresholding'}]",
                     "study=demo", f"verdict={out / 'regress'}", f"out={out / 'report'}",
                     "title=imagen-bench demo: the tiny cascade on the procedural world"])
    return _summary(out, code)


@command("demo")
def main(cfg: DictConfig) -> dict[str, Any]:
    out = Path(HydraConfig.get().runtime.output_dir)
    summary = run_demo(cfg, out)
    print(f"[9/9] summary\n{json.dumps(summary, indent=2)}")
    print(f"\nReport:   {summary['report']}")
    print(f"Verdict:  early checkpoint as the candidate against final: {summary['verdict'].upper()} "
          f"(exit code {summary['verdict_exit_code']}; {out / 'regress' / 'verdict.json'})")
    print(f"Raters:   imagen-bench raters demo studies_dir={out / 'studies'}   (simulated raters are named "
          "simulated-NNN; the links printed there are for real raters)")
    return summary


if __name__ == "__main__":
    main()
