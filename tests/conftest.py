"""Fixtures of the GUI tests: a virtual display for napari (Xvfb) and a headless Chromium (Playwright).

Without Xvfb (and no display) or without Chromium these tests skip with a message saying what to
install, except when ``WORKBENCH_REQUIRE_GUI=1`` (``.ci/run`` sets it and installs both), where
they fail instead of silently not running.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import monai  # noqa: F401  (before any test opens a napari viewer, see below)
import pytest
from _sessions import skip_or_fail

# MONAI imports torch._dynamo, which loads triton (on CUDA builds of torch); loading triton after a
# napari viewer has made an OpenGL context under Xvfb segfaults in dlopen. Tests that train after
# the viewer tests did: imported here, it is loaded first.

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def display():
    """An X display (``DISPLAY``): the one set, or an Xvfb started once per session."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        skip_or_fail("napari tests need a display: install Xvfb (apt-get install xvfb) or set DISPLAY", "WORKBENCH_REQUIRE_GUI")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    os.environ["DISPLAY"] = f":{number}"
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (``playwright install`` is not needed)."""
    if CHROMIUM is None:
        skip_or_fail("browser tests need Chromium (apt-get install chromium)", "WORKBENCH_REQUIRE_GUI")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """``workbench demo --quick`` run once per session: (its printed output, its sweep folder)."""
    import contextlib
    import io

    from workbench.cli import main

    out = tmp_path_factory.mktemp("quick-demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--quick", "-o", str(out)]) == 0
    return printed.getvalue(), out / "losses"
