"""What the rater-latency clients share: the timed samples, the table's rows, CPU time from /proc, progress.

Used by ``benchmarks.scripts.rater_latency`` (the browser client and the table) and ``benchmarks.scripts.rater_apptest``
(the server-only client).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.scripts.timing import load_average

APP = Path(__file__).resolve().parents[2] / "raters_ui" / "app.py"
WAIT_S = 120.0  # a ceiling for any one wait: every wait is for a condition, so it costs nothing when quick
CLK = os.sysconf("SC_CLK_TCK")


class Unavailable(Exception):
    """A backend that cannot be measured here; its rows say why."""


@dataclass(frozen=True)
class Sample:
    """One timed submission: the screen submitted, the next one, epoch seconds of its moments."""

    old: int
    new: int
    ms: float
    t0: float
    dom: float | None  # the next screen's 16 <img> are in the page (browser only)
    t1: float


@dataclass
class Group:
    """One row of the table: a backend measured by one client (``browser`` or ``AppTest``)."""

    backend: str
    client: str
    samples: list[Sample] = field(default_factory=list)
    submitted: int = 0  # warm-ups included
    splits: dict[str, list[float]] = field(default_factory=dict)  # part -> ms per sample
    cpu: dict[str, float] = field(default_factory=dict)  # process group -> CPU s while rating
    failures: list[str] = field(default_factory=list)
    unavailable: str | None = None
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self) -> None:
        with self._lock:  # AppTest raters count from their own threads
            self.submitted += 1


def log(message: str) -> None:
    """Progress, on stderr (the table alone goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message} (load {load_average()})", file=sys.stderr, flush=True)


def collect(group: Group, results: list) -> None:
    """Each rater's samples, or why it failed (the others still count)."""
    for res in results:
        if isinstance(res, BaseException):
            group.failures.append(f"{type(res).__name__}: {(str(res).splitlines() or [''])[0][:200]}")
        else:
            group.samples.extend(res)


# ---- CPU time, from /proc ----------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The command name of /proc/<pid>/stat, then its fields from the third (state) on; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return [text[text.index("(") + 1 : text.rindex(")")], *text[text.rindex(")") + 2 :].split()]


def cpu_snapshot(server_pid: int | None) -> dict[str, dict[int, float]]:
    """CPU seconds so far, per process, of: the server (the Streamlit process, else this one), PostgreSQL's
    processes, and the browser (every other descendant of this process: Playwright's driver and Chromium)."""
    pids = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]
    stats = {pid: st for pid in pids if (st := _stat(pid))}
    me = os.getpid()
    server = server_pid if server_pid is not None else me

    def mine(pid: int) -> bool:
        for _ in range(64):  # up the parent chain
            pid = int(stats[pid][2]) if pid in stats else 0
            if pid <= 1:
                return False
            if pid == me:
                return True
        return False

    out: dict[str, dict[int, float]] = {"server": {}, "db": {}, "browser": {}}
    for pid, st in stats.items():
        group = "server" if pid == server else "db" if st[0] == "postgres" else "browser" if mine(pid) else None
        if group:
            out[group][pid] = (int(st[12]) + int(st[13])) / CLK  # utime + stime: fields 14 and 15 of stat
    return out


def cpu_since(before: dict[str, dict[int, float]], server_pid: int | None) -> dict[str, float]:
    """CPU seconds of each group since ``before`` (a process that ended meanwhile is not counted)."""
    after = cpu_snapshot(server_pid)
    return {k: sum(t - before[k].get(pid, 0.0) for pid, t in after[k].items()) for k in after}
