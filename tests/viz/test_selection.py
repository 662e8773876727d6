"""Choosing what to audit (workbench.viz.selection) on a tiny fake sweep folder: no napari, no Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.data.manifest import CaseData
from workbench.labels import get_schema
from workbench.viz.selection import (
    check_parameters,
    miss_counts,
    most_missed,
    most_missed_case,
    ordered_lesions,
    region_counts,
    status_counts,
)
from workbench.viz.sources import AuditSource


def write_lesions(run: Path, rows: list[tuple[str, str, float]]) -> Path:
    """A run folder whose lesions.parquet has one row per (case_id, status, threshold)."""
    run.mkdir(parents=True)
    table = pd.DataFrame(rows, columns=["case_id", "status", "threshold"]).assign(region="WT", dice=0.0)
    table.to_parquet(run / "lesions.parquet")
    return run


def fn(case: str, n: int, threshold: float = 0.5) -> list[tuple[str, str, float]]:
    return [(case, "FN", threshold)] * n


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Three runs; at Dice 0.5 the most misses are run b's case c2 (3), though run a's c1 misses 5 at 0.1."""
    sweep = tmp_path / "sweep"
    write_lesions(sweep / "a", fn("c1", 5, 0.1) + fn("c1", 1) + [("c2", "TP", 0.5), ("c3", "FP", 0.5)])
    write_lesions(sweep / "b", fn("c1", 2) + fn("c2", 3) + [("c2", "TP", 0.5)])
    write_lesions(sweep / "c", fn("c9", 3))  # ties with b/c2: the first in sorted order wins
    (sweep / "failed").mkdir()  # a run without a lesion table
    (sweep / "sweep.json").write_text("{}")
    return sweep


def test_miss_counts_lists_every_case_of_every_run_with_a_table(sweep):
    counts = miss_counts([sweep / "b", sweep / "failed", sweep / "a"])
    assert list(counts.itertuples(index=False, name=None)) == [
        (sweep / "b", "c1", 2), (sweep / "b", "c2", 3),
        (sweep / "a", "c1", 1), (sweep / "a", "c2", 0), (sweep / "a", "c3", 0),
    ]
    assert miss_counts([sweep / "a"], threshold=0.1)["misses"].tolist() == [5, 0, 0]
    assert miss_counts([sweep / "failed"]).empty


def test_most_missed_is_the_run_and_case_with_most_misses_at_the_threshold(sweep):
    assert most_missed(sweep) == (sweep / "b", "c2")
    assert most_missed(str(sweep), threshold=0.1) == (sweep / "a", "c1")


def test_most_missed_without_misses_is_the_first_case_and_without_tables_none(tmp_path):
    write_lesions(tmp_path / "s" / "r2", [("x", "TP", 0.5)])
    write_lesions(tmp_path / "s" / "r1", [("z", "TP", 0.5), ("y", "FP", 0.5)])
    assert most_missed(tmp_path / "s") == (tmp_path / "s" / "r1", "y")
    (tmp_path / "empty").mkdir()
    assert most_missed(tmp_path / "empty") == (None, None)


def test_most_missed_case_of_one_run(sweep):
    assert most_missed_case(sweep / "b") == "c2"
    assert most_missed_case(sweep / "a") == "c1"
    assert most_missed_case(sweep / "a", threshold=0.3) is None  # nothing missed at 0.3
    assert most_missed_case(sweep / "failed") is None
    assert most_missed_case(sweep) is None  # the sweep folder itself holds no lesion table


def test_ordered_lesions_puts_misses_first_then_false_positives_each_largest_first():
    reference = np.zeros((16, 16, 16), dtype=np.uint8)
    reference[1:5, 1:5, 1:5] = 3  # 64 voxels: detected
    reference[8:10, 8:10, 8:10] = 3  # 8 voxels: missed
    reference[12:15, 1:4, 1:4] = 3  # 27 voxels: missed
    prediction = np.zeros_like(reference)
    prediction[1:5, 1:5, 1:5] = 3
    prediction[12:14, 12:14, 12:14] = 3  # 8 voxels: false positive
    case = CaseData(id="tiny", image=np.zeros((1, 16, 16, 16), np.float32), label=reference, affine=np.eye(4),
                    spacing=(1.0, 1.0, 1.0), modalities=("t1c",))
    source = AuditSource(case=case, prediction=prediction, schema=get_schema("brats_mets_2025"))

    table = ordered_lesions(source)
    regions = ["WT", "TC", "ET"]  # label 3 (ET) is in these three regions; RC has no lesions
    assert list(table["status"]) == ["FN"] * 6 + ["FP"] * 3 + ["TP"] * 3
    assert list(table["size_mm3"]) == [27.0] * 3 + [8.0] * 3 + [8.0] * 3 + [64.0] * 3
    assert list(table["region"][:3]) == regions
    assert "label" not in table and {"id", "dice", "centroid_z"} <= set(table)

    assert status_counts(table).to_dict() == {"FN": 6, "FP": 3, "TP": 3}
    assert status_counts(table[table["status"] == "TP"]).to_dict() == {"FN": 0, "FP": 0, "TP": 3}
    per_region = region_counts(table)
    assert list(per_region.columns) == ["TP", "FP", "FN"]
    assert per_region.loc["ET"].tolist() == [1, 1, 2]


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("run_dir", "nowhere", "Parameter `run_dir`: expected the path of an existing run folder, but got 'nowhere' (str)."),
        ("case_id", 3, "Parameter `case_id`: expected None or a case id, but got 3 (int)."),
        ("threshold", 0, "Parameter `threshold`: expected a number in (0, 1], but got 0 (int)."),
        ("threshold", True, "Parameter `threshold`: expected a number in (0, 1], but got True (bool)."),
        ("threshold", float("nan"), "Parameter `threshold`: expected a number in (0, 1], but got nan (float)."),
        ("open_viewer", "yes", "Parameter `open_viewer`: expected true or false, but got 'yes' (str)."),
        ("screenshot", 1, "Parameter `screenshot`: expected None or a .png path, but got 1 (int)."),
    ],
)
def test_check_parameters_names_the_bad_one(tmp_path, monkeypatch, parameter, value, message):
    monkeypatch.chdir(tmp_path)
    parameters = {"run_dir": str(tmp_path), "case_id": None, "threshold": 0.5, "open_viewer": False, "screenshot": None}
    check_parameters(**parameters)
    with pytest.raises(ValueError) as error:
        check_parameters(**{**parameters, parameter: value})
    assert str(error.value) == message


def test_selection_imports_no_qt():
    code = "import sys, workbench.viz.selection; print(sorted({'napari', 'qtpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
