"""``python -m harness.cli <command> ...``: the same entry as the ``imagen-bench`` script."""

from harness.cli import main

main()
