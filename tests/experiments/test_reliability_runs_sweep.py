"""Sweeps under interruptions and concurrency (issue 21): Ctrl-C / SIGTERM / SIGKILL of a running sweep, the
sweep folder's lock, and grid keys that are not notebook parameters. Subprocess tests on a tiny notebook."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _sweep_notebook import write_notebook

from workbench._process import child_pids, pid_alive
from workbench.cli import main
from workbench.experiments import load_sweep, run_sweep
from workbench.experiments.sweep import LOCK_FILE, SweepLockedError
from workbench.runs import is_complete, read_run


def _sweep_file(tmp_path: Path, grid: dict, fixed: dict | None = None) -> Path:
    write_notebook(tmp_path / "run.ipynb")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "demo", "notebook": "run.ipynb", "grid": grid, "fixed": fixed or {}}))
    return path


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _start_hanging_sweep(tmp_path: Path) -> tuple[subprocess.Popen, Path, int, list[int]]:
    """A sweep of runs s0, s1, s2 (one at a time) stopped in s1; returns it, its folder, s1's kernel pid and its children."""
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "s1").touch()  # run s1 sleeps while this file exists
    path = _sweep_file(tmp_path, {"seed": [0, 1, 2]}, {"hang_dir": str(hang)})
    command = [sys.executable, "-m", "workbench", "sweep", str(path), "--workers", "1", "--no-progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait(lambda: (hang / "s1.pid").exists() or process.poll() is not None, 120, "the sweep did not reach run s1")
    assert process.poll() is None, process.communicate()
    children = child_pids(process.pid)
    return process, load_sweep(path).sweep_dir, int((hang / "s1.pid").read_text()), children


def _assert_gone(pids: list[int], timeout: float = 15) -> None:
    _wait(lambda: not any(pid_alive(pid) for pid in pids), timeout, f"left running: {[p for p in pids if pid_alive(p)]}")


def _stray_temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(".*") if ".tmp-" in path.name or path.name.startswith(f".{LOCK_FILE}")]


@pytest.mark.parametrize(
    ("send", "status", "line"),
    [
        (lambda process: os.killpg(process.pid, signal.SIGINT), 130, "workbench sweep: interrupted (Ctrl-C)"),
        (lambda process: process.send_signal(signal.SIGTERM), 143, "workbench sweep: terminated (SIGTERM)"),
    ],
    ids=["ctrl-c-to-the-process-group", "sigterm-to-the-sweep"],
)
def test_an_interrupted_sweep_starts_no_new_run_marks_the_running_one_and_leaves_no_process(tmp_path, send, status, line):
    process, sweep_dir, kernel, children = _start_hanging_sweep(tmp_path)
    assert children, "the sweep has a pool worker"
    send(process)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert stderr.strip().splitlines()[-1] == line and "Traceback" not in stderr
    assert is_complete(sweep_dir / "s0")
    record = read_run(sweep_dir / "s1")
    assert record["status"] == "interrupted" and record["parameters"]["seed"] == 1
    assert record["error"].startswith(("KeyboardInterrupt", "Terminated"))
    assert not (sweep_dir / "s2").exists(), "a queued run started after the interrupt"
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["interrupted_runs"] == ["s1"] and "finished" not in info
    _assert_gone([kernel, *children])
    assert not (sweep_dir / LOCK_FILE).exists() and _stray_temporaries(tmp_path) == []


def test_sigkill_of_the_sweep_ends_its_pool_worker_and_kernel_and_the_rerun_takes_the_lock_over(tmp_path):
    process, sweep_dir, kernel, children = _start_hanging_sweep(tmp_path)
    process.kill()  # the sweep only: its worker and kernel are not told
    process.communicate(timeout=30)
    _assert_gone([kernel, *children])
    assert (sweep_dir / LOCK_FILE).exists()  # left behind by the killed sweep
    (tmp_path / "hang" / "s1").unlink()
    with pytest.warns(UserWarning, match=rf"Took over the lock of sweep folder .*demo from pid {process.pid} "):
        result = run_sweep(load_sweep(tmp_path / "sweep.yaml"), progress=False)
    assert result.status == {"s0": "complete", "s1": "complete", "s2": "complete"} and result.skipped == ["s0"]
    assert not (sweep_dir / LOCK_FILE).exists()


def test_a_second_sweep_on_a_held_folder_refuses_naming_the_holder(tmp_path, capsys):
    path = _sweep_file(tmp_path, {"seed": [0]})
    sweep_dir = load_sweep(path).sweep_dir
    sweep_dir.mkdir(parents=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-01-02T03:04:05+00:00"}
    (sweep_dir / LOCK_FILE).write_text(json.dumps(holder))
    with pytest.raises(SweepLockedError, match=rf"in use by another sweep: pid {os.getpid()} on host .*started 2026-01-02"):
        run_sweep(load_sweep(path), progress=False)
    assert main(["sweep", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"workbench sweep: error: Sweep folder {sweep_dir} is in use") and err.count("\n") == 1
    assert not (sweep_dir / "s0").exists() and json.loads((sweep_dir / LOCK_FILE).read_text()) == holder


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    path = _sweep_file(tmp_path, {"seed": [0]})
    sweep_dir = load_sweep(path).sweep_dir
    sweep_dir.mkdir(parents=True)
    (sweep_dir / LOCK_FILE).write_text(json.dumps({"pid": 999999999, "host": "elsewhere", "started": "x"}))
    with pytest.raises(SweepLockedError, match="pid 999999999 on host elsewhere"):
        run_sweep(load_sweep(path), progress=False)


@pytest.mark.parametrize(("part", "key"), [("grid", "lr"), ("fixed", "epochs")])
def test_a_key_that_is_not_a_notebook_parameter_is_rejected_before_anything_runs(tmp_path, part, key):
    grid, fixed = ({"seed": [0], key: [0.1]}, {}) if part == "grid" else ({"seed": [0]}, {key: 3})
    spec = load_sweep(_sweep_file(tmp_path, grid, fixed))
    with pytest.raises(ValueError, match=rf"`{part}` key\(s\) \['{key}'\] of sweep 'demo' are not parameters of notebook "
                                         r".*run.ipynb \(its parameters: \['out_dir', 'loss', .*'hang_dir'\]\)"):
        run_sweep(spec, progress=False)
    assert not spec.sweep_dir.exists()
