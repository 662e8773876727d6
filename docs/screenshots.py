"""Regenerate the README's screenshots from a finished `workbench demo` folder.

    xvfb-run -a -s "-screen 0 1280x1024x24" python docs/screenshots.py runs/demo [--run cc-a1.0-b1.0-s0]

Writes docs/images/report.png (the sweep report in headless Chromium) and docs/images/audit.png
(the napari audit view of the run's case with the most missed lesions, on its largest miss).
Needs Chromium (`apt-get install chromium`) and a display (Xvfb).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pandas as pd

IMAGES = Path(__file__).resolve().parent / "images"


def report_screenshot(report: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(report.resolve().as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg")
        figure = page.locator(".plotly-graph-div").first
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="a `workbench demo` output folder")
    parser.add_argument("--run", default="cc-a1.0-b1.0-s0", help="run folder under losses/ to audit")
    args = parser.parse_args()
    sweep = args.demo / "losses"
    report_screenshot(sweep / "report.html", IMAGES / "report.png")
    run = sweep / args.run
    lesions = pd.read_parquet(run / "lesions.parquet")
    misses = lesions[(lesions["status"] == "FN") & (lesions["threshold"] == 0.5)].groupby("case_id").size()
    subprocess.run(["workbench", "audit", str(run), "--case", str(misses.idxmax()),
                    "--screenshot", str(IMAGES / "audit.png")], check=True)


if __name__ == "__main__":
    main()
