"""A virtual display for the napari tests: Xvfb, started once per session unless one is set.

Without Xvfb and without a display the GUI tests skip, except when ``WORKBENCH_REQUIRE_GUI=1``
(``.ci/run`` sets it, and installs Xvfb), where they fail instead of silently not running.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def display():
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        message = "napari tests need a display: install Xvfb (apt-get install xvfb) or set DISPLAY"
        if os.environ.get("WORKBENCH_REQUIRE_GUI") == "1":
            pytest.fail(message)
        pytest.skip(message)
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
