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


def test_the_findings_report_draws_every_figure_in_one_colour_per_loss(browser, tmp_path):
    """The report that leads with findings: banner, findings table, training curves, recall by stratum,
    gallery tiles; no empty figure, no console error, and each loss drawn in its colour everywhere."""
    from test_findings import make_sweep

    from workbench.viz.figures import LOSS_COLOURS

    sweep_dir = make_sweep(tmp_path, converged=False)
    _, report = write_report(sweep_dir)
    page, console_errors, page_errors, requests = open_report(browser, report)
    assert_every_figure_is_drawn(page)
    assert console_errors == [] and page_errors == []
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
    assert page.locator("#not-converged").is_visible()
    assert page.locator("#findings").bounding_box()["y"] < page.locator(".plotly-graph-div").first.bounding_box()["y"]
    tiles = page.locator("figure.tile img")
    assert tiles.count() >= 2
    assert all(tiles.nth(i).evaluate("img => img.complete && img.naturalWidth == 96") for i in range(tiles.count()))
    traces = page.evaluate(
        # points from _fullData: plotly >= 6 ships arrays base64-encoded, which only plotly.js decodes
        """() => [...document.querySelectorAll('.plotly-graph-div')].flatMap((div, index) => div.data.map((trace, j) => ({
               index, name: String(trace.name), type: trace.type,
               colour: (trace.type === 'bar' ? trace.marker.color : (trace.line || {}).color) || null,
               points: ((div._fullData[j] || {}).y || (div._fullData[j] || {}).z || []).length || 0})))"""
    )
    figures = {trace["index"] for trace in traces}
    assert figures == set(range(page.locator(".plotly-graph-div").count()))
    for index in figures:  # no figure without a point
        assert sum(t["points"] for t in traces if t["index"] == index) > 0, index
    named = [t for t in traces if t["name"] in ("dc_ce", "blob", "loss=dc_ce", "loss=blob")]
    paper_names = {"Baseline (DC+CE)": "dc_ce", "Global + Blob": "blob"}  # the paper's Figure 3 names its rows
    named += [t for t in traces if t["name"] in paper_names]
    assert len({t["index"] for t in named}) == len(figures)  # every figure draws the losses by name
    for trace in named:
        loss = paper_names.get(trace["name"], trace["name"].removeprefix("loss="))
        assert trace["colour"] == LOSS_COLOURS[loss], trace
    page.screenshot(path=str(tmp_path / "findings.png"), full_page=True)
    page.close()
