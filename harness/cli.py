"""``imagen-bench <command> [overrides...]``: dispatch to one Hydra app per command.

Commands are found through :data:`COMMANDS`, a registry of lazy ``"module:function"`` strings (as
lm-eval registers its models and tasks), so the CLI statically imports none of the parts that own
them: each part keeps its command in its own module (``drawbench.command``, ``raters_ui.commands``,
...). A command module exposes ``main()`` (a Hydra app made with :func:`harness.hydra_app.command`)
and optionally ``translate_args(args) -> args`` to turn positional arguments into overrides
(``imagen-bench fid DIR_A DIR_B`` → ``a=DIR_A b=DIR_B``).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from harness.errors import UserError
from harness.hydra_app import report_user_error


@dataclass(frozen=True)
class CommandSpec:
    target: str  # "package.module:function" of the Hydra app
    help: str
    args: str | None = None  # function of the same module turning positional arguments into overrides

    def module(self) -> ModuleType:
        return importlib.import_module(self.target.split(":", 1)[0])

    def entry(self) -> Callable[[], Any]:
        return getattr(self.module(), self.target.split(":", 1)[1])

    def translate(self, args: list[str]) -> list[str]:
        fn = getattr(self.module(), self.args or "translate_args", None)
        return fn(args) if fn is not None else args


COMMANDS: dict[str, CommandSpec] = {
    "info": CommandSpec("harness.commands.info:main",
                        "build a model on the meta device and print its stages and parameter counts (JSON)"),
    "train": CommandSpec("harness.commands.train:main", "train one stage of the cascade on an image-caption folder"),
    "sample": CommandSpec("harness.commands.sample:main", "sample images from a cascade for prompts and seeds"),
    "eval": CommandSpec("harness.commands.eval:main",
                        "run a benchmark (COCO FID-30K, a prompt suite, ...) and write results.json"),
    "fid": CommandSpec("harness.commands.fid:main",
                       "FID/KID between two image folders: imagen-bench fid DIR_A DIR_B [mode=clean]"),
    "drawbench": CommandSpec("drawbench.command:main",
                             "render DrawBench (8 images per prompt) and score it per category"),
    "study": CommandSpec("raters_ui.commands:study_main", "create, export and analyse human preference studies",
                         args="study_args"),
    "raters": CommandSpec("raters_ui.commands:raters_main", "start the Streamlit rater app on a study database",
                          args="raters_args"),
    "demo": CommandSpec("harness.commands.demo:main", "the offline end-to-end demo"),
    "data": CommandSpec("benchmarks.world.command:main", "write datasets (the procedural world: train/test splits and its prompt suite)"),
}


def register_command(name: str, target: str, help: str, args: str | None = None) -> None:
    """Add a command (e.g. from a plugin) without editing this file."""
    COMMANDS[name] = CommandSpec(target, help, args)


def usage() -> str:
    lines = ["usage: imagen-bench <command> [key=value ...] [--help]", "", "commands:"]
    lines += [f"  {name:<10} {spec.help}" for name, spec in COMMANDS.items()]
    lines += ["", "'imagen-bench <command> --help' describes one command; "
              "'imagen-bench <command> --cfg job' prints its resolved config."]
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
    try:
        rest = spec.translate(rest)
    except UserError as err:
        report_user_error(name, err)
        raise SystemExit(err.exit_code) from None
    sys.argv = [f"imagen-bench {name}", *rest]
    spec.entry()()


if __name__ == "__main__":
    main()
