"""Using `workbench lab` never changes `git status` (issue 22), driven in headless Chromium (Playwright).

The test copies the package and its notebooks (files only, with shutil) into a fresh git
repository under ``tmp_path``, starts ``workbench lab`` there with that copy first on
``PYTHONPATH`` (so its ``notebooks/`` are the originals the lab starts from), opens a notebook,
runs a cell, saves with Ctrl-S and stops the lab. The copy's ``git status --porcelain`` must then
be empty and the saved working copy must hold the output. The real checkout is only read.
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
from pathlib import Path

from _jupyterlab import quiet_settings

from workbench.lab import KERNEL_DISPLAY_NAME

CHECKOUT = Path(__file__).resolve().parents[2]
NOTEBOOK = "02_train_evaluate.ipynb"


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=workbench test", "-c", "user.email=test@workbench.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def committed_copy(repo: Path) -> None:
    """The package, its notebooks and the .gitignore of this checkout, committed in a new repository ``repo``."""
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for folder in ("workbench", "notebooks"):
        shutil.copytree(CHECKOUT / folder, repo / folder, ignore=ignore)
    shutil.copy(CHECKOUT / ".gitignore", repo / ".gitignore")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "copy")




def start_workbench_lab(repo: Path, tmp_path: Path, log) -> tuple[subprocess.Popen, str, str]:
    """``workbench lab`` run in ``repo`` on its copy of the package: the process, the notebook URL, its output."""
    env = {**os.environ, **quiet_settings(tmp_path / "lab"), "PYTHONPATH": str(repo)}
    process = subprocess.Popen([sys.executable, "-m", "workbench", "lab", "--no-browser"], cwd=repo, env=env,
                               text=True, stdout=subprocess.PIPE, stderr=log)
    deadline, printed = time.monotonic() + 180, []
    while time.monotonic() < deadline and process.poll() is None:
        printed.append(process.stdout.readline())
        if match := re.search(r"http://127\.0\.0\.1:(\d+)/lab\?token=(\w+)", printed[-1]):
            port, token = match.groups()
            return process, f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}", "".join(printed)
    process.kill()
    raise AssertionError(f"workbench lab printed no address:\n{''.join(printed)}\n{(tmp_path / 'lab.log').read_text()}")


def run_a_cell_and_save(page, url: str) -> None:
    """Open ``url``, add a cell printing the kernel's directory, run it and save the notebook with Ctrl-S."""
    page.goto(url)
    page.get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle").wait_for(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")  # command mode
    page.keyboard.press("b")  # a new code cell below, selected
    page.keyboard.press("Enter")  # edit it
    page.keyboard.type("import os; print('kernel in', os.getcwd())")
    page.keyboard.press("Shift+Enter")
    page.locator(".jp-OutputArea-output", has_text="kernel in").wait_for(timeout=60_000)
    page.keyboard.press("Control+s")
    page.locator(".jp-mod-dirty").wait_for(state="detached", timeout=30_000)  # the tab's unsaved mark is gone


def test_using_the_lab_leaves_git_status_clean(browser, tmp_path):
    repo = tmp_path / "repo"
    committed_copy(repo)
    originals = {path.name: path.read_bytes() for path in (repo / "notebooks").iterdir()}
    with open(tmp_path / "lab.log", "w") as log:
        process, url, printed = start_workbench_lab(repo, tmp_path, log)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            run_a_cell_and_save(page, url)
            page.screenshot(path=str(tmp_path / "lab-saved.png"))
        except BaseException:
            page.screenshot(path=str(tmp_path / "lab-failed.png"), full_page=True)
            raise
        finally:
            page.close()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    assert process.returncode == 0
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert {path.name: path.read_bytes() for path in (repo / "notebooks").iterdir()} == originals  # no checkpoints
    saved = json.loads((repo / "runs" / "lab" / NOTEBOOK).read_text())
    outputs = ["".join(output.get("text", "")) for cell in saved["cells"] if cell["cell_type"] == "code"
               for output in cell["outputs"]]
    assert outputs == [f"kernel in {repo}\n"]  # kernels run in the project directory, not in runs/lab
    assert not (repo / "runs" / "lab" / NOTEBOOK.replace(".ipynb", ".py")).exists()  # no jupytext pair written
    assert str(repo / "runs" / "lab") in printed, "workbench lab says where the working copies are"
    # the kernel's traffic is encrypted, so ipykernel's warning about plain TCP never reaches the console
    assert "without encryption" not in (tmp_path / "lab.log").read_text()
