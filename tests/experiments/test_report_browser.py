"""report.html opened in headless Chromium (Playwright): every figure draws, offline, without a console error."""

from __future__ import annotations

import numpy as np
from test_report import _fake_sweep

from workbench.experiments import collect_results, write_report


def open_report(browser, path):
    """Open ``path`` in a new page; return (page, console errors, page errors, requested URLs)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console_errors, page_errors, requests = [], [], []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, console_errors, page_errors, requests


def assert_every_figure_is_drawn(page):
    """Every plotly container holds a drawn SVG (with marks or axes) of non-zero size."""
    containers = page.locator(".plotly-graph-div")
    assert containers.count() > 0
    for index in range(containers.count()):
        container = containers.nth(index)
        container.locator(".main-svg").first.wait_for(timeout=30_000)
        box = container.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, (index, box)
        drawn = container.locator(".main-svg path, .main-svg text, .main-svg image, canvas").count()
        assert drawn > 10, f"figure {index} holds only {drawn} drawn elements"


def test_the_quick_demos_report_opens_with_every_figure(browser, quick_demo, tmp_path):
    from PIL import Image

    _, sweep_dir = quick_demo
    page, console_errors, page_errors, requests = open_report(browser, sweep_dir / "report.html")
    assert_every_figure_is_drawn(page)
    assert console_errors == [] and page_errors == []
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests  # nothing fetched
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 20 and pixels.shape[0] > 900
    page.close()


def test_the_reports_bars_are_one_per_configuration_and_region(browser, tmp_path):
    spec = _fake_sweep(tmp_path)
    _, report = write_report(spec.sweep_dir)
    page, console_errors, page_errors, _ = open_report(browser, report)
    assert_every_figure_is_drawn(page)
    assert console_errors == [] and page_errors == []
    assert page.locator(".plotly-graph-div").count() == 2
    dice = collect_results(spec.sweep_dir).query("metric == 'dice' and region != 'mean' and stratum == 'all'")
    expected_bars = len(dice.drop_duplicates(["loss", "beta", "region"]))
    assert expected_bars >= 8
    assert page.locator(".plotly-graph-div").first.locator("g.point path").count() == expected_bars
    page.close()
