"""``imagen-bench <command> [overrides...]``: dispatch to one Hydra app per command.

Commands are found through :data:`COMMANDS`, a :class:`~harness.registry.Registry` of specs naming lazy
``"module:function"`` strings (as lm-eval registers its models and tasks), so the CLI statically imports none
of the parts that own them: each part keeps its command in its own module (``drawbench.command``, ``raters_ui.commands``,
...). A command module exposes ``main()`` (a Hydra app made with :func:`harness.cli.hydra_app.command`)
and optionally ``translate_args(args) -> args`` to turn positional arguments into overrides
(``imagen-bench fid DIR_A DIR_B`` → ``a=DIR_A b=DIR_B``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from harness.cli.hydra_app import report_user_error
from harness.cli.preflight import check_overrides
from harness.errors import UserError
from harness.registry import Registry, load_target


@dataclass(frozen=True)
class CommandSpec:
    target: str  # "package.module:function" of the Hydra app
    help: str
    args: str | None = None  # function of the same module turning positional arguments into overrides
    example: str = ""

    def module(self) -> ModuleType:
        return importlib.import_module(self.target.split(":", 1)[0])

    def entry(self) -> Callable[[], Any]:
        return load_target(self.target, "command")

    def translate(self, args: list[str]) -> list[str]:
        fn = getattr(self.module(), self.args or "translate_args", None)
        return fn(args) if fn is not None else args


COMMANDS: Registry[CommandSpec] = Registry(
    "command",
    {
        "info": CommandSpec(
            "harness.cli.commands.info:main",
            "build a model on the meta device and print its stages and parameter counts (JSON)",
            example="imagen-bench info model=imagen_paper",
        ),
        "train": CommandSpec(
            "harness.cli.commands.train:main",
            "train one stage of the cascade on an image-caption folder",
            example="imagen-bench train data.root=world/train stage=base32 train.steps=2000",
        ),
        "sample": CommandSpec(
            "harness.cli.commands.sample:main",
            "sample images from a cascade for prompts and seeds",
            example="imagen-bench sample checkpoint=runs/cascade prompts='[a red circle]' seeds='[0,1,2,3]'",
        ),
        "eval": CommandSpec(
            "harness.cli.commands.eval:main",
            "run a benchmark (COCO FID-30K, a prompt suite, ...) and write results.json",
            example="imagen-bench eval benchmark=drawbench checkpoint=runs/cascade sampler=ddim sampler.steps=25",
        ),
        "fid": CommandSpec(
            "harness.cli.commands.fid:main",
            "FID/KID between two image folders: imagen-bench fid DIR_A DIR_B [mode=clean]",
            example="imagen-bench fid runs/a/images/sr128 runs/b/images/sr128",
        ),
        "drawbench": CommandSpec(
            "drawbench.command:main",
            "render DrawBench (8 images per prompt) and score it per category",
            example="imagen-bench drawbench checkpoint=runs/cascade benchmark.categories=[Colors,Text]",
        ),
        "study": CommandSpec(
            "raters_ui.commands:study_main",
            "create, export and analyse human preference studies",
            args="study_args",
            example="imagen-bench study create my-study runs='[runs/a,runs/b]'",
        ),
        "raters": CommandSpec(
            "raters_ui.commands:raters_main",
            "start the Streamlit rater app on a study database",
            args="raters_args",
            example="imagen-bench raters my-study port=8501",
        ),
        "regress": CommandSpec(
            "harness.cli.commands.regress:main",
            "regression gate: is the candidate checkpoint worse than the baseline? (exit 0/1/3)",
            example="imagen-bench regress baseline=runs/db-main candidate=ckpt/new benchmark=drawbench",
        ),
        "report": CommandSpec(
            "reports.command:main",
            "the ablation comparison report of runs (HTML + Markdown): tables, guidance curves, "
            "categories, study, grids",
            args="report_args",
            example="imagen-bench report runs=runs/guidance-sweep study=my-study out=reports/sweep",
        ),
        "meta-eval": CommandSpec(
            "harness.cli.commands.meta_eval:main",
            "which metric agrees with people: score human-labelled images, print each metric's agreement",
            example="imagen-bench meta-eval labels=tifa160/labels.jsonl metrics=[clip_score,vqascore]",
        ),
        "demo": CommandSpec(
            "harness.cli.commands.demo:main", "the offline end-to-end demo", example="imagen-bench demo"
        ),
        "data": CommandSpec(
            "benchmarks.world.command:main",
            "write datasets (the procedural world: train/test splits and its prompt suite)",
            example="imagen-bench data world out=world n_train=4000 n_test=500",
        ),
    },
    check=lambda spec: isinstance(spec, CommandSpec),
    expected="a harness.cli.CommandSpec",
)


def register_command(name: str, target: str, help: str, args: str | None = None, example: str = "") -> None:
    """Add a command (e.g. from a plugin) without editing this file."""
    COMMANDS.register(name, CommandSpec(target, help, args, example))


def usage() -> str:
    lines = ["usage: imagen-bench <command> [key=value ...] [--help]", "", "commands:"]
    lines += [f"  {name:<10} {spec.help}" for name, spec in COMMANDS.items()]
    lines += [
        "",
        (
            "'imagen-bench <command> --help' describes one command; "
            "'imagen-bench <command> --cfg job' prints its resolved config."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"imagen-bench: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    spec = COMMANDS[name]
    if any(a in ("-h", "--help") for a in rest):
        from harness.cli.preflight import command_help

        print(command_help(name, spec.target, spec.help, example=spec.example))
        return
    try:
        app = spec.entry()  # a target that does not import is one line too
        rest = spec.translate(rest)
        check_overrides(name, rest)
    except UserError as err:
        report_user_error(name, err)
        raise SystemExit(err.exit_code) from None
    sys.argv = [f"imagen-bench {name}", *rest]
    try:
        app()
    except ValueError as err:  # Hydra's own check of its flags (e.g. -m together with --cfg)
        if not str(err).startswith("Only one of"):
            raise
        report_user_error(name, UserError(str(err)))
        raise SystemExit(2) from None
