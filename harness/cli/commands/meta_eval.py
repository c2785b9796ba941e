"""``imagen-bench meta-eval labels=<file> metrics=[...]``: each metric's agreement with human labels (see
:mod:`harness.evaluation.meta_eval`); prints the table and writes ``meta_eval.json``/``.csv`` in the run folder."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from harness.cli.hydra_app import command
from harness.errors import UserError


@command("meta-eval")
def main(cfg: DictConfig) -> dict:
    from harness.evaluation.meta_eval import format_table, run_meta_eval, write_outputs
    from harness.formats.labels import read_labels
    from harness.metrics.base import MetricEnv
    from imagen.devices import resolve_device

    if OmegaConf.is_missing(cfg, "labels"):
        raise UserError("no label file; usage: imagen-bench meta-eval labels=<file.jsonl|csv> metrics=[clip_score,...]")
    labels = read_labels(str(cfg.labels))
    env = MetricEnv(
        cfg, device=str(resolve_device(cfg.device)), cache_dir=cfg.paths.cache_dir, progress=bool(cfg.progress)
    )
    rows = run_meta_eval(cfg, labels, env)
    out = Path(HydraConfig.get().runtime.output_dir)
    facts = {
        "labels": str(labels.source),
        "kind": labels.kind,
        "images": len(labels.images),
        "labels_n": len(labels.ratings) or len(labels.votes),
        "metrics": list(cfg.metrics),
    }
    path = write_outputs(out, rows, facts)
    print(f"{labels.kind} labels: {facts['labels_n']} on {facts['images']} images ({labels.source})")
    print(format_table(rows))
    print(f"written: {path}")
    return {"rows": rows, **facts}


if __name__ == "__main__":
    main()
