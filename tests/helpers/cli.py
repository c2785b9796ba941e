"""Run an ``imagen-bench`` command in the test's own process, as a user would type it."""

from __future__ import annotations

from typing import Any

from harness.cli import main as cli


def exit_code(args: list[str]) -> int:
    """The command's exit code (0 when it returns, the SystemExit code otherwise)."""
    try:
        cli(args)
    except SystemExit as err:
        return int(err.code or 0)
    return 0


def run_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command; ``capsys`` is pytest's fixture."""
    code = exit_code(args)
    out = capsys.readouterr()
    return code, out.out, out.err
