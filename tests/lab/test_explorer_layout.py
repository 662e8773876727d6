"""The loss explorer's layout in JupyterLab at a 1280 px wide window (headless Chromium, Playwright).

``01_loss_explorer`` is copied to the test's folder, opened in a JupyterLab served from there (the
file browser open, as JupyterLab starts), run from the menu, and measured: the component table and
the slices' colour bar must be drawn whole, not clipped by a scroll box, the output area or the
window, and both figures must fit the output area's width. The notebook is never saved, and the
committed one is not touched. A screenshot of the explorer at its defaults goes to the test's folder
(and to ``$WORKBENCH_SCREENSHOT_DIR`` when set: that is how ``docs/images/explorer.png`` is made).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from _jupyterlab import quiet_settings

from workbench.lab import KERNEL_DISPLAY_NAME, running_lab

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
VIEWPORT = {"width": 1280, "height": 1400}  # tall enough to show the whole explorer in one screenshot

CLIPPING_BOXES = """element => {
    // Every ancestor inside the notebook's scroller whose overflow box hides part of `element`: `element`
    // reaches past its rectangle, or it is a widget's scroll box holding more than it shows.
    const clipped = [];
    const box = element.getBoundingClientRect();
    const scroller = element.closest('.jp-WindowedPanel-outer');
    for (let node = element.parentElement; node && node !== scroller; node = node.parentElement) {
        const style = getComputedStyle(node);
        if (![style.overflowX, style.overflowY].some(value => value !== 'visible')) continue;
        const rect = node.getBoundingClientRect();
        const cuts = box.top < rect.top - 1 || box.bottom > rect.bottom + 1
            || box.left < rect.left - 1 || box.right > rect.right + 1;
        const widget = node.classList.contains('jupyter-widgets');
        const scrolls = widget
            && (node.scrollHeight > node.clientHeight + 1 || node.scrollWidth > node.clientWidth + 1);
        if (cuts || scrolls) {
            clipped.push(`${node.tagName}.${node.className}: ${node.scrollWidth}x${node.scrollHeight} shown in `
                         + `${node.clientWidth}x${node.clientHeight}`);
        }
    }
    return clipped;
}"""




def rect(locator) -> dict[str, float]:
    """The element's bounding client rectangle (left, top, right, bottom), in CSS px of the page."""
    return locator.evaluate("e => { const r = e.getBoundingClientRect(); "
                            "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }")


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (inner["left"] >= outer["left"] - slack and inner["right"] <= outer["right"] + slack
            and inner["top"] >= outer["top"] - slack and inner["bottom"] <= outer["bottom"] + slack)


def run_the_explorer(page, url: str) -> None:
    """Open the notebook, run all cells from the menu and wait for the widget's values and figures."""
    page.goto(url)
    page.wait_for_function(
        "name => document.querySelector('.jp-Toolbar-kernelName')?.textContent.includes(name)",
        arg=KERNEL_DISPLAY_NAME, timeout=60_000,
    )
    idle = page.get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle")
    idle.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.locator(".wb-value").first.wait_for(timeout=240_000)  # a fresh install compiles the loss kernels first
    page.locator(".js-plotly-plot .colorbar").first.wait_for(timeout=60_000)
    idle.wait_for(timeout=60_000)


def test_the_component_table_and_the_colour_bar_are_whole_at_1280_px(browser, tmp_path):
    committed = {path.name: path.read_bytes() for path in NOTEBOOKS.iterdir() if path.is_file()}
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOKS / "01_loss_explorer.ipynb", notebooks)
    shot = tmp_path / "explorer-1280.png"
    with open(tmp_path / "lab.log", "w") as log, running_lab(
        notebooks, project_dir=tmp_path, env=quiet_settings(tmp_path / "lab"), log=log,
    ) as lab:
        page = browser.new_page(viewport=VIEWPORT)
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        try:
            run_the_explorer(page, lab.notebook_url("01_loss_explorer.ipynb"))
            assert page.locator(".jp-FileBrowser").is_visible(), "the file browser should take its usual room"
            assert "What to try" in page.locator(".wb-hint").inner_text()

            table = page.locator(".wb-components")
            output = page.locator(".jp-OutputArea-output", has=table)
            assert table.evaluate(CLIPPING_BOXES) == []
            assert inside(rect(table), rect(output)), (rect(table), rect(output))
            rows = table.locator("tbody tr")
            assert rows.count() >= 9 and rows.last.is_visible()

            for figure in page.locator(".js-plotly-plot").all():  # bars (with their legend) and slices
                drawn, room = rect(figure.locator(".main-svg").first), rect(output)
                assert room["left"] - 1 <= drawn["left"] and drawn["right"] <= room["right"] + 1, (drawn, room)

            colour_bars = page.locator(".js-plotly-plot .colorbar")
            assert colour_bars.count() == 1  # the gradient panels share one scale
            slices = page.locator(".js-plotly-plot", has=page.locator(".colorbar"))
            slices.scroll_into_view_if_needed()
            colour_bar = rect(colour_bars.first)
            viewport = {"left": 0, "top": 0, "right": VIEWPORT["width"], "bottom": VIEWPORT["height"]}
            for name, outer in (("figure", rect(slices.locator(".main-svg").first)),
                                ("output area", rect(page.locator(".jp-OutputArea-output", has=slices))),
                                ("notebook", rect(page.locator(".jp-WindowedPanel-outer"))), ("window", viewport)):
                assert inside(colour_bar, outer), (name, colour_bar, outer)
            assert colour_bars.first.evaluate(CLIPPING_BOXES) == []
            assert colour_bars.first.locator(".cbtitle").text_content().strip() == "|∂L/∂logits|"
            page.evaluate("document.querySelector('.wb-values').closest('.jp-OutputArea')"
                          ".scrollIntoView({block: 'start'})")
            page.screenshot(path=str(shot))
            assert page_errors == []
        except BaseException:
            page.screenshot(path=str(tmp_path / "explorer-1280-failed.png"), full_page=True)
            raise
        finally:
            page.close()
    assert {path.name: path.read_bytes() for path in NOTEBOOKS.iterdir() if path.is_file()} == committed
    if os.environ.get("WORKBENCH_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["WORKBENCH_SCREENSHOT_DIR"]) / "explorer.png")
