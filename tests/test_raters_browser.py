"""A real browser (headless Debian Chromium via Playwright) against the real server.

It rates an item and checks the blinding as the browser sees it (the two sets on a screen have
identical natural sizes and byte lengths, though the systems' images are 96 px and 64 px); a
double click says "Saved."; and after a server restart the first click on "Submit and continue"
saves the answers. The screenshot of the rating page is kept in
``test-artifacts/raters-rating-page.png``.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from raters_ui.commands import app_env, streamlit_command
from raters_ui.db import Rating
from raters_ui.storage import PAD_CHUNK, png_chunks
from raters_ui.synthetic import make_study
from tests.conftest import REPO, require_chromium

ARTIFACTS = REPO / "test-artifacts"
SECRET_SYSTEMS = ("imagen-secret-xl", "dalle-rival")
SIZES = {"imagen-secret-xl": 96, "dalle-rival": 64}  # the sizes must not reach the page
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SUBMIT = "Submit and continue"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The rater app as `imagen-bench raters` runs it, restartable on the same port."""

    def __init__(self, db, folder: Path) -> None:
        self.db, self.folder, self.port = db, folder, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        with open(self.folder / "streamlit.log", "a") as log:
            self.proc = subprocess.Popen(
                streamlit_command("127.0.0.1", self.port),
                stdout=log,
                env=app_env(self.db.url, "demo"),
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("streamlit did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path):
    db, made = make_study(
        tmp_path, systems=SECRET_SYSTEMS, sizes=SIZES, n_prompts=3, raters=1, ratings_per_item=1, n_images=8
    )
    srv = Server(db, tmp_path)
    srv.start()
    try:
        yield db, made, srv
    finally:
        srv.stop()


class PatientBrowser:
    """A browser whose pages wait as long as a loaded CI machine needs.

    Under two pytest-xdist workers the other worker may hold both cores with torch, and a cold
    Streamlit page (its JS bundle, the websocket, the first script run) then took over Playwright's
    default 30 s to fire "load". Every wait here is for a condition, so a longer ceiling costs
    nothing when the machine is quiet.
    """

    NAVIGATION_MS = 120_000
    ACTION_MS = 60_000

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        page.set_default_navigation_timeout(self.NAVIGATION_MS)
        page.set_default_timeout(self.ACTION_MS)
        return page

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture
def browser():
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield PatientBrowser(b)
        finally:
            b.close()


def open_rating_page(browser, made, srv: Server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{srv.base}/?token={made.tokens.raters['rater-001']}")
    page.get_by_role("button", name="Start").click(timeout=60_000)  # past the instructions
    page.get_by_text(SUBMIT).wait_for(timeout=60_000)
    page.wait_for_function(
        "() => Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length >= 16", timeout=60_000
    )
    page.get_by_role("radiogroup").nth(1).wait_for(timeout=60_000)
    return page


APP = '[data-testid="stApp"]'
IDLE = f'{APP}[data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def wait_until_idle(page, timeout: float = 120_000) -> None:
    """Connected to the server and no script run going or requested: the condition Streamlit's own end-to-end
    tests wait on, so what the page shows is the result of every click sent so far (a generous ceiling; no
    fixed sleep, so a loaded machine only makes it wait longer)."""
    page.locator(IDLE).wait_for(timeout=timeout)


def answer(page, fidelity: str, alignment: str) -> None:
    groups = page.get_by_role("radiogroup")
    assert groups.count() == 2
    groups.nth(0).get_by_text(fidelity).click()
    groups.nth(1).get_by_text(alignment).click()


def stored_answers(db) -> dict[str, str]:
    with db.read() as s:
        return dict(s.execute(select(Rating.question, Rating.choice)).all())


@pytest.mark.browser
def test_browser_rates_one_item_and_it_is_stored(server, browser, tmp_path: Path):
    db, made, srv = server
    page = open_rating_page(browser, made, srv)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "raters-rating-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    html = page.content()
    for word in (*SECRET_SYSTEMS, "drawbench-run", str(tmp_path), "store"):
        assert word not in html, word
    alts = page.locator("img").evaluate_all("els => els.map(e => e.alt)")
    assert sorted(a for a in alts if a.startswith("Set ")) == sorted(
        f"Set {s}, image {k}" for s in "AB" for k in range(1, 9)
    )
    srcs = page.locator("img").evaluate_all("els => els.map(e => new URL(e.src).pathname)")
    assert all(s.startswith("/media/") and s.endswith(".png") for s in srcs)
    assert page.get_by_text("0 of 3 items rated").is_visible()
    assert page.get_by_text("Which set of images is of higher quality?").first.is_visible()

    answer(page, "I prefer set A", "I am indifferent")
    page.get_by_text(SUBMIT).click()
    page.get_by_text("1 of 3 items rated").wait_for(timeout=60_000)
    assert stored_answers(db) == {"fidelity": "A", "alignment": "indifferent"}


@pytest.mark.browser
def test_the_two_sets_have_identical_natural_sizes_and_bytes(server, browser):
    _, made, srv = server
    page = open_rating_page(browser, made, srv)
    images = page.locator("img[alt^='Set ']").evaluate_all(
        "els => els.map(e => [e.alt, e.naturalWidth, e.naturalHeight, new URL(e.src).pathname])"
    )
    assert len(images) == 16
    assert {(w, h) for _, w, h, _ in images} == {(96, 96)}  # not 96 for one set and 64 for the other
    bodies = {}
    for alt, _, _, path in images:
        with urllib.request.urlopen(srv.base + path, timeout=10) as r:
            assert r.headers["Content-Type"] == "image/png"
            bodies[alt] = r.read()
    assert len({len(b) for b in bodies.values()}) == 1  # one byte length for both sets
    for data in bodies.values():
        assert [kind for kind, _ in png_chunks(data)] == [b"IHDR", b"IDAT", PAD_CHUNK, b"IEND"]
        assert not any(word.encode() in data for word in SECRET_SYSTEMS)


@pytest.mark.browser
def test_a_double_click_says_saved(server, browser):
    db, made, srv = server
    page = open_rating_page(browser, made, srv)
    answer(page, "I prefer set B", "I prefer set A")
    page.get_by_text(SUBMIT).dblclick()
    page.get_by_text("1 of 3 items rated").wait_for(timeout=60_000)
    page.get_by_text("Saved.").wait_for(timeout=30_000)
    wait_until_idle(page)  # the second click reached the server before "Saved." was drawn: its run is over now
    assert page.get_by_text("Saved.").is_visible() and not page.get_by_text("already recorded").count()
    assert stored_answers(db) == {"fidelity": "B", "alignment": "A"}


@pytest.mark.browser
@pytest.mark.parametrize("answered", ["before", "after"])
def test_the_first_click_after_a_server_restart_saves(server, browser, answered: str):
    db, made, srv = server
    page = open_rating_page(browser, made, srv)
    if answered == "before":
        answer(page, "I prefer set A", "I prefer set B")
    srv.stop()
    page.locator(f'{APP}:not([data-test-connection-state="CONNECTED"])').wait_for(timeout=60_000)  # it noticed
    srv.start()
    wait_until_idle(page)  # the page reconnects on its own
    if answered == "after":
        answer(page, "I prefer set A", "I prefer set B")
    page.get_by_text(SUBMIT).click()
    page.get_by_text("1 of 3 items rated").wait_for(timeout=60_000)
    assert page.get_by_text("Saved.").is_visible()
    assert stored_answers(db) == {"fidelity": "A", "alignment": "B"}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2
