"""Rater app latency: "Submit and continue" to the next item drawn, 20 raters at once, SQLite vs PostgreSQL.

    nice -n 10 .venv/bin/python -m benchmarks.scripts.rater_latency [--raters 20] [--items 4] [--think 4]
        [--backends sqlite,postgres] [--no-apptest] [--postgres URL] [--seed 0]

For each backend a synthetic study is built (:func:`raters_ui.synthetic.make_study`: 2 systems, 8 images
of 256² px per set, every rater rates every item, no practice, no consent line) and measured twice:

* ``browser`` (end to end, the first row group): one Streamlit process started as ``imagen-bench raters``
  starts it (``streamlit_command`` + ``app_env``) and one headless Debian Chromium driving ``--raters``
  pages at once through Playwright's async API, each page in its own browser context with its own rater
  token: open the link, "Start", then per item wait a think time, answer with the keyboard (**A**, **B**)
  and submit with **Enter**, as the app's keyboard flow does. Timed *in the page* (``performance.now()``,
  so no Playwright round trip is in it): from that Enter's ``keydown`` (the event's own timestamp; a click
  on the button would count the same) until the *next* item's screen (a new assignment key) has all 16
  images loaded (``complete``, natural width > 0) and a frame has been drawn after that (the first task
  after the next animation frame). Checked on every DOM mutation and image load event, not by polling.
* ``AppTest`` (the server alone, the second row group): the same app under Streamlit's
  ``streamlit.testing.v1.AppTest``, ``--raters`` of them in as many threads of this process (as the server
  runs one script thread per session), each setting both answers and clicking "Submit and continue".
  Timed from the click to the end of the rerun it triggers (the submit callback and the whole script,
  deltas kept in memory): no websocket, no image transfer, no browser. On a 2-core machine the 20 pages
  of the first group take most of the CPU themselves; this group says what the server's code costs
  (the client: ``benchmarks.scripts.rater_apptest``; what both clients share: ``benchmarks.scripts.rater_load``).

The first submission of every rater is a warm-up and is not counted; the next ``--items`` are. Raters are
released together (browser: once every page has drawn its first item) and then wait a think time before
every item, uniform in [think/2, 3·think/2] s: 2 to 6 s by default, the fastest a careful rater plausibly
is (``raters_ui.quality`` takes 2 s as the floor); real raters take longer, so the load is a worst case.

Columns: ``n`` timed submissions; ``p50``/``p95``/``max`` of the latency in ms; ``p95 < 300 ms`` the target,
MET or NOT MET. ``p50 split`` places each submission on the database's timestamps (same machine, same
clock): *to server* from the Enter to the start of the rating's write transaction (``ratings.created_at``:
the websocket, waiting for the server, the form callback); *server* from there to the next item's
assignment (``assignments.assigned_at``: the commit, the rerun up to ``current_screen``); *to page* from
there until the next screen's 16 ``<img>`` are in the page (the rest of the rerun, the deltas, React;
for AppTest: the rest of the rerun); *images* from there until they are loaded and painted (16 ``/media``
requests served by the same Python process). The medians of the parts need not add up to the total's.
``CPU ms/sub`` is CPU time per submission (warm-ups included) while the raters were rating: the Streamlit
process (for AppTest: this process), PostgreSQL's processes (all of them on the machine), and Chromium
with the Playwright driver. ``s`` is the group's wall time, opening the pages included.

PostgreSQL runs in a fresh schema of the local ``test`` database, dropped at the end; if it is not
reachable its rows say "unavailable" and why. Browser, server and database share the machine's cores
with each other and with any other job: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.scripts.rater_apptest import run_apptest
from benchmarks.scripts.rater_load import WAIT_S, Group, Sample, Unavailable, collect, cpu_since, cpu_snapshot, log
from benchmarks.scripts.timing import load_average, machine

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

    from raters_ui.db import StudyDB

TARGET_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # as the browser tests
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # the tests' database (tests/conftest.py)
IMAGE_SIDE = 256  # a DrawBench study shows 256² or larger; the store keeps one common size
OPENING = 4  # pages opening at once: 20 cold Streamlit pages at once on 2 cores time out

# The keys of the screens on the page whose 16 images are loaded, or (drawn) whose 16 <img> elements exist
# (Streamlit container keys: st-key-set-a-<key>).
LOADED_JS = r"""
(drawn = false) => {
  const keys = [];
  for (const el of document.querySelectorAll('[class*="st-key-set-a-"]'))
    for (const c of el.classList) if (c.startsWith('st-key-set-a-')) keys.push(c.slice(13));
  return keys.filter((k) => {
    const imgs = document.querySelectorAll(`.st-key-set-a-${k} img, .st-key-set-b-${k} img`);
    return imgs.length === 16 && (drawn || Array.from(imgs).every((i) => i.complete && i.naturalWidth > 0));
  });
}
"""
# A screen is ready for the keyboard once the client component has put the focus on its questions.
READY_JS = f"""
() => {{
  const loaded = ({LOADED_JS})();
  const a = document.activeElement;
  return loaded.find((k) => a && a.closest(
    `.st-key-fidelity-${{k}}, .st-key-alignment-${{k}}, .st-key-submit-${{k}}`)) || null;
}}
"""
# Armed before the answers: resolves with the latency of the coming submission of screen `old`. Driven by
# events (DOM mutations, image loads) rather than by polling every frame, so the measurement asks 20 pages
# for no frames of its own. The end is the first task after the next frame once the images are loaded,
# i.e. after the frame that paints them.
ARM_JS = f"""
(old) => {{
  const loaded = {LOADED_JS};
  let t0 = null, tdom = null, over = false, resolve;
  window.__ibNext = new Promise((r) => {{ resolve = r; }});
  const observer = new MutationObserver(() => check());
  const onLoad = () => check();
  const onKey = (e) => {{ if (e.key === 'Enter' && t0 === null) {{ t0 = e.timeStamp; check(); }} }};
  const onClick = (e) => {{
    if (t0 !== null || !(e.target.closest && e.target.closest('[class*="st-key-submit-"]'))) return;
    t0 = e.timeStamp; check();
  }};
  const timer = setInterval(() => check(), 250);  // a safety net; events do the work
  const stop = setTimeout(() => {{ if (!over) finish(null); }}, {WAIT_S * 1000});
  function finish(value) {{
    over = true;
    observer.disconnect(); clearInterval(timer); clearTimeout(stop);
    window.removeEventListener('keydown', onKey, true);
    window.removeEventListener('click', onClick, true);
    document.removeEventListener('load', onLoad, true);
    resolve(value);
  }}
  function check() {{
    if (over || t0 === null) return;
    if (tdom === null && loaded(true).some((k) => k !== old)) tdom = performance.now();
    const next = loaded().find((k) => k !== old);
    if (next === undefined) return;
    over = true;
    requestAnimationFrame(() => setTimeout(() => {{
      const t1 = performance.now(), at = (t) => performance.timeOrigin + t;
      finish({{key: next, ms: t1 - t0, t0: at(t0), dom: at(tdom ?? t1), t1: at(t1)}});
    }}, 0));
  }}
  observer.observe(document.body, {{subtree: true, childList: true}});
  document.addEventListener('load', onLoad, true);  // image loads do not bubble, but they can be captured
  window.addEventListener('keydown', onKey, true);
  window.addEventListener('click', onClick, true);
}}
"""


def require_chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        sys.exit("error: Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        sys.exit("error: playwright is not installed in this environment (.venv/bin/pip install playwright)")
    return path


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """The URL of a fresh schema in the database ``base``, dropped afterwards (as tests/test_raters_db.py)."""
    import sqlalchemy as sa

    url = sa.engine.make_url(base)
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as err:
        raise Unavailable(f"PostgreSQL is not reachable on {host}:{port} ({err.strerror or err})") from None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.SQLAlchemyError as err:
        engine.dispose()
        first = (str(getattr(err, "orig", err)).strip().splitlines() or [type(err).__name__])[0]
        where = url.render_as_string(hide_password=True)
        raise Unavailable(f"cannot create a schema in {where}: {first}") from None
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def build_study(folder: Path, db_url: str | None, raters: int, items: int) -> tuple[StudyDB, list[str], list[str]]:
    """A study of ``items + 2`` items, each for every rater: a warm-up, the timed ones, and one more, so
    the last timed submission also leads to an item (not to the finish screen). Twice ``raters`` tokens:
    the browser's raters and AppTest's."""
    from raters_ui.synthetic import make_study

    sizes = {"sys1": IMAGE_SIDE, "sys2": IMAGE_SIDE}
    db, made = make_study(
        folder,
        db_url=db_url,
        n_prompts=items + 2,
        raters=2 * raters,
        ratings_per_item=2 * raters,
        n_images=8,
        sizes=sizes,
    )
    tokens = list(made.tokens.raters.values())
    return db, tokens[:raters], tokens[raters:]


@contextlib.contextmanager
def serve(db_url: str, folder: Path) -> Iterator[tuple[str, int]]:
    """The rater app as ``imagen-bench raters`` runs it, on a free port; yields (base URL, pid)."""
    from raters_ui.commands import app_env, streamlit_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base, logfile = f"http://127.0.0.1:{port}", folder / "streamlit.log"
    with open(logfile, "a") as out:
        proc = subprocess.Popen(
            streamlit_command("127.0.0.1", port),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=app_env(db_url, "demo"),
            cwd=folder,
        )
    try:
        deadline, health = time.monotonic() + WAIT_S, f"{base}/_stcore/health"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}: {logfile.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("streamlit did not become healthy in time")
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
            time.sleep(0.3)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the browser: Chromium pages against the real server ----------------------------------------------


async def open_rater(browser: Browser, link: str, gate: asyncio.Semaphore) -> tuple[Page, str]:
    """A page of its own context past the instructions, on its first item; returns (page, screen key)."""
    async with gate:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        page.set_default_timeout(WAIT_S * 1000)
        page.set_default_navigation_timeout(WAIT_S * 1000)
        await page.goto(link)
        await page.get_by_role("button", name="Start").click()
        key = await (await page.wait_for_function(READY_JS, polling=50)).json_value()
    return page, key


async def rate(page: Page, key: str, items: int, think: float, rng: random.Random, group: Group) -> list[Sample]:
    """Submit ``items + 1`` items by keyboard after a think time each; the first is the warm-up."""
    out = []
    for k in range(items + 1):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
        await page.evaluate(ARM_JS, key)
        for press in ("a", "b", "Enter"):  # set A on quality, set B on the caption, submit
            await page.keyboard.press(press)
        got = await asyncio.wait_for(page.evaluate("window.__ibNext"), WAIT_S + 30)
        if got is None:
            raise TimeoutError(f"screen {key}: the next item was not drawn within {WAIT_S:.0f} s")
        group.count()
        if k:
            out.append(
                Sample(int(key), int(got["key"]), got["ms"], got["t0"] / 1000, got["dom"] / 1000, got["t1"] / 1000)
            )
        key = await (await page.wait_for_function(READY_JS, polling=50)).json_value()
        if key != got["key"]:
            raise RuntimeError(f"screen {got['key']} was drawn, then screen {key}")
    return out


async def drive(
    chromium: str, base: str, server_pid: int, tokens: list[str], args: argparse.Namespace, group: Group
) -> None:
    """All raters in one browser: open every page (a few at a time), then release them together."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            gate = asyncio.Semaphore(OPENING)
            opened = await asyncio.gather(*(open_rater(browser, f"{base}/?token={t}", gate) for t in tokens))
            log(f"{group.backend} browser: {len(opened)} pages on their first item; rating")
            before = cpu_snapshot(server_pid)
            runs = [
                rate(page, key, args.items, args.think, random.Random(f"{args.seed}:{k}"), group)
                for k, (page, key) in enumerate(opened)
            ]
            collect(group, await asyncio.gather(*runs, return_exceptions=True))
            group.cpu = cpu_since(before, server_pid)
        finally:
            await browser.close()


