"""``imagen-bench sample checkpoint=... prompts=[...] seeds=[...]``: sample the cascade.

Writes ``runs/<run_id>/images/<stage>/<prompt_id>/<seed>.png``, ``manifest.jsonl`` and a
``grid_<stage>.png`` per stage (rows: prompts, columns: seeds). Rerunning the same run_id
completes only what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.cli.hydra_app import command
from harness.errors import UserError
from harness.generation.generate import check_generation, generate
from harness.generation.grids import write_stage_grids
from harness.generation.runner import plan_work
from imagen.distributed import env_rank
from imagen.validation import seed_list


def read_prompts(cfg: DictConfig) -> list[str]:
    if cfg.get("prompts_file"):
        path = Path(cfg.prompts_file)
        if not path.is_file():
            raise UserError(f"prompts file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UserError(f"prompts file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
        prompts = [ln.strip() for ln in text.splitlines() if ln.strip()]
    else:
        prompts = [str(p) for p in (cfg.prompts or [])]
    if not prompts:
        raise UserError("no prompts given (prompts=[...] or prompts_file=...)")
    return prompts


@command("sample")
def main(cfg: DictConfig) -> dict:
    check_generation(cfg)
    seeds = seed_list(cfg.seeds, "seeds")
    prompts = read_prompts(cfg)
    work = plan_work(((f"prompt-{i:04d}", p, None) for i, p in enumerate(prompts)), seeds)
    result, _ = generate(cfg, work, HydraConfig.get().runtime.output_dir)
    if env_rank() == 0 and result.complete:
        grids = write_stage_grids(result.run_dir, result.records, result.stages, len(prompts), len(seeds))
        summary = {
            "run_dir": str(result.run_dir),
            "images": len(result.records),
            "generated": result.generated,
            "skipped": result.skipped,
            "grids": [str(g) for g in grids],
        }
        print(json.dumps(summary))
        return summary
    return {"run_dir": str(result.run_dir), "complete": result.complete}


if __name__ == "__main__":
    main()
