"""report.html opened in headless Chromium (Playwright): its plotly figures draw, offline."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from test_report import _fake_sweep

from workbench.experiments import collect_results, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        message = "browser tests need Chromium (apt-get install chromium)"
        if os.environ.get("WORKBENCH_REQUIRE_GUI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


def test_the_report_opens_with_its_figures(browser, tmp_path):
    from PIL import Image

    spec = _fake_sweep(tmp_path)
    _, report = write_report(spec.sweep_dir)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    page.wait_for_selector(".plotly-graph-div .main-svg", timeout=30_000)
    assert errors == []
    assert all(url.startswith("file:") or url.startswith("data:") for url in requests), requests  # nothing fetched
    assert page.locator(".plotly-graph-div").count() == 2
    dice = collect_results(spec.sweep_dir).query("metric == 'dice' and region != 'mean' and stratum == 'all'")
    expected_bars = len(dice.drop_duplicates(["loss", "beta", "region"]))
    assert expected_bars >= 8
    assert page.locator(".plotly-graph-div").first.locator("g.point path").count() == expected_bars
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 20 and pixels.shape[0] > 900
    page.close()
