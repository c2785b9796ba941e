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
    from harness.evaluation.meta_eval import run_meta_eval
    from harness.formats.labels import read_labels
    from harness.formats.meta_eval import MetaEval, agreement_table, write_meta_eval
    from harness.metrics.base import MetricEnv
    from imagen.devices import resolve_device
    from imagen.hashing import git_revision

    if OmegaConf.is_missing(cfg, "labels"):
        raise UserError("no label file; usage: imagen-bench meta-eval labels=<file.jsonl|csv> metrics=[clip_score,...]")
    labels = read_labels(str(cfg.labels))
    env = MetricEnv(
        cfg, device=str(resolve_device(cfg.device)), cache_dir=cfg.paths.cache_dir, progress=bool(cfg.progress)
    )
    rows = run_meta_eval(cfg, labels, env)
    out = Path(HydraConfig.get().runtime.output_dir)
    result = MetaEval(
        labels=str(labels.source),
        kind=labels.kind,
        images=len(labels.images),
        labels_n=len(labels.ratings) or len(labels.votes),
        metrics=[str(m) for m in cfg.metrics],
        rows=rows,
        git=git_revision(),
    )
    path = write_meta_eval(out, result)
    print(f"{labels.kind} labels: {result.labels_n} on {result.images} images ({labels.source})")
    print(agreement_table(rows))
    print(f"written: {path}")
    return {"rows": [r.__dict__ for r in rows], "labels_n": result.labels_n, "images": result.images}


if __name__ == "__main__":
    main()
