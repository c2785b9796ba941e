"""A real browser (headless Debian Chromium via Playwright) rates one item in the real server.

The screenshot of the rating page is kept in ``test-artifacts/raters-rating-page.png``.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from raters_ui.commands import app_env, streamlit_command
from raters_ui.db import Rating
from raters_ui.synthetic import make_study
from tests.conftest import REPO, require_chromium

ARTIFACTS = REPO / "test-artifacts"
SECRET_SYSTEMS = ("imagen-secret-xl", "dalle-rival")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


@pytest.fixture
def server(tmp_path: Path):
    db, made = make_study(tmp_path, systems=SECRET_SYSTEMS, n_prompts=3, raters=1, ratings_per_item=1,
                          n_images=8)
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(streamlit_command("127.0.0.1", port), env=app_env(db.url, "demo"),
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield db, made, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.browser
def test_browser_rates_one_item_and_it_is_stored(server, tmp_path: Path):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    db, made, base = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/?token={made.tokens.raters['rater-001']}")
            page.get_by_text("Submit and continue").wait_for(timeout=60_000)
            page.wait_for_function("() => Array.from(document.images).filter("
                                   "i => i.complete && i.naturalWidth > 0).length >= 16", timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "raters-rating-page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")

            html = page.content()
            for word in (*SECRET_SYSTEMS, "drawbench-run", str(tmp_path), "store"):
                assert word not in html, word
            alts = page.locator("img").evaluate_all("els => els.map(e => e.alt)")
            assert sorted(a for a in alts if a.startswith("Set ")) == sorted(
                f"Set {s}, image {k}" for s in "AB" for k in range(1, 9))
            srcs = page.locator("img").evaluate_all("els => els.map(e => new URL(e.src).pathname)")
            assert all(s.startswith("/media/") for s in srcs)
            assert page.get_by_text("0 of 3 items rated").is_visible()
            assert page.get_by_text("Which set of images is of higher quality?").first.is_visible()

            groups = page.get_by_role("radiogroup")
            assert groups.count() == 2
            groups.nth(0).get_by_text("I prefer set A").click()
            groups.nth(1).get_by_text("I am indifferent").click()
            page.get_by_text("Submit and continue").click()
            page.get_by_text("1 of 3 items rated").wait_for(timeout=60_000)
        finally:
            browser.close()
    with db.read() as s:
        rows = dict(s.execute(select(Rating.question, Rating.choice)).all())
    assert rows == {"fidelity": "A", "alignment": "indifferent"}
