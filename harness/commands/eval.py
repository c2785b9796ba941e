"""``imagen-bench eval benchmark=<name> ...``: run a benchmark and write results.json.

``benchmark=coco_fid30k`` is the COCO FID-30K protocol (FID/KID + CLIP score per stage); prompt
suites (``benchmark=drawbench|parti|geneval|t2i_compbench``) get CLIP score per category.
"""

from __future__ import annotations

import json

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.errors import UserError
from harness.hydra_app import command


@command("eval")
def main(cfg: DictConfig) -> dict | None:
    run_dir = HydraConfig.get().runtime.output_dir
    kind = cfg.benchmark.get("kind", "suite")
    if kind == "coco":
        from benchmarks.coco_eval import run_coco

        results = run_coco(cfg, run_dir)
    elif kind == "suite":
        from drawbench.evaluate import run_suite

        results = run_suite(cfg, run_dir, task="eval")
    else:
        raise UserError(f"unknown benchmark kind {kind!r} (coco or suite)")
    if results is None:
        return None
    summary = {"run_dir": run_dir, "suite": results.suite, "metrics": results.metrics}
    print(json.dumps(summary, default=float))
    return summary


if __name__ == "__main__":
    main()
