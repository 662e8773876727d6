"""`workbench lab` ends its JupyterLab server on SIGTERM (exit 143) and when it is killed outright (issue 21)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from workbench._process import child_pids, pid_alive


def _start_lab(tmp_path) -> tuple[subprocess.Popen, int, list[int]]:
    """``workbench lab`` on an empty folder, once it serves: the process, the port and the server's pid."""
    (tmp_path / "notebooks").mkdir()
    command = [sys.executable, "-m", "workbench", "lab", "--no-browser", "--dir", str(tmp_path / "notebooks")]
    process = subprocess.Popen(command, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline, port = time.monotonic() + 180, None
    while port is None:
        assert process.poll() is None and time.monotonic() < deadline, "workbench lab did not start"
        match = re.search(r"http://127\.0\.0\.1:(\d+)/lab\?token=", process.stdout.readline())
        port = match and int(match.group(1))
    servers = child_pids(process.pid)
    assert servers, "the JupyterLab server is a child of workbench lab"
    return process, port, servers


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _assert_stopped(servers: list[int], port: int) -> None:
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in servers) or _listening(port):
        assert time.monotonic() < deadline, f"JupyterLab still runs (pids {servers}, port {port})"
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_stops_the_server_and_exits_143(tmp_path):
    process, port, servers = _start_lab(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    # the server shares stderr and may still be logging its start-up on a busy machine: the line need not be last
    assert process.returncode == 143 and "workbench lab: terminated (SIGTERM)" in err.splitlines()
    _assert_stopped(servers, port)


@pytest.mark.slow
def test_the_server_ends_when_workbench_lab_is_killed(tmp_path):
    process, port, servers = _start_lab(tmp_path)
    process.kill()
    process.communicate(timeout=30)
    _assert_stopped(servers, port)