# ---- results ------------------------------------------------------------------------------------------


def epoch(t: datetime) -> float:
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()  # SQLite gives naive UTC


def split(db: StudyDB, samples: list[Sample]) -> dict[str, list[float]]:
    """Each submission's parts in ms, from the database's timestamps (see the module doc)."""
    from sqlalchemy import select

    from raters_ui.db import Assignment, Rating

    with db.read() as s:
        rated = {
            a: epoch(t)
            for a, t in s.execute(select(Rating.assignment_id, Rating.created_at).where(Rating.question == "fidelity"))
        }
        assigned = {a: epoch(t) for a, t in s.execute(select(Assignment.id, Assignment.assigned_at))}
    out: dict[str, list[float]] = {"to server": [], "server": [], "to page": [], "images": []}
    for x in samples:
        if x.old in rated and x.new in assigned:
            out["to server"].append(1000 * (rated[x.old] - x.t0))
            out["server"].append(1000 * (assigned[x.new] - rated[x.old]))
            out["to page"].append(1000 * ((x.dom or x.t1) - assigned[x.new]))
            if x.dom is not None:
                out["images"].append(1000 * (x.t1 - x.dom))
    return out


def measure(backend: str, chromium: str, args: argparse.Namespace) -> list[Group]:
    """The browser group, then the AppTest group, on one study of this backend."""
    groups = [Group(backend, "browser")] + ([Group(backend, "AppTest")] if args.apptest else [])
    try:
        with tempfile.TemporaryDirectory(prefix=f"rater-latency-{backend}-") as tmp, contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres_schema(args.postgres)) if backend == "postgres" else None
            db, browser_tokens, apptest_tokens = build_study(Path(tmp), url, args.raters, args.items)
            stack.callback(db.dispose)
            for group in groups:
                start = time.perf_counter()
                if group.client == "browser":
                    with serve(db.url, Path(tmp)) as (base, pid):
                        asyncio.run(drive(chromium, base, pid, browser_tokens, args, group))
                else:
                    run_apptest(db.url, apptest_tokens, args, group)
                group.splits = split(db, group.samples)
                group.seconds = time.perf_counter() - start
                log(f"{backend} {group.client}: {len(group.samples)} timed in {group.seconds:.0f} s")
    except Unavailable as err:
        log(f"{backend}: unavailable: {err}")
        for group in groups:
            group.unavailable = str(err)
    return groups


