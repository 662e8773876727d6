"""run.json through RunRecord: one lifecycle for every job."""

from __future__ import annotations

import json
import math

import pytest

from workbench.runs.record import RunRecord, is_complete, read_run, record_failure


def _read(folder):
    return json.loads((folder / "run.json").read_text())


def test_running_then_complete_with_final_fields(tmp_path):
    folder = tmp_path / "new" / "run"
    with RunRecord(folder, parameters={"loss": "blob", "lr": math.inf}, packages=("numpy",), resumed=False) as record:
        first = _read(folder)
        assert first["status"] == "running" and first["parameters"] == {"loss": "blob", "lr": None}
        assert first["resumed"] is False and {"python", "numpy"} == set(first["versions"])
        record.update(device="cpu")
        assert _read(folder)["device"] == "cpu" and _read(folder)["status"] == "running"
        record.finish(outputs=["a.parquet"], timings={"case_s": {"c1": 0.5}})
        assert _read(folder)["status"] == "running"  # finish() is written only when the block ends
    document = _read(folder)
    assert document["status"] == "complete" and document["outputs"] == ["a.parquet"]
    assert document["timings"]["case_s"] == {"c1": 0.5} and document["timings"]["total_s"] >= 0
    assert document["started"] <= document["finished"]
    assert is_complete(folder)


def test_given_total_time_wins_over_the_measured_one(tmp_path):
    with RunRecord(tmp_path, parameters={}) as record:
        record.finish(timings={"total_s": 123.0})
    assert _read(tmp_path)["timings"]["total_s"] == 123.0


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_an_exception_is_recorded_and_reraised(tmp_path, error, status):
    with pytest.raises(type(error)):
        with RunRecord(tmp_path, parameters={"x": 1}) as record:
            record.finish(outputs=["never"])
            raise error
    document = _read(tmp_path)
    assert document["status"] == status and document["error"].startswith(type(error).__name__)
    assert "outputs" not in document and "finished" in document
    assert not is_complete(tmp_path)


def test_record_failure_and_reading_broken_files(tmp_path):
    record_failure(tmp_path, error="ValueError: bad", traceback="tb", parameters={"a": 1})
    assert read_run(tmp_path)["status"] == "failed" and read_run(tmp_path)["traceback"] == "tb"
    (tmp_path / "run.json").write_text("{not json")
    assert read_run(tmp_path) == {} and not is_complete(tmp_path)
    (tmp_path / "run.json").write_text("[1, 2]")
    assert read_run(tmp_path) == {}
    assert read_run(tmp_path / "missing") == {}
