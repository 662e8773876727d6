"""`workbench lab` and the loss explorer in JupyterLab, driven in headless Chromium (Playwright).

The explorer test opens ``01_loss_explorer`` in a JupyterLab served from a copy of the notebooks,
runs every cell from the menu, drags the ``dilate`` slider and checks that the loss values change
and the plotly figures are drawn; screenshots go to the test's folder (the README's picture of the
explorer at its defaults comes from ``test_explorer_layout.py``). The server, its kernels and the
page are shut down whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _jupyterlab import quiet_settings

from workbench.lab import KERNEL_DISPLAY_NAME, running_lab

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def heatmap_images(page) -> list[str]:
    """The data URLs of every drawn plotly heatmap (plotly draws heatmaps as SVG images)."""
    return page.eval_on_selector_all(".js-plotly-plot image", "images => images.map(e => e.getAttribute('href'))")




def test_workbench_lab_serves_the_notebooks_with_this_python_and_prints_the_url(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "lab", "--no-browser"], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **quiet_settings(tmp_path / "lab")},
    )
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            match = re.search(r"(http://127\.0\.0\.1:(\d+)/lab/tree/01_loss_explorer\.ipynb\?token=(\w+))",
                              process.stdout.readline())
            url = match and match.groups()
        assert url, "workbench lab printed no explorer URL"
        _, port, token = url
        api = f"http://127.0.0.1:{port}/api"
        specs = get_json(f"{api}/kernelspecs?token={token}")
        python3 = specs["kernelspecs"]["python3"]["spec"]
        assert python3["display_name"] == KERNEL_DISPLAY_NAME
        assert python3["argv"][0] == sys.executable
        assert any(str(tmp_path) in arg for arg in python3["argv"]), "kernels start in the project directory"
        listing = {item["name"] for item in get_json(f"{api}/contents?token={token}")["content"]}
        assert {"01_loss_explorer.ipynb", "04_audit.ipynb"} <= listing
        assert {path.name for path in (tmp_path / "runs" / "lab").iterdir()} == listing  # the working copies
        with pytest.raises(urllib.error.HTTPError, match="403"):
            get_json(f"{api}/contents")  # the token is required
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_the_explorer_runs_in_jupyterlab_and_a_slider_changes_the_loss(browser, tmp_path):
    from PIL import Image

    notebooks = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shots = [tmp_path / "explorer-loaded.png", tmp_path / "explorer-moved.png"]
    with open(tmp_path / "lab.log", "w") as log, running_lab(
        notebooks, project_dir=tmp_path, env=quiet_settings(tmp_path / "lab"), log=log,
    ) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page_errors = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        try:
            page.goto(lab.notebook_url("01_loss_explorer.ipynb"))
            kernel = page.locator(".jp-Toolbar-kernelName")
            kernel.wait_for(timeout=60_000)
            page.wait_for_function(
                "name => document.querySelector('.jp-Toolbar-kernelName')?.textContent.includes(name)",
                arg=KERNEL_DISPLAY_NAME, timeout=60_000,
            )
            idle = page.get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle")
            idle.wait_for(timeout=60_000)  # the kernel is up
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            values = page.locator(".wb-value")
            values.first.wait_for(timeout=240_000)  # the first run of a fresh install compiles the loss kernels
            figures = page.locator(".js-plotly-plot .main-svg")
            figures.first.wait_for(timeout=30_000)
            assert page.locator(".js-plotly-plot").count() >= 2  # component bars and gradient slices
            assert page.locator(".js-plotly-plot .hm, .js-plotly-plot image").count() >= 1, "no heatmap drawn"
            before = values.all_inner_texts()
            assert len(before) == 2 and all(float(v) > 0 for v in before)
            table_before = page.locator(".wb-components").inner_text()
            idle.wait_for(timeout=60_000)
            heatmaps_before = heatmap_images(page)
            show_the_widget = "document.querySelector('.wb-values').closest('.jp-OutputArea').scrollIntoView({block: 'start'})"
            page.evaluate(show_the_widget)
            page.screenshot(path=str(shots[0]))

            slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(r"^dilate$")))
            handle = slider.locator(".noUi-handle")
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            released = time.perf_counter()
            page.wait_for_function(
                "before => [...document.querySelectorAll('.wb-value')].map(e => e.textContent).join() !== before",
                arg=",".join(before), timeout=30_000, polling=20,
            )
            seconds = time.perf_counter() - released
            page.wait_for_function(
                "before => JSON.stringify([...document.querySelectorAll('.js-plotly-plot image')]"
                ".map(e => e.getAttribute('href'))) !== before",
                arg=json.dumps(heatmaps_before), timeout=30_000, polling=20,
            )
            redrawn = time.perf_counter() - released
            idle.wait_for(timeout=60_000)
            after = values.all_inner_texts()
            assert after != before
            assert slider.locator(".widget-readout").inner_text() != "0", "the dilate slider did not move"
            assert page.locator(".wb-components").inner_text() != table_before
            assert page.locator(".js-plotly-plot .main-svg").count() >= 2
            page.evaluate(show_the_widget)
            page.screenshot(path=str(shots[1]))

            # Another loss replaces the gradient panels' traces (a different trace set, not a restyle).
            page.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=re.compile(r"^loss$"))) \
                .locator("select").select_option("iwl_cc")
            page.locator(".wb-value[data-loss='iwl_cc']").wait_for(timeout=30_000)
            page.get_by_text("iwl_cc and dc_ce: |∂L/∂logits|").wait_for(timeout=30_000)
            assert page.locator(".js-plotly-plot .gtitle", has_text="iwl_cc: loss per component").count() == 1
            print(f"explorer (64³ phantom): values updated {seconds:.2f} s and slices redrawn {redrawn:.2f} s after "
                  "releasing the slider")
            assert page_errors == []
        except BaseException:
            page.screenshot(path=str(tmp_path / "explorer-failed.png"), full_page=True)
            raise
        finally:
            page.close()
    for shot in shots:
        assert Image.open(shot).size[0] >= 1400


def test_the_kernelspec_runs_this_python_in_the_project_directory(tmp_path):
    from workbench.lab import write_kernelspec

    spec = json.loads(write_kernelspec(tmp_path / "jupyter", tmp_path / "project").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"] and "{connection_file}" in spec["argv"]
    assert spec["argv"][-1] == f"--IPKernelApp.exec_lines=__import__('os').chdir({str(tmp_path / 'project')!r})"
    assert spec["display_name"] == KERNEL_DISPLAY_NAME and spec["language"] == "python"


def test_start_lab_names_a_missing_folder(tmp_path):
    from workbench.lab import start_lab

    with pytest.raises(FileNotFoundError, match="nope"):
        start_lab(tmp_path / "nope")


def test_a_busy_port_is_an_error_not_a_hang(tmp_path):
    import socket

    from workbench.lab import start_lab

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with open(tmp_path / "lab.log", "w") as log, pytest.raises(OSError, match=f"Port {port} .* cannot be used"):
            start_lab(tmp_path, port=port, log=log, timeout=60)
