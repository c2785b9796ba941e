"""``imagen-bench regress baseline=<run dir | checkpoint> candidate=<run dir | checkpoint> benchmark=<name>``.

Is the candidate worse than the baseline? Each side is an evaluated run folder (its ``results.json`` is
reused: nothing is regenerated or rescored), an unfinished run folder (resumed and scored with its own
config), or a checkpoint (evaluated here, in ``<this run>/baseline`` or ``/candidate``, on the benchmark's
prompts and seeds). Both sides must have scored the same prompts and seeds with the same metric versions
and reference statistics. Per metric and group: the candidate − baseline difference with a 95% paired-
bootstrap interval, signed as an improvement, and a verdict against ``thresholds.<output>.max_worse``
(default: the tolerance the output's metric declares).

Writes ``verdict.json`` (harness/formats/verdict.py) and ``junit.xml``, prints a table, and exits 0 (pass),
1 (fail), 3 (inconclusive) or 2 (usage error).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.cli.hydra_app import CommandExit, command
from harness.errors import UserError
from harness.evaluation.evaluate import run_benchmark
from harness.formats.results import RESULTS_NAME, Results, read_results
from harness.formats.verdict import Verdict, junit_xml, verdict_table, write_verdict
from harness.gate.regress import build_verdict, check_threshold_names
from harness.generation.provenance import environment
from harness.validation import finite_number

SIDES = ("baseline", "candidate")


def _is_checkpoint(path: Path) -> bool:
    return path.is_file() and path.suffix == ".safetensors" or (path.is_dir() and any(path.glob("*.safetensors")))


def _own_config(run_dir: Path, cfg: DictConfig) -> DictConfig:
    own = OmegaConf.load(run_dir / "config.yaml")
    name = own.get("benchmark", {}).get("name")
    if name != cfg.benchmark.name:
        raise UserError(f"run {run_dir} is a {name} run, not {cfg.benchmark.name}")
    with open_dict(own):
        own.paths = cfg.paths
        own.progress = cfg.progress
    return own


def evaluate_side(cfg: DictConfig, which: str, out: Path) -> tuple[Results, Path, bool]:
    """(results, run folder, reused) of one side."""
    path = Path(str(cfg[which])).expanduser()
    if (path / RESULTS_NAME).is_file():
        r = read_results(path)
        if r.suite != cfg.benchmark.name:
            raise UserError(f"{which} {path} holds {r.suite} results, not {cfg.benchmark.name}")
        return r, path, True
    if (path / "config.yaml").is_file():  # a run that was interrupted: resume it with its own settings
        run_benchmark(_own_config(path, cfg), path, task="eval")
        return read_results(path), path, False
    if _is_checkpoint(path):
        side = copy.deepcopy(cfg)
        with open_dict(side):
            side.checkpoint = str(path)
        run_benchmark(side, out / which, task="regress")
        return read_results(out / which), out / which, False
    raise UserError(
        f"{which}={path} is neither an evaluated run folder (with {RESULTS_NAME}), a run folder with "
        "config.yaml, nor a checkpoint (a .safetensors file or a folder of them)"
    )


def translate_args(args: list[str]) -> list[str]:
    """``thresholds.<output>.max_worse=v`` works for every output: the config lists none (each output declares
    its default tolerance), so the override adds the key (Hydra's ``++``) instead of failing on a missing one."""
    return [f"++{a}" if a.startswith("thresholds.") else a for a in args]


def thresholds(cfg: DictConfig) -> dict[str, float]:
    """The tolerances given on the command line or in a config: {output: max_worse}."""
    out = {}
    for name, spec in (cfg.thresholds or {}).items():
        value = spec.get("max_worse") if isinstance(spec, DictConfig) else None
        out[str(name)] = finite_number(value, f"thresholds.{name}.max_worse", minimum=0.0)
    return out


def run(cfg: DictConfig, out: Path) -> Verdict:
    """The gate as a Python call: evaluate what is missing, compare, write verdict.json (and junit.xml)."""
    limits = thresholds(cfg)
    check_threshold_names(limits)  # before any evaluation: a typo costs nothing
    if str(cfg.baseline) == str(cfg.candidate):
        print("imagen-bench regress: note: baseline and candidate are the same; the gate checks it against itself")
    sides = [evaluate_side(cfg, which, out) for which in SIDES]
    for which, (r, path, reused) in zip(SIDES, sides):
        print(f"{which}: run {r.run_id} ({path}){' reused' if reused else ''}")
    opts: dict[str, Any] = {
        "n_boot": cfg.n_boot,
        "n_boot_sets": cfg.n_boot_sets,
        "seed": cfg.seed,
        "level": cfg.get("level", 0.95),
        "cache_dir": cfg.paths.cache_dir,
    }
    verdict = build_verdict(sides[0][0], sides[1][0], (sides[0][1], sides[1][1]), limits, opts, environment())
    write_verdict(out, verdict)
    if cfg.junit:
        (out / "junit.xml").write_text(junit_xml(verdict), encoding="utf-8")
    return verdict


@command("regress")
def main(cfg: DictConfig) -> dict[str, Any]:
    out = Path(HydraConfig.get().runtime.output_dir)
    verdict = run(cfg, out)
    print(verdict_table(verdict))
    print(f"verdict: {out / 'verdict.json'}")
    raise CommandExit(verdict.exit_code)


if __name__ == "__main__":
    main()
