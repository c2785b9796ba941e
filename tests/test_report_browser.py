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
            page.screenshot(path=str(ARTIFACTS / "report-1280.png"))  # the first screen a reader sees
            wide = page.evaluate(LAYOUT)
            narrow_page = PatientBrowser(browser).new_page(viewport={"width": 390, "height": 844})
            narrow_page.goto((out / "report.html").as_uri(), wait_until="load")
            narrow_page.screenshot(path=str(ARTIFACTS / "report-390.png"))
            narrow = narrow_page.evaluate(LAYOUT)
            narrow_page.emulate_media(media="print")
            printed = narrow_page.evaluate(PRINTED)
            pdf = narrow_page.pdf(format="A4")
        finally:
            browser.close()
    n_png = len(list((out / "plots").glob("*.png"))) + len(list((out / "grids").glob("*.png")))
    assert len(images) == n_png >= 12
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    assert all(i["alt"].strip() for i in images)  # every image says what it shows
    for run_id in assets.run_ids:
        assert run_id in text, run_id
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    # at 1280 px nothing scrolls sideways, neither the page nor any table, and the summary is the first screen
    assert wide["page"] <= 1280 and wide["scrolling_tables"] == [], wide
    assert wide["first_section"] == "summary" and wide["summary_bottom"] <= 900, wide
    # on a phone the page itself keeps to the screen (a wide table scrolls inside its own box)
    assert narrow["page"] <= 390, narrow["wide_elements"]
    # printed: no contents list, no scroll boxes, figures kept whole; Chromium makes a multi-page PDF of it
    assert printed == {"nav": "none", "wrap_overflow": "visible", "figure_break": "avoid"}, printed
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") > 1


LAYOUT = """() => ({
    page: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth, inner: window.innerWidth, body: document.body.scrollWidth,
    scrolling_tables: Array.from(document.querySelectorAll('.table-wrap'))
        .filter(w => w.scrollWidth > w.clientWidth + 1).map(w => w.getAttribute('aria-label')),
    wide_elements: Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 ).slice(0, 8).map(e => e.tagName + "<" + e.parentElement.className + "." + e.className + ":" + (e.textContent || "").slice(0, 50)),
    first_section: document.querySelector('main section').id,
    summary_bottom: Math.round(document.getElementById('summary').getBoundingClientRect().bottom),
})"""
PRINTED = """() => ({
    nav: getComputedStyle(document.querySelector('nav')).display,
    wrap_overflow: getComputedStyle(document.querySelector('.table-wrap')).overflowX,
    figure_break: getComputedStyle(document.querySelector('figure')).breakInside,
})"""
