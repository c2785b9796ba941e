"""``imagen-bench drawbench model=... checkpoint=...``: DrawBench (or any prompt suite) end to end.

The same pipeline as ``imagen-bench eval benchmark=drawbench`` (:func:`harness.evaluation.evaluate.run_benchmark`),
recorded with ``task: drawbench``.
"""

from __future__ import annotations

import json

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.cli.hydra_app import command
from harness.evaluation.evaluate import run_benchmark


@command("drawbench")
def main(cfg: DictConfig) -> dict | None:
    run_dir = HydraConfig.get().runtime.output_dir
    results = run_benchmark(cfg, run_dir, task="drawbench")
    if results is None:
        return None
    summary = {"run_dir": run_dir, "suite": results.suite, "overall": results.metrics_json("overall")}
    print(json.dumps(summary, default=float))
    return summary


if __name__ == "__main__":
    main()
