"""``imagen-bench <command> [overrides...]``: dispatch to one Hydra app per command.

Each command lives in ``harness/commands/<name>.py`` and exposes ``main()`` (a Hydra app)
and optionally ``translate_args(args) -> args`` to turn positional arguments into
overrides (``imagen-bench fid DIR_A DIR_B`` → ``a=DIR_A b=DIR_B``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from harness.errors import UserError
from harness.hydra_app import report_user_error

COMMANDS: dict[str, str] = {
    "info": "build a model on the meta device and print its stages and parameter counts (JSON)",
    "train": "train one stage of the cascade on an image-caption folder",
    "sample": "sample images from a cascade for prompts and seeds",
    "eval": "run a benchmark (COCO FID-30K, guidance sweeps, ...) and write results.json",
    "fid": "FID/KID between two image folders: imagen-bench fid DIR_A DIR_B [mode=clean]",
    "drawbench": "render DrawBench (8 images per prompt) and score it per category",
    "study": "create, export and analyse human preference studies",
    "raters": "start the Streamlit rater app on a study database",
    "report": "build comparison reports from result files",
    "regress": "regression gate: candidate vs baseline checkpoint",
    "demo": "the offline end-to-end demo",
}


def usage() -> str:
    lines = ["usage: imagen-bench <command> [key=value ...] [--help]", "", "commands:"]
    for name, text in COMMANDS.items():
        available = importlib.util.find_spec(f"harness.commands.{name}") is not None
        lines.append(f"  {name:<10} {text}{'' if available else '  (not yet available)'}")
    lines += ["", "Each command is a Hydra app: 'imagen-bench <command> --cfg job' prints its resolved config."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS or importlib.util.find_spec(f"harness.commands.{name}") is None:
        print(f"imagen-bench: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"harness.commands.{name}")
    try:
        if hasattr(module, "translate_args"):
            rest = module.translate_args(rest)
    except UserError as err:
        report_user_error(name, err)
        raise SystemExit(err.exit_code) from None
    sys.argv = [f"imagen-bench {name}", *rest]
    module.main()


if __name__ == "__main__":
    main()
