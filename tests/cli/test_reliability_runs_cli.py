"""User errors end in one line, interruptions in 130/143, `evaluate` never silently replaces a result and its
pool workers die with it, `audit` without a display and a bad `lab --port` are named (issue 21)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from workbench._process import child_pids, pid_alive
from workbench.cli import main
from workbench.data.cohort import make_cohort
from workbench.training.config import ConfigError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Reference manifest of 2 phantom cases (32³) and a folder of perturbed predictions."""
    root = tmp_path_factory.mktemp("reliability")
    reference = make_cohort(2, 5, root / "cohort", shape=(32, 32, 32))
    assert main(["perturb", "--manifest", str(reference), "-o", str(root / "pred"), "--seed", "1"]) == 0
    return reference, root / "pred"


def _fail_with(monkeypatch, error: BaseException) -> None:
    """Make `workbench report` raise ``error``."""
    def run_report(args):
        raise error

    monkeypatch.setattr("workbench.cli.experiments.run_report", run_report)


@pytest.mark.parametrize(
    ("error", "line", "status"),
    [
        (PermissionError(13, "Permission denied", "/data/out"),
         "error: cannot use /data/out: Permission denied. Check the path and its permissions.", 1),
        (IsADirectoryError(21, "Is a directory", "/data/x.yaml"), "error: cannot use /data/x.yaml: Is a directory.", 1),
        (ConfigError("Expected `epochs` to be a positive integer, but got 0.", field="epochs"),
         "error: Expected `epochs` to be a positive integer, but got 0.", 1),
        (KeyboardInterrupt(), "interrupted (Ctrl-C)", 130),
    ],
    ids=["permission", "is-a-directory", "config-error", "ctrl-c"],
)
def test_user_errors_and_interrupts_end_in_one_line(monkeypatch, capsys, error, line, status):
    _fail_with(monkeypatch, error)
    assert main(["report", "somewhere"]) == status
    err = capsys.readouterr().err
    assert err.startswith(f"workbench report: {line}") and err.count("\n") == 1


def test_debug_shows_the_traceback(monkeypatch):
    _fail_with(monkeypatch, PermissionError(13, "Permission denied", "/data/out"))
    with pytest.raises(PermissionError):
        main(["--debug", "report", "somewhere"])


def test_warnings_print_as_one_line():
    script = "import sys, warnings; from workbench.cli import main\n" \
             "import workbench.cli.experiments as e\n" \
             "e.run_report = lambda args: warnings.warn('header spacing contradicts the affine', stacklevel=1)\n" \
             "sys.exit(main(['report', 'x']))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "workbench report: warning: header spacing contradicts the affine\n"


def test_evaluate_refuses_an_earlier_result_unless_overwrite(cohort, tmp_path, capsys):
    reference, pred = cohort
    out = tmp_path / "eval"
    common = ["evaluate", "--pred", str(pred), "--manifest", str(reference), "-o", str(out), "--workers", "1"]
    assert main(common) == 0
    before = (out / "run.json").read_text()
    capsys.readouterr()
    assert main(common) == 1
    err = capsys.readouterr().err
    assert err == f"workbench evaluate: error: {out} already holds an earlier evaluation; pass --overwrite to replace " \
                  "it, or choose another folder.\n"
    assert (out / "run.json").read_text() == before
    assert main([*common, "--overwrite"]) == 0
    assert (out / "run.json").read_text() != before


def test_a_preset_over_a_plain_result_leaves_no_old_table(cohort, tmp_path):
    reference, pred = cohort
    out = tmp_path / "eval"
    common = ["evaluate", "--pred", str(pred), "--manifest", str(reference), "-o", str(out), "--workers", "1"]
    assert main(common) == 0
    (out / "notes.txt").write_text("mine")
    assert main([*common, "--preset", "brats_mets_2025", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "leaderboard.csv", "lesions.csv", "lesions.parquet", "notes.txt", "run.json", "scores.csv", "scores.parquet",
        "summary.csv", "summary.parquet",
    ]


_SLOW_EVALUATION = """
import os, sys, time
import workbench.runs.evaluate as evaluate

def slow(*args, **kwargs):  # a case that takes long: the test kills the parent meanwhile
    open(os.path.join(sys.argv[4], str(os.getpid())), "w").close()
    time.sleep(120)

evaluate.evaluate_case = slow
evaluate.run_evaluation(sys.argv[1], sys.argv[2], sys.argv[3], workers=2, progress=False)
"""


def test_sigkill_of_evaluate_ends_its_pool_workers(cohort, tmp_path):
    reference, pred = cohort
    started = tmp_path / "started"
    started.mkdir()
    command = [sys.executable, "-c", textwrap.dedent(_SLOW_EVALUATION), str(pred), str(reference), str(tmp_path / "out"),
               str(started)]
    process = subprocess.Popen(command, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(started.iterdir())) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "the two workers did not start their cases"
        time.sleep(0.1)
    workers = [int(p.name) for p in started.iterdir()]
    assert set(workers) <= set(child_pids(process.pid))
    process.kill()
    process.wait()
    deadline = time.monotonic() + 15
    while any(pid_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"pool workers left running: {[p for p in workers if pid_alive(p)]}"
        time.sleep(0.1)


def test_audit_without_a_display_says_so(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["audit", "--image", "t1c.nii.gz", "--label", "seg.nii.gz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench audit: error: no display to open napari on") and "xvfb-run" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("port", [99999, 0])
def test_lab_port_out_of_range_is_named(capsys, port):
    assert main(["lab", "--no-browser", "--port", str(port)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"workbench lab: error: Expected the port (--port) to be an integer from 1 to 65535, but got {port}."


def test_lab_on_a_busy_port_is_named(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["lab", "--no-browser", "--port", str(port)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"workbench lab: error: Port {port} on 127.0.0.1 cannot be used (Address already in use); "
                          "choose another --port")


def test_sigterm_of_a_command_exits_143_after_its_clean_up(tmp_path):
    script = "import sys, time; from workbench.cli import main\n" \
             "import workbench.cli.experiments as e\n" \
             "def hang(args):\n    print('ready', flush=True)\n    time.sleep(60)\n" \
             "e.run_report = hang\nsys.exit(main(['report', 'x']))\n"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143 and err == "workbench report: terminated (SIGTERM)\n"
