"""The command's log file gets the lines its terminal shows.

:class:`ConsoleLog` wraps ``sys.stdout`` and ``sys.stderr``: everything still reaches the terminal, and
each completed line is also appended to ``<run folder>/<task>.log`` — progress bars once, in their final
state (a bar redraws itself with ``\\r``; only the text after the last ``\\r`` of a line is kept).

Lines are held in memory until the run folder is accepted (:func:`accept_run_folder`: e.g. after the
folder's fingerprint matched), so a refused rerun leaves the folder exactly as it was. A command that
finishes without refusing anything has its lines written at the end.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, Self, TextIO

_current: ConsoleLog | None = None


class _Tee(io.TextIOBase):
    def __init__(self, stream: TextIO, sink: ConsoleLog) -> None:
        self._stream, self._sink, self._partial = stream, sink, ""

    def write(self, text: str) -> int:
        n = self._stream.write(text)
        pending = self._partial + text
        *lines, self._partial = pending.split("\n")
        for line in lines:
            self._sink.add(line.rsplit("\r", 1)[-1])
        return n

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ... of the real stream
        return getattr(self._stream, name)


class ConsoleLog:
    """Tee of stdout/stderr into ``path``, held back until the run folder is accepted."""

    def __init__(self, path: Path) -> None:
        self.path, self.accepted = path, False
        self._held: list[str] = []
        self._saved: tuple[TextIO, TextIO] | None = None

    def add(self, line: str) -> None:
        if not line.strip():
            return
        if self.accepted:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        else:
            self._held.append(line)

    def discard(self) -> None:
        """Forget the lines not yet written (a refused run must not touch its folder)."""
        self._held.clear()

    def accept(self) -> None:
        if self.accepted:
            return
        self.accepted = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        held, self._held = self._held, []
        for line in held:
            self.add(line)

    def __enter__(self) -> Self:
        global _current
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self), _Tee(sys.stderr, self)
        _current = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _current
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _Tee) and stream._partial.strip():
                self.add(stream._partial.rsplit("\r", 1)[-1])
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
        _current = None


def accept_run_folder() -> None:
    """Start writing the log into the run folder (called once the folder is known to be this run's)."""
    if _current is not None:
        _current.accept()
