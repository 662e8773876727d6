"""Sweep-level detection statistics on threshold-grid rows: argmax, matched precision, pairs, curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.experiments.detection import STATISTICS, curve_points, detection_table, paired_differences
from workbench.metrics.detection_curves import DEFAULT_THRESHOLDS, lesion_rows

N_CASES = 6


def _case(lesion_probability: float) -> tuple[np.ndarray, np.ndarray]:
    """Two 2×2×2 lesions at ``lesion_probability`` in a 12³ volume at 0.15 elsewhere (one blob at 0.1)."""
    reference = np.zeros((12, 12, 12), dtype=bool)
    reference[1:3, 1:3, 1:3] = reference[8:10, 8:10, 8:10] = True
    return np.where(reference, lesion_probability, 0.15), reference


def _sweep_rows() -> pd.DataFrame:
    """Config ``sharp`` puts its lesions at 0.8 (found from 0.2 to 0.8), ``shy`` at 0.45 (found from 0.2 to 0.4:
    nothing at argmax); each over the same seeds and cases."""
    parts = []
    for config, level in (("sharp", 0.8), ("shy", 0.45)):
        for seed in (0, 1):
            for case in range(N_CASES // 2):
                rows = lesion_rows(*_case(level), case_id=f"c{case}")
                parts.append(rows.assign(region="ET", config=config, seed=seed))
    return pd.concat(parts, ignore_index=True)


def test_detection_table_reads_argmax_and_matched_points_from_the_grid():
    table = detection_table(_sweep_rows(), precision=0.85, n_resamples=50).set_index(["config", "stratum"])
    expected_columns = ["region", "n_cases", "n_lesions", *[f"{s}{x}" for s in STATISTICS for x in ("", "_low", "_high")],
                        "matched_threshold"]
    assert list(table.columns) == expected_columns
    assert table.index.tolist() == [("sharp", "all"), ("sharp", "<100"), ("sharp", ">=1000"),
                                    ("shy", "all"), ("shy", "<100"), ("shy", ">=1000")]
    sharp, shy = table.loc[("sharp", "all")], table.loc[("shy", "all")]
    assert (sharp.n_cases, sharp.n_lesions) == (N_CASES, 2 * N_CASES)         # lesions once, not once per threshold
    assert (sharp.argmax_precision, sharp.argmax_recall, sharp.matched_recall, sharp.ap) == (1.0, 1.0, 1.0, 1.0)
    assert (sharp.argmax_recall_low, sharp.argmax_recall_high, sharp.matched_threshold) == (1.0, 1.0, 0.8)
    assert (shy.argmax_precision, shy.argmax_recall) == (0.0, 0.0)           # no detection at 0.5
    assert (shy.matched_recall, shy.matched_threshold, shy.ap) == (1.0, 0.4, 1.0)
    # Strata: the lesions (8 mm³) are all small; the one false positive, the 0.1 blob, is large.
    assert table.loc[("sharp", "<100"), "n_lesions"] == 2 * N_CASES and table.loc[("sharp", ">=1000"), "n_lesions"] == 0
    assert np.isnan(table.loc[("sharp", ">=1000"), "ap"])


def test_paired_differences_separate_argmax_from_matched_precision():
    diffs = paired_differences(_sweep_rows(), "shy", n_resamples=50).set_index("statistic")
    assert list(diffs.columns) == ["config", "region", "difference", "low", "high", "p_value", "within_noise"]
    assert diffs.index.tolist() == list(STATISTICS) and set(diffs.config) == {"sharp"}
    within = dict(zip(diffs.index, diffs.within_noise.tolist()))
    assert diffs.loc["argmax_recall", "difference"] == 1.0 and within["argmax_recall"] is False
    assert diffs.loc["matched_recall", "difference"] == 0.0 and within["matched_recall"] is True
    assert diffs.loc["ap", "difference"] == pytest.approx(0.0)


def test_curve_points_have_one_point_per_threshold():
    points = curve_points(_sweep_rows())
    assert list(points.columns) == ["config", "region", "threshold", "precision", "recall", "fp_per_case"]
    for _, part in points.groupby("config"):
        assert part.threshold.tolist() == sorted(DEFAULT_THRESHOLDS, reverse=True)
        assert part.fp_per_case.tolist() == [0.0] * 9 + [1.0]                   # the blob at 0.1, in every case
    sharp = points[points.config == "sharp"].set_index("threshold")
    assert sharp.loc[0.5, "recall"] == 1.0 and sharp.loc[0.9, "recall"] == 0.0 and sharp.loc[0.1, "recall"] == 0.0