HEADER = (
    f"{'backend':<9} {'client':<8} {'n':>4} {'p50':>6} {'p95':>6} {'max':>6}  {'p95 < 300 ms':<12}  "
    f"{'p50 split: to server/server/to page/images':<42}  {'CPU ms/sub: server/db/browser':<29} "
    f"{'s':>4}"
)


def row(g: Group) -> str:
    head = f"{g.backend:<9} {g.client:<8}"
    if g.unavailable:
        return f"{head} unavailable: {g.unavailable}"
    if not g.samples:
        return f"{head} no submission timed ({len(g.failures)} raters failed)"
    ms = [x.ms for x in g.samples]
    p95 = float(np.percentile(ms, 95))
    verdict = "MET" if p95 < TARGET_MS else "NOT MET"
    parts = " / ".join(f"{statistics.median(v):.0f}" if v else "-" for v in g.splits.values())
    cpu = " / ".join(
        f"{1000 * g.cpu[k] / max(1, g.submitted):.0f}" if g.cpu.get(k) else "-" for k in ("server", "db", "browser")
    )
    return (
        f"{head} {len(ms):>4} {statistics.median(ms):>6.0f} {p95:>6.0f} {max(ms):>6.0f}  {verdict:<12}  "
        f"{parts:<42}  {cpu:<29} {g.seconds:>4.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raters", type=int, default=20, help="raters submitting at once, one browser page each")
    p.add_argument("--items", type=int, default=4, help="timed submissions per rater (after one warm-up)")
    p.add_argument("--think", type=float, default=4.0, help="mean think time per item, s (uniform ±50%%)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--no-apptest", dest="apptest", action="store_false", help="skip the server-only AppTest rows")
    p.add_argument("--postgres", default=PG_BASE, help="PostgreSQL database to make a scratch schema in")
    p.add_argument("--seed", type=int, default=0, help="seeds the think times")
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgres"}:
        p.error(f"--backends takes sqlite and/or postgres, got {args.backends!r}")
    if args.raters < 1 or args.items < 1 or args.think < 0:
        p.error("--raters and --items must be at least 1, --think at least 0")
    chromium = require_chromium()
    start, load_start = time.perf_counter(), load_average()
    groups = [g for b in backends for g in measure(b, chromium, args)]
    groups.sort(key=lambda g: g.client != "browser")  # end to end first, then the server alone
    print(
        f'rater app: "Submit and continue" -> next item drawn, ms; {args.raters} raters at once, '
        f"{args.items} timed items each after 1 warm-up, think {args.think / 2:g}-{1.5 * args.think:g} s"
    )
    print(
        f"browser: end to end, one Streamlit server and {args.raters} headless Chromium pages on this "
        "machine, until the 16 images are loaded and painted;"
    )
    print(
        f"AppTest: the server's script alone, {args.raters} threads of streamlit.testing AppTest, "
        "until the rerun is done"
    )
    print(HEADER)
    for g in groups:
        print(row(g))
    for g in groups:
        for f in g.failures:
            print(f"  {g.backend} {g.client}: a rater failed: {f}")
    print(machine())
    print(
        f"load average {load_start} at the start, {load_average()} at the end; "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    if any(g.failures or (not g.samples and not g.unavailable) for g in groups):
        sys.exit(1)


if __name__ == "__main__":
    main()
