"""`run.json` of an interrupted run: SIGTERM is recorded like Ctrl-C, and a stopped run is marked by its stopper."""

from __future__ import annotations

import pytest

from workbench._process import Terminated
from workbench.runs import RunRecord, read_run
from workbench.runs.record import mark_interrupted, record_failure


def test_sigterm_inside_a_run_record_says_interrupted(tmp_path):
    with pytest.raises(Terminated), RunRecord(tmp_path, parameters={"seed": 0}):
        raise Terminated()
    record = read_run(tmp_path)
    assert record["status"] == "interrupted" and record["error"] == "Terminated: terminated by SIGTERM"


def test_only_a_running_run_is_marked_interrupted(tmp_path):
    running, failed = tmp_path / "running", tmp_path / "failed"
    running.mkdir()
    (running / "run.json").write_text('{"status": "running", "parameters": {"seed": 0}}')
    failed.mkdir()
    record_failure(failed, error="RuntimeError: boom")
    assert mark_interrupted(running, error="KeyboardInterrupt: Ctrl-C")
    assert not mark_interrupted(failed, error="KeyboardInterrupt: Ctrl-C")
    assert not mark_interrupted(tmp_path / "never-started", error="KeyboardInterrupt: Ctrl-C")
    assert read_run(running) == {
        "status": "interrupted", "parameters": {"seed": 0}, "error": "KeyboardInterrupt: Ctrl-C",
        "finished": read_run(running)["finished"],
    }
    assert read_run(failed)["status"] == "failed"
