"""``imagen-bench eval benchmark=<name> ...``: run a benchmark and write results.json.

The benchmark config names its runner (``_target_``) and metrics; the pipeline is
:func:`harness.evaluation.evaluate.run_benchmark` (``benchmark=coco_fid30k``: COCO FID-30K with FID/KID and CLIP
score per stage; ``benchmark=drawbench|parti|geneval|t2i_compbench``: the metrics per category).
"""

from __future__ import annotations

import json

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.cli.hydra_app import command
from harness.evaluation.evaluate import run_benchmark


@command("eval")
def main(cfg: DictConfig) -> dict | None:
    run_dir = HydraConfig.get().runtime.output_dir
    results = run_benchmark(cfg, run_dir, task="eval")
    if results is None:
        return None
    summary = {"run_dir": run_dir, "suite": results.suite, "metrics": results.metrics_json()}
    print(json.dumps(summary, default=float))
    return summary


if __name__ == "__main__":
    main()
