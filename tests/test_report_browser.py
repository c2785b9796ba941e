"""The report page in headless Chromium, opened from file:// as a reader would: every image and plot
loads, every run id is on the page, and nothing is fetched from anywhere else."""

from __future__ import annotations

import pytest

from harness.cli import main as cli
from tests.conftest import REPO, require_chromium
from tests.helpers.report_runs import make_assets
from tests.test_raters_browser import PatientBrowser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.browser
def test_report_page_loads_every_image_offline_and_names_every_run(tmp_path):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    assets = make_assets(tmp_path / "assets")
    out = tmp_path / "report"
    try:
        cli(
            [
                "report",
                f"runs=[{assets.sweep},{assets.drawbench[0]},{assets.drawbench[1]}]",
                "study=demo",
                f"db={assets.db}",
                f"verdict={assets.verdict}",
                f"out={out}",
                "study_analysis.n_boot=200",
            ]
        )
    except SystemExit as err:
        pytest.fail(f"report exited with {err.code}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = PatientBrowser(browser).new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.images).map(i => ({
                alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))""")
            text = page.inner_text("body")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-page.png"), full_page=True)
        finally:
            browser.close()
    n_png = len(list((out / "plots").glob("*.png"))) + len(list((out / "grids").glob("*.png")))
    assert len(images) == n_png >= 12
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    assert all(i["alt"].strip() for i in images)  # every image says what it shows
    for run_id in assets.run_ids:
        assert run_id in text, run_id
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
