"""Losses compared at matched operating points, with confidence intervals over cases.

A run of ``02_train_evaluate`` writes ``detection_rows.parquet``
(:func:`workbench.metrics.detection_curves.region_rows` of its held-out cases, from the stored
probabilities: per region, a block of lesion / false-positive rows at each threshold of
:data:`~workbench.metrics.detection_curves.DEFAULT_THRESHOLDS`, the candidates being the
components of ``p ≥ t``) and ``lesions.parquet`` (the argmax lesion table). Over a sweep, for
each configuration (the grid values other than seed and fold; runs pooled, a case of each run
counting as its own case), :func:`detection_table` gives, per region: AP, precision and recall
at argmax (the threshold 0.5: exactly the lesion counts of thresholding there), and recall at a
matched precision (the best grid threshold reaching it), each with a percentile bootstrap
interval over cases (a case keeps all its thresholds' rows); :func:`paired_differences`
compares every configuration with a baseline on the same (seed, fold, case) units and says when
the difference is within the noise; :func:`curve_points` gives the PR and FROC curves to draw,
one point per threshold. Rows without a ``threshold`` column (runs written before the grid) are
read as one detection map per case, their threshold sweeping the candidates' confidences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from workbench.metrics.detection_curves import (
    PrecisionRecall,
    at_precision,
    at_threshold,
    curve_bootstrap_ci,
    paired_curve_bootstrap,
    precision_recall,
)

__all__ = ["DETECTION_ROWS", "STATISTICS", "ci_label", "curve_points", "detection_table", "paired_differences", "unit_ids"]

DETECTION_ROWS = "detection_rows.parquet"
_REPLICATES = ("seed", "fold")


def unit_ids(rows: pd.DataFrame) -> pd.Series:
    """The resampling unit of each row: replicate values (seed, fold) and the case id.

    A missing value (a run without a fold) is spelled out as text like any other: under pandas 3,
    ``astype(str)`` keeps it missing, and a missing unit id would drop the row from the bootstrap.
    """
    keys = [k for k in _REPLICATES if k in rows.columns]
    parts = [rows[k].map(str).astype(str) for k in keys] + [rows["case_id"].astype(str)]
    return parts[0].str.cat(parts[1:], sep="/") if len(parts) > 1 else parts[0]


STATISTICS = ("ap", "argmax_precision", "argmax_recall", "matched_recall")
"""What :func:`detection_table` and :func:`paired_differences` report, in this order."""


def _statistics(precision: float, argmax_threshold: float) -> Callable[[PrecisionRecall], np.ndarray]:
    """One function computing every statistic of :data:`STATISTICS` from one PR curve."""

    def compute(curve: PrecisionRecall) -> np.ndarray:
        argmax = at_threshold(curve, argmax_threshold)
        matched = at_precision(curve, precision)
        return np.array([
            curve.average_precision, argmax.precision, argmax.recall,
            matched.recall if matched is not None else np.nan,
        ])

    return compute


def detection_table(
    rows: pd.DataFrame,
    *,
    precision: float = 0.85,
    argmax_threshold: float = 0.5,
    n_resamples: int = 200,
    seed: int = 0,
    by_stratum: bool = True,
) -> pd.DataFrame:
    """Per configuration, region and size stratum: AP, argmax precision / recall, recall at
    ``precision``, with CIs.

    Parameters
    ----------
    rows : DataFrame
        Detection rows of a sweep with a ``config`` column (``collect_table`` + config labels):
        ``case_id, threshold, is_lesion, confidence, volume_mm3, stratum, region`` and the
        replicate columns (``seed``, ``fold``) when present. Runs pooled in one configuration
        must share the threshold grid.
    precision, argmax_threshold : float
        ``argmax_threshold`` should be a grid threshold (else the next higher one is read).
    n_resamples, seed : int
        Bootstrap over cases (95 % percentile intervals).
    by_stratum : bool
        Also one row per size stratum (after ``all``): lesions by reference volume, false
        positives by their own volume, so a stratum's precision counts the FPs of its size.

    Returns
    -------
    DataFrame
        ``config, region, stratum, n_cases, n_lesions`` and, for each statistic, its value and ``_low`` /
        ``_high``: ``ap``, ``argmax_precision``, ``argmax_recall``, ``matched_recall``; plus
        ``matched_threshold`` (the grid threshold of the matched point). ``n_lesions`` counts
        each lesion once (not once per threshold).
    """
    statistics = _statistics(precision, argmax_threshold)
    records = []
    rows = rows.assign(case_id=unit_ids(rows))
    for (config, region), part in rows.groupby(["config", "region"], sort=False):
        n_cases = int(part["case_id"].nunique())
        strata = ["all"]
        if by_stratum and "stratum" in part:
            strata += list(part.groupby("stratum")["volume_mm3"].min().sort_values().index)
        for stratum in strata:
            subset = part if stratum == "all" else part[part["stratum"] == stratum]
            curve = precision_recall(subset, n_cases=n_cases)
            point = at_precision(curve, precision)
            record = {"config": config, "region": region, "stratum": stratum, "n_cases": n_cases,
                      "n_lesions": curve.n_lesions}
            values, lows, highs = curve_bootstrap_ci(subset, statistics, n_resamples=n_resamples, seed=seed)
            for name, value, low, high in zip(STATISTICS, values, lows, highs):
                record.update({name: float(value), f"{name}_low": float(low), f"{name}_high": float(high)})
            record["matched_threshold"] = point.threshold if point is not None else float("nan")
            records.append(record)
    return pd.DataFrame(records)


def paired_differences(
    rows: pd.DataFrame,
    baseline: str,
    *,
    precision: float = 0.85,
    argmax_threshold: float = 0.5,
    n_resamples: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Every configuration minus ``baseline`` on the same units, per region and statistic.

    Returns
    -------
    DataFrame
        ``config, region, statistic, difference, low, high, p_value, within_noise`` (True when
        the 95 % interval contains 0, None when the statistic is undefined). Configurations that do not share the baseline's units are
        skipped.
    """
    rows = rows.assign(case_id=unit_ids(rows))
    statistics = _statistics(precision, argmax_threshold)
    records = []
    for region, part in rows.groupby("region", sort=False):
        base = part[part["config"] == baseline]
        for config, other in part[part["config"] != baseline].groupby("config", sort=False):
            if set(other["case_id"]) != set(base["case_id"]):
                continue
            result = paired_curve_bootstrap(other, base, statistics, n_resamples=n_resamples, seed=seed)
            for k, name in enumerate(STATISTICS):
                records.append({
                    "config": config, "region": region, "statistic": name,
                    **{key: float(result[key][k]) for key in ("difference", "low", "high", "p_value")},
                    "within_noise": _flag(result["within_noise"][k]),
                })
    return pd.DataFrame(
        records, columns=["config", "region", "statistic", "difference", "low", "high", "p_value", "within_noise"]
    )


def _flag(value: float) -> bool | None:
    return None if np.isnan(value) else bool(value)


def curve_points(rows: pd.DataFrame) -> pd.DataFrame:
    """PR and FROC points per configuration and region, for plotting.

    Returns
    -------
    DataFrame
        ``config, region, threshold, precision, recall, fp_per_case``: one row per threshold of
        the rows' grid, thresholds descending.
    """
    frames = []
    for (config, region), part in rows.assign(case_id=unit_ids(rows)).groupby(["config", "region"], sort=False):
        curve = precision_recall(part)
        frames.append(pd.DataFrame({
            "config": config, "region": region, "threshold": curve.thresholds, "precision": curve.precision,
            "recall": curve.recall, "fp_per_case": curve.fp_per_case,
        }))
    columns = ["config", "region", "threshold", "precision", "recall", "fp_per_case"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def ci_label(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``value [low, high]`` strings of the named statistics, for reports."""
    out = table[[c for c in ("config", "region", "stratum") if c in table]].copy()
    for name in names:
        out[name] = [
            "–" if not np.isfinite(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(table[name], table[f"{name}_low"], table[f"{name}_high"])
        ]
    return out
