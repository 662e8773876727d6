"""Lesion-level operating points: PR and FROC curves over a grid of probability thresholds, and
the comparisons at matched precision that argmax alone hides.

At every operating threshold ``t`` of a fixed grid (:data:`DEFAULT_THRESHOLDS`), a model's
probability map is thresholded and its **candidates** are the connected components of
``probability ≥ t`` — the geometry is exact at each ``t``, as if the model's output had been
binarised there (``t = 0.5`` is argmax for sigmoid regions). Each candidate is scored by its
maximum (or mean) probability. At each ``t`` the candidates are matched one to one to the
reference lesions, maximising the summed overlap (IoU or Dice) among pairs whose overlap is at
least ``min_overlap`` (PI-CAI's rule), which gives the TP lesions, FP candidates and FN lesions
at ``t``. The result is a **row table** (:func:`lesion_rows`, :func:`region_rows`;
:data:`ROW_COLUMNS`), one block of rows per threshold:

===============  =====================================================================================
column           meaning
===============  =====================================================================================
``case_id``      the case (the unit the bootstraps resample)
``threshold``    float64, the operating threshold ``t`` of the row's block
``is_lesion``    int64; 1: a reference lesion (every lesion once per threshold), 0: a candidate at
                 ``t`` matched to no lesion (a false positive at ``t``)
``confidence``   float64; a lesion: the max (or mean) probability of the candidate matched to it at
                 ``t``, 0 when no candidate is (missed at ``t``: **detected ⇔ confidence > 0**); a
                 false positive: its own score, ≥ ``t``
``overlap``      float64; a lesion: IoU (or Dice) with its candidate at ``t``, 0 when missed; 0 for a
                 false positive
``volume_mm3``   float64; a lesion: its reference volume (the same at every ``t``); a false
                 positive: its own volume at ``t``
``stratum``      str; the size stratum of ``volume_mm3`` (``stratum_names``)
===============  =====================================================================================

:func:`region_rows` adds ``region``. From the rows of a set of cases, :func:`precision_recall`
gives one curve point per threshold (TP and FP summed over the cases' blocks at that ``t``;
precision = TP / (TP + FP), recall = TP / lesions, false positives per case = FP / cases), the
FROC curve (:func:`froc`), the best-F1 point and the point at a matched precision
(:func:`at_precision`): the largest recall whose precision is at least the target — exact, with
no interpolation between points. :func:`at_threshold` reads the point at one grid threshold
(exactly the lesion counts of thresholding the probabilities there). Recall need not be monotone
in ``t``: raising ``t`` can split one candidate covering two lesions into two matches. Rows of
one stratum (lesions of that reference size, false positives of that own size, at every
threshold) give the stratum's curve with false positives attributed to a size.

A model whose probability stays between 0.1 and 0.5 over wide areas merges its lesions into one
large component at low thresholds (no match there), yet still has its argmax detections at
``t = 0.5``: the curve keeps them, which one set of candidates taken at a low floor could not.
:func:`bootstrap_ci` and :func:`paired_bootstrap` give confidence intervals over cases
(``case_id`` groups, each keeping all its thresholds' rows) and a paired comparison of two models
on the same cases; :func:`curve_bootstrap_ci` and :func:`paired_curve_bootstrap` do the same for a
statistic of the PR curve, summing each resample's curve from per-case counts (no row copies).

Rows without a ``threshold`` column (the format before the threshold grid: one fixed set of
candidates per case, a row per lesion and unmatched candidate) are still read by
:func:`precision_recall`, as a detection map whose threshold sweeps the candidates' confidences.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from workbench._validate import check_choice, check_connectivity, check_spacing, check_thresholds
from workbench.labels import LabelSchema
from workbench.metrics.matching import connected_components, overlap_table
from workbench.metrics.panoptic import (
    DEFAULT_SIZE_EDGES_MM3,
    size_strata,
    stratum_names,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ROW_COLUMNS",
    "CurvePoint",
    "PrecisionRecall",
    "at_precision",
    "at_threshold",
    "best_f1",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "curve_bootstrap_ci",
    "froc",
    "lesion_candidates",
    "lesion_rows",
    "operating_points",
    "paired_bootstrap",
    "paired_curve_bootstrap",
    "precision_recall",
    "region_rows",
    "volume_bias",
]

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""The operating thresholds of the curves: one PR / FROC point each; 0.5 is argmax (sigmoid)."""

ROW_COLUMNS = ("case_id", "threshold", "is_lesion", "confidence", "overlap", "volume_mm3", "stratum")
"""Columns of :func:`lesion_rows` (module docstring); :func:`region_rows` appends ``region``."""


def lesion_candidates(
    probability: np.ndarray,
    *,
    floor: float = 0.1,
    score: Literal["max", "mean"] = "max",
    connectivity: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of ``probability ≥ floor`` and their confidences: the candidates at
    one operating threshold.

    Parameters
    ----------
    probability : ndarray of float, shape (Y, X) or (Z, Y, X)
        One class's (or region's) probability, values in [0, 1].
    floor : float
        In (0, 1]; the threshold.
    score : {"max", "mean"}
        Confidence of a candidate: its maximum or mean probability.
    connectivity : int, optional
        Default full (26 in 3D, 8 in 2D).

    Returns
    -------
    labels : ndarray of int32, shape (*S)
        Candidate ids ``1..N`` (raster order of their first voxel).
    confidences : ndarray of float64, shape (N,)
        Each ≥ ``floor``.

    Raises
    ------
    ValueError
        Probabilities outside [0, 1] or NaN, a floor outside (0, 1], an unknown score.
    """
    probability = _check_probability(probability)
    if not 0 < floor <= 1:
        raise ValueError(f"Expected `floor` in (0, 1], but got {floor!r}.")
    check_choice("score", score, ("max", "mean"))
    return _candidates(probability, floor, score, check_connectivity(connectivity, probability.ndim))


def lesion_rows(
    probability: np.ndarray,
    reference: np.ndarray,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    case_id: str | None = None,
    spacing: tuple[float, ...] | None = None,
    min_overlap: float = 0.1,
    overlap: Literal["iou", "dice"] = "iou",
    score: Literal["max", "mean"] = "max",
    connectivity: int | None = None,
    size_edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3,
) -> pd.DataFrame:
    """The row table of one case and class / region: a block of rows per threshold (module docstring).

    At each threshold ``t`` the candidates are the components of ``probability ≥ t``
    (:func:`lesion_candidates`), matched one to one to the reference lesions (maximum summed
    overlap among pairs with overlap ≥ ``min_overlap``). A block holds every reference lesion
    (detected or not) and every unmatched candidate, so at ``t``: TP = detected lesions,
    FN = lesions − TP, FP = the block's ``is_lesion == 0`` rows, TP + FP = candidates at ``t``.

    Parameters
    ----------
    probability : ndarray of float, shape (Y, X) or (Z, Y, X)
        One class's (or region's) probability, values in [0, 1].
    reference : ndarray of bool, shape (*S)
        The reference mask of the same class / region.
    thresholds : sequence of float
        Distinct operating thresholds in (0, 1]; default :data:`DEFAULT_THRESHOLDS`. Cases whose
        rows are pooled must share them.
    case_id : str, optional
    spacing : tuple of float, optional
        mm per axis, for volumes and strata (default 1).
    min_overlap : float
        A candidate can match a lesion only if their overlap is at least this.
    overlap : {"iou", "dice"}
    score : {"max", "mean"}
        A candidate's confidence: its maximum or mean probability.
    connectivity : int, optional
        Of the candidates and of the reference lesions: 6, 18 or 26 in 3D, 4 or 8 in 2D;
        default full (26 / 8).
    size_edges_mm3 : sequence of float
        Stratum edges.

    Returns
    -------
    DataFrame
        Columns :data:`ROW_COLUMNS`; blocks in increasing threshold order, within a block the
        lesions (reference component order) then the false positives (candidate order).

    Raises
    ------
    ValueError
        Different shapes, probabilities outside [0, 1], invalid thresholds, overlap, score or
        connectivity.
    """
    probability = _check_probability(probability)
    reference = np.asarray(reference, dtype=bool)
    if probability.shape != reference.shape:
        raise ValueError(f"Expected `probability` and `reference` of one shape, got {probability.shape} and {reference.shape}.")
    thresholds = np.sort(np.asarray(check_thresholds(thresholds, distinct=True), dtype=np.float64))
    check_choice("overlap", overlap, ("iou", "dice"))
    check_choice("score", score, ("max", "mean"))
    spacing = check_spacing(spacing, probability.ndim)
    connectivity = check_connectivity(connectivity, probability.ndim)
    ref_labels, n_ref = connected_components(reference, connectivity=connectivity)
    voxel = float(np.prod(spacing))
    blocks = []
    for t in thresholds:
        labels, confidences = _candidates(probability, t, score, connectivity)
        block = _block(labels, confidences, ref_labels, n_ref, min_overlap, overlap, voxel)
        blocks.append((np.full(block[0].size, t), *block))
    return _frame(case_id, blocks, size_edges_mm3)


def _frame(case_id: str | None, blocks: list[tuple[np.ndarray, ...]], size_edges_mm3: Sequence[float]) -> pd.DataFrame:
    """The :data:`ROW_COLUMNS` table of ``(threshold, is_lesion, confidence, overlap, volume_mm3)`` blocks."""
    threshold, is_lesion, confidence, overlaps, volumes = (np.concatenate(column) for column in zip(*blocks))
    names = np.array(stratum_names(size_edges_mm3))
    return pd.DataFrame(
        {
            "case_id": case_id,
            "threshold": threshold,
            "is_lesion": is_lesion,
            "confidence": confidence,
            "overlap": overlaps,
            "volume_mm3": volumes,
            "stratum": names[size_strata(volumes, size_edges_mm3)] if volumes.size else np.array([], dtype=object),
        },
        columns=list(ROW_COLUMNS),
    )


def _block(
    candidates: np.ndarray, confidences: np.ndarray, ref_labels: np.ndarray, n_ref: int,
    min_overlap: float, overlap: str, voxel: float,
) -> tuple[np.ndarray, ...]:
    """One threshold's ``is_lesion, confidence, overlap, volume_mm3`` columns: lesions, then unmatched candidates."""
    table = overlap_table(candidates, ref_labels)
    union = table.pred_sizes[table.pred_ids - 1] + table.ref_sizes[table.ref_ids - 1] - table.intersection
    score = table.intersection / union if overlap == "iou" else table.dice
    eligible = score >= min_overlap
    matched_ref, matched_cand, matched_overlap = _max_overlap_matching(
        table.ref_ids[eligible], table.pred_ids[eligible], score[eligible]
    )
    ref_conf = np.zeros(n_ref)
    ref_overlap = np.zeros(n_ref)
    ref_conf[matched_ref - 1] = confidences[matched_cand - 1]
    ref_overlap[matched_ref - 1] = matched_overlap
    unmatched = np.setdiff1d(np.arange(1, table.n_pred + 1), matched_cand)
    n_fp = unmatched.size
    return (
        np.r_[np.ones(n_ref, dtype=np.int64), np.zeros(n_fp, dtype=np.int64)],
        np.r_[ref_conf, confidences[unmatched - 1]],
        np.r_[ref_overlap, np.zeros(n_fp)],
        np.r_[table.ref_sizes * voxel, table.pred_sizes[unmatched - 1] * voxel].astype(np.float64),
    )


@dataclass(frozen=True)
class PrecisionRecall:
    """A lesion-level precision–recall curve, one point per operating threshold (descending).

    Attributes
    ----------
    thresholds : ndarray of float64, shape (K,)
        Operating thresholds, descending: the distinct ``threshold`` values of the rows (for
        rows without that column, the distinct confidences: detections are the candidates with
        confidence ≥ threshold).
    tp, fp : ndarray of int64, shape (K,)
        Detected lesions and false-positive candidates at each threshold, summed over cases.
    precision, recall : ndarray of float64, shape (K,)
        ``tp / (tp + fp)`` (0 without detections) and ``tp / n_lesions`` (NaN without lesions).
        Recall need not be monotone in the threshold (a candidate covering two lesions can split
        into two matches at a higher threshold).
    n_lesions, n_cases : int
    average_precision : float
        Over the distinct recall levels ``r_1 < r_2 < …`` of the points (``r_0 = 0``):
        ``Σ_j (r_j − r_{j−1}) · P_j``, ``P_j`` the best precision among the points at recall
        ``r_j`` — for a recall non-decreasing as the threshold falls (a detection map), the usual
        ``Σ_k (recall_k − recall_{k−1}) · precision_k`` over descending thresholds. NaN without
        lesions.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_lesions: int
    n_cases: int
    average_precision: float

    @property
    def fp_per_case(self) -> np.ndarray:
        """False positives per case at each threshold (the FROC abscissa)."""
        return self.fp / max(self.n_cases, 1)

    @property
    def f1(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.tp > 0, 2 * self.tp / (2 * self.tp + self.fp + (self.n_lesions - self.tp)), 0.0)


@dataclass(frozen=True)
class CurvePoint:
    """One operating point of a curve."""

    threshold: float
    precision: float
    recall: float
    f1: float
    fp_per_case: float


def precision_recall(rows: pd.DataFrame, n_cases: int | None = None) -> PrecisionRecall:
    """The precision–recall curve of a set of :func:`lesion_rows` (one case or many).

    Parameters
    ----------
    rows : DataFrame
        Columns ``threshold``, ``is_lesion``, ``confidence`` (and ``case_id``), e.g. the rows of
        one region (and stratum) over cases: one point per distinct ``threshold``, where TP is
        the lesion rows with confidence > 0 and FP the ``is_lesion == 0`` rows. Without a
        ``threshold`` column, the rows of one fixed detection map per case (a row per lesion,
        confidence 0 if never detected, and per unmatched candidate): one point per distinct
        confidence, detections being the candidates at or above it.
    n_cases : int, optional
        For false positives per case; default the number of distinct ``case_id``.

    Returns
    -------
    PrecisionRecall

    Raises
    ------
    ValueError
        If the thresholds do not all hold the same number of lesion rows (rows made with
        different threshold grids).
    """
    is_lesion = rows["is_lesion"].to_numpy(dtype=np.int64)
    confidence = rows["confidence"].to_numpy(dtype=np.float64)
    if n_cases is None:
        n_cases = int(rows["case_id"].nunique()) if "case_id" in rows and len(rows) else 0
    if "threshold" in rows:
        thresholds, tp, fp, n_lesions = _threshold_counts(rows["threshold"].to_numpy(dtype=np.float64), is_lesion, confidence)
    else:
        thresholds, tp, fp, n_lesions = _confidence_counts(is_lesion, confidence)
    return _curve(thresholds, tp, fp, n_lesions, n_cases)


def _curve(thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray, n_lesions: int, n_cases: int) -> PrecisionRecall:
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_lesions if n_lesions else np.full(tp.shape, np.nan)
    return PrecisionRecall(thresholds, tp, fp, precision, recall, n_lesions, n_cases, _average_precision(precision, recall, n_lesions))


def _threshold_counts(threshold: np.ndarray, is_lesion: np.ndarray, confidence: np.ndarray) -> tuple:
    """``(thresholds descending, tp, fp, n_lesions)`` of rows in threshold blocks."""
    thresholds, counts = _block_counts(np.zeros(threshold.size, dtype=np.int64), 1, threshold, is_lesion, confidence)
    return _summed_counts(thresholds, counts[0])


def _block_counts(
    case: np.ndarray, n_cases: int, threshold: np.ndarray, is_lesion: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds descending (K,), counts (n_cases, K, 4) int64)``: per case (``case`` codes
    ``0 .. n_cases - 1``) and threshold, the rows, lesion rows, detected lesions and false positives."""
    values, block = np.unique(-threshold, return_inverse=True)  # descending thresholds
    cell = case * values.size + block.reshape(-1)
    size = n_cases * values.size
    counts = np.stack([
        np.bincount(cell, weights=weights, minlength=size)
        for weights in (np.ones(cell.size), is_lesion, is_lesion * (confidence > 0), 1 - is_lesion)
    ], axis=-1)
    return -values, counts.astype(np.int64).reshape(n_cases, values.size, 4)


def _summed_counts(thresholds: np.ndarray, counts: np.ndarray) -> tuple:
    """``(thresholds, tp, fp, n_lesions)`` at the thresholds that hold rows, from ``counts`` (K, 4)
    of :func:`_block_counts` summed over cases."""
    present = counts[:, 0] > 0
    thresholds, (_, lesions, tp, fp) = thresholds[present], counts[present].T
    # A threshold where no row exists has no lesion and no candidate; any other holds every lesion.
    if lesions.size and (lesions != lesions.max()).any():
        raise ValueError(
            "Expected every threshold to hold the same lesions (rows made with one threshold grid), "
            f"but got {dict(zip(thresholds.tolist(), lesions.tolist()))} lesion rows per threshold."
        )
    return thresholds, tp, fp, int(lesions.max()) if lesions.size else 0


def _confidence_counts(is_lesion: np.ndarray, confidence: np.ndarray) -> tuple:
    """``(thresholds descending, tp, fp, n_lesions)`` of a detection map's rows (no threshold column)."""
    detected = confidence > 0  # confidence 0: a lesion no candidate found
    order = np.argsort(-confidence[detected], kind="stable")
    scores, hits = confidence[detected][order], is_lesion[detected][order]
    tp_cum, fp_cum = np.cumsum(hits), np.cumsum(1 - hits)
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), scores.size - 1] if scores.size else np.zeros(0, dtype=np.int64)
    return scores[last], tp_cum[last].astype(np.int64), fp_cum[last].astype(np.int64), int(is_lesion.sum())


def _average_precision(precision: np.ndarray, recall: np.ndarray, n_lesions: int) -> float:
    """Σ over distinct recall levels of (level step) × the best precision at that level (:class:`PrecisionRecall`)."""
    if n_lesions == 0:
        return float("nan")
    levels, level = np.unique(recall, return_inverse=True)
    best = np.full(levels.size, -np.inf)
    np.maximum.at(best, level, precision)
    return float(np.sum(np.diff(np.r_[0.0, levels]) * best))


def froc(curve: PrecisionRecall, fp_per_case: Sequence[float] = (0.125, 0.25, 0.5, 1, 2, 4, 8)) -> pd.DataFrame:
    """Sensitivity at given false-positive rates per case: the highest recall whose FP/case ≤ each rate.

    Returns
    -------
    DataFrame
        Columns ``fp_per_case, sensitivity, threshold`` (sensitivity 0 and threshold NaN where
        no operating point has that few false positives).
    """
    rows = []
    for rate in fp_per_case:
        ok = np.flatnonzero(curve.fp_per_case <= rate)
        if ok.size:
            k = ok[np.argmax(curve.recall[ok])]
            rows.append({"fp_per_case": float(rate), "sensitivity": float(curve.recall[k]), "threshold": float(curve.thresholds[k])})
        else:
            rows.append({"fp_per_case": float(rate), "sensitivity": 0.0, "threshold": float("nan")})
    return pd.DataFrame(rows, columns=["fp_per_case", "sensitivity", "threshold"])


def at_precision(curve: PrecisionRecall, precision: float) -> CurvePoint | None:
    """The point with the largest recall among those whose precision is ≥ ``precision``.

    Equal to reading the interpolated precision–recall curve (precision made non-increasing in
    recall) at that precision; no interpolation between points is involved. None when no point
    reaches the precision.
    """
    ok = np.flatnonzero(curve.precision >= precision)
    if ok.size == 0:
        return None
    return _point(curve, int(ok[np.argmax(curve.recall[ok])]))


def at_threshold(curve: PrecisionRecall, threshold: float) -> CurvePoint:
    """The point at the lowest curve threshold ≥ ``threshold``: for rows of a threshold grid that
    holds ``threshold``, exactly the lesion counts of thresholding the probabilities there
    (``0.5``: argmax of sigmoid regions). No such point: recall 0, precision NaN."""
    ok = np.flatnonzero(curve.thresholds >= threshold)
    if ok.size == 0:
        return CurvePoint(float(threshold), float("nan"), 0.0, 0.0, 0.0)
    return _point(curve, int(ok[-1]))


def best_f1(curve: PrecisionRecall) -> CurvePoint | None:
    """The point with the largest lesion F1 (the lowest threshold among ties); None on an empty curve."""
    if curve.thresholds.size == 0:
        return None
    f1 = curve.f1
    return _point(curve, int(np.flatnonzero(f1 == f1.max())[-1]))


def bootstrap_ci(
    rows: pd.DataFrame,
    statistic: Callable[[pd.DataFrame], float | np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple:
    """Percentile bootstrap over cases: ``(estimate, low, high)``.

    Cases (``case_id``) are drawn with replacement, each keeping all its rows; ``statistic`` is
    recomputed on every resample (NaN results are left out of the quantiles). A statistic that
    returns an array gives arrays (one interval per element) from the same resamples.
    """
    groups = _groups(rows)
    rng = np.random.default_rng(seed)
    estimate = np.asarray(statistic(rows), dtype=np.float64)
    values = np.array(
        [statistic(_resample(rows, groups, rng.integers(0, len(groups), len(groups)))) for _ in range(n_resamples)],
        dtype=np.float64,
    )
    low, high = _quantiles(values, level)
    if estimate.ndim == 0:
        return float(estimate), float(low), float(high)
    return estimate, low, high


def bootstrap_mean_ci(
    values: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """:func:`bootstrap_ci` of the mean of one value per case, vectorised: ``(mean, low, high)``.

    NaN values are left out; NaN everywhere when none is left.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    low, high = _quantiles(means, level)
    return float(values.mean()), float(low), float(high)


def paired_bootstrap(
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    statistic: Callable[[pd.DataFrame], float | np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Difference ``statistic(a) − statistic(b)`` of two models on the same cases, resampled in pairs.

    Returns
    -------
    dict
        ``difference``, ``low``, ``high`` (percentile interval), ``p_value`` (two-sided:
        twice the smaller fraction of resampled differences on either side of 0) and
        ``within_noise`` (1.0 when the interval contains 0, else 0.0; NaN when the statistic is
        undefined in every resample); arrays for an array-valued statistic.

    Raises
    ------
    ValueError
        If the two row sets do not hold the same cases.
    """
    groups_a, groups_b = _groups(rows_a), _groups(rows_b)
    if [c for c, _ in groups_a] != [c for c, _ in groups_b]:
        raise ValueError("Expected both models' rows to hold the same cases (a paired comparison).")
    rng = np.random.default_rng(seed)
    difference = np.asarray(statistic(rows_a), dtype=np.float64) - np.asarray(statistic(rows_b), dtype=np.float64)
    diffs = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(groups_a), len(groups_a))
        diffs.append(np.asarray(statistic(_resample(rows_a, groups_a, pick)), dtype=np.float64)
                     - np.asarray(statistic(_resample(rows_b, groups_b, pick)), dtype=np.float64))
    return _paired_summary(difference, np.asarray(diffs), level)


def curve_bootstrap_ci(
    rows: pd.DataFrame,
    statistic: Callable[[PrecisionRecall], np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bootstrap_ci` of a statistic of the :func:`precision_recall` curve of threshold-grid rows, fast.

    The same resamples as :func:`bootstrap_ci` with ``statistic(precision_recall(rows))`` (equal
    results for one ``seed``), but each resampled curve is summed from per-case counts instead of
    rebuilt from copied rows. ``statistic`` maps a curve to an array. Rows without a ``threshold``
    column (detection maps) take :func:`bootstrap_ci`'s way.
    """
    if "threshold" not in rows:
        return bootstrap_ci(rows, lambda part: statistic(precision_recall(part)), n_resamples=n_resamples, level=level, seed=seed)
    case_ids, thresholds, counts = _case_counts(rows)
    n = case_ids.size
    rng = np.random.default_rng(seed)
    estimate = np.asarray(statistic(_resampled_curve(thresholds, counts, np.arange(n))), dtype=np.float64)
    values = np.array(
        [statistic(_resampled_curve(thresholds, counts, rng.integers(0, n, n))) for _ in range(n_resamples)],
        dtype=np.float64,
    )
    low, high = _quantiles(values, level)
    return estimate, low, high


def paired_curve_bootstrap(
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    statistic: Callable[[PrecisionRecall], np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """:func:`paired_bootstrap` of a statistic of the :func:`precision_recall` curve, fast (as
    :func:`curve_bootstrap_ci`: the same resamples and results, curves summed from per-case counts;
    rows without a ``threshold`` column take :func:`paired_bootstrap`'s way).

    Raises
    ------
    ValueError
        If the two row sets do not hold the same cases.
    """
    if "threshold" not in rows_a or "threshold" not in rows_b:
        return paired_bootstrap(
            rows_a, rows_b, lambda part: statistic(precision_recall(part)), n_resamples=n_resamples, level=level, seed=seed
        )
    (cases_a, thresholds_a, counts_a), (cases_b, thresholds_b, counts_b) = _case_counts(rows_a), _case_counts(rows_b)
    if cases_a.tolist() != cases_b.tolist():
        raise ValueError("Expected both models' rows to hold the same cases (a paired comparison).")
    n = cases_a.size
    rng = np.random.default_rng(seed)

    def difference(pick: np.ndarray) -> np.ndarray:
        return (np.asarray(statistic(_resampled_curve(thresholds_a, counts_a, pick)), dtype=np.float64)
                - np.asarray(statistic(_resampled_curve(thresholds_b, counts_b, pick)), dtype=np.float64))

    observed = difference(np.arange(n))
    diffs = np.array([difference(rng.integers(0, n, n)) for _ in range(n_resamples)])
    return _paired_summary(observed, diffs, level)


def _case_counts(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(case ids sorted, thresholds descending, counts (cases, K, 4))`` of threshold-grid rows (:func:`_block_counts`)."""
    codes, cases = pd.factorize(rows["case_id"], sort=True)
    thresholds, counts = _block_counts(
        codes.astype(np.int64), len(cases), rows["threshold"].to_numpy(dtype=np.float64),
        rows["is_lesion"].to_numpy(dtype=np.int64), rows["confidence"].to_numpy(dtype=np.float64),
    )
    return np.asarray(cases), thresholds, counts


def _resampled_curve(thresholds: np.ndarray, counts: np.ndarray, pick: np.ndarray) -> PrecisionRecall:
    """The curve of the picked cases (with repeats; each draw counts as a case)."""
    weights = np.bincount(pick, minlength=counts.shape[0])
    return _curve(*_summed_counts(thresholds, np.tensordot(weights, counts, axes=1)), pick.size)


def _paired_summary(difference: np.ndarray, diffs: np.ndarray, level: float) -> dict:
    """:func:`paired_bootstrap`'s result from the observed difference and the resampled ones (first axis)."""
    low, high = _quantiles(diffs, level)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(diffs)
        below = np.where(finite, diffs <= 0, False).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
        above = np.where(finite, diffs >= 0, False).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    p_value = np.where(finite.any(axis=0), np.minimum(1.0, 2 * np.minimum(below, above)), np.nan)
    within = np.where(np.isfinite(low) & np.isfinite(high), (low <= 0) & (0 <= high), np.nan)
    result = {"difference": difference, "low": low, "high": high, "p_value": p_value, "within_noise": within}
    if difference.ndim == 0:
        return {key: float(value) for key, value in result.items()}
    return result


def _quantiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-element percentile interval of resampled values (first axis), NaNs left out."""
    alpha = (1 - level) / 2
    with warnings.catch_warnings():  # an element that is NaN in every resample stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(values, [alpha, 1 - alpha], axis=0) if len(values) else (np.nan, np.nan)
    return np.asarray(low), np.asarray(high)


def region_rows(
    probabilities: np.ndarray,
    channels: Sequence[str],
    reference: np.ndarray,
    *,
    schema: LabelSchema,
    mode: Literal["softmax", "sigmoid"],
    case_id: str | None = None,
    spacing: tuple[float, ...] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    min_overlap: float = 0.1,
    connectivity: int | None = None,
    size_edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3,
) -> pd.DataFrame:
    """:func:`lesion_rows` of every channel of one case, with a ``region`` column.

    Parameters
    ----------
    probabilities : ndarray of float, shape (K, *S)
        Foreground probabilities (``workbench.training.probabilities``): regions in sigmoid
        mode, classes in softmax mode.
    channels : sequence of str
        Their names, as ``schema.foreground_names(mode)``.
    reference : ndarray of int, shape (*S)
        The reference label map.
    schema : LabelSchema
    mode : {"softmax", "sigmoid"}
        In sigmoid mode, the threshold 0.5 is argmax; in softmax mode a class's ``p ≥ 0.5`` is
        within its argmax region, which can be larger.
    case_id : str, optional
    spacing : tuple of float, optional
    thresholds : sequence of float
        The operating thresholds (:data:`DEFAULT_THRESHOLDS`).
    min_overlap : float
        IoU a candidate needs to match a lesion.
    connectivity : int, optional
        Of candidates and lesions; default full (26 in 3D).
    size_edges_mm3 : sequence of float

    Returns
    -------
    DataFrame
        :data:`ROW_COLUMNS` and ``region`` (str): the channels' blocks one after the other.
    """
    names = tuple(schema.foreground_names(mode))
    if tuple(channels) != names:
        raise ValueError(f"Expected probability channels {names} for {schema.name!r} in {mode} mode, got {tuple(channels)}.")
    if mode == "sigmoid":
        masks = schema.to_region_masks(reference)
    else:
        classes = schema.to_class_map(reference)
        masks = np.stack([classes == k for k in range(1, len(names) + 1)])
    parts = []
    for name, probability, mask in zip(names, probabilities, masks):
        rows = lesion_rows(probability, mask, thresholds=thresholds, case_id=case_id, spacing=spacing,
                           min_overlap=min_overlap, connectivity=connectivity, size_edges_mm3=size_edges_mm3)
        parts.append(rows.assign(region=name))
    return pd.concat(parts, ignore_index=True)


def operating_points(
    rows: pd.DataFrame,
    *,
    precision: float = 0.85,
    argmax_threshold: float = 0.5,
    fp_per_case: float = 1.0,
    n_cases: int | None = None,
) -> pd.DataFrame:
    """Detection metrics at argmax, at each curve's best F1 and at a matched precision.

    Parameters
    ----------
    rows : DataFrame
        :func:`region_rows` of one model over cases (``case_id``, ``region``, ``threshold``,
        ``stratum``, ...). A stratum's rows are its lesions (by reference volume) and the false
        positives of its own volume, at every threshold.
    precision : float
        The matched precision (the multi-class study compares losses at 0.85–0.88).
    argmax_threshold : float
        The threshold argmax corresponds to (0.5 for sigmoid regions). When the rows' grid holds
        it, the point is exactly the lesion counts of thresholding there; otherwise the next
        higher grid threshold.
    fp_per_case : float
        The FROC point reported (``sensitivity_at_fp``).
    n_cases : int, optional
        Default: the number of distinct ``case_id``.

    Returns
    -------
    DataFrame
        One row per region and stratum (``all`` first, then each size stratum; a stratum's false
        positives are those of its own size): ``n_lesions, ap``, ``argmax_*``, ``best_f1_*`` and
        ``matched_*`` (``threshold, precision, recall, f1``; NaN when the precision is never
        reached) and ``sensitivity_at_fp``.
    """
    n_cases = int(rows["case_id"].nunique()) if n_cases is None else n_cases
    records = []
    for region, part in rows.groupby("region", sort=False):
        by_size = part.groupby("stratum")["volume_mm3"].min().sort_values().index  # strata from small to large
        for stratum in ["all", *by_size]:
            subset = part if stratum == "all" else part[part["stratum"] == stratum]
            curve = precision_recall(subset, n_cases=n_cases)
            record = {"region": region, "stratum": stratum, "n_lesions": curve.n_lesions, "ap": curve.average_precision}
            for prefix, point in (
                ("argmax", at_threshold(curve, argmax_threshold)),
                ("best_f1", best_f1(curve)),
                ("matched", at_precision(curve, precision)),
            ):
                for field in ("threshold", "precision", "recall", "f1"):
                    record[f"{prefix}_{field}"] = getattr(point, field) if point is not None else float("nan")
            record["sensitivity_at_fp"] = float(froc(curve, (fp_per_case,))["sensitivity"].iloc[0])
            records.append(record)
    return pd.DataFrame(records)


def volume_bias(lesions: pd.DataFrame, size_edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3) -> pd.DataFrame:
    """Predicted / true volume of the detected lesions, per region and size stratum.

    Parameters
    ----------
    lesions : DataFrame
        :func:`workbench.metrics.lesion_table` rows (columns ``region, status, ref_mm3, pred_mm3``
        and ``threshold``): the argmax predictions' matched lesions.

    Returns
    -------
    DataFrame
        ``region, stratum, n, volume_ratio`` (Σ predicted / Σ true volume of the TP pairs) and
        ``median_ratio`` (the median of the per-lesion ratios); strata by true volume, ``all`` first.
    """
    matched = lesions[lesions["status"] == "TP"]
    if "threshold" in matched and matched["threshold"].nunique() > 1:
        matched = matched[matched["threshold"] == matched["threshold"].min()]
    names = np.array(stratum_names(size_edges_mm3))
    matched = matched.assign(stratum=names[size_strata(matched["ref_mm3"].to_numpy(), size_edges_mm3)] if len(matched) else [])
    records = []
    for region, part in matched.groupby("region", sort=False):
        for stratum in ["all", *[n for n in names if n in set(part["stratum"])]]:
            subset = part if stratum == "all" else part[part["stratum"] == stratum]
            records.append({
                "region": region, "stratum": stratum, "n": len(subset),
                "volume_ratio": float(subset["pred_mm3"].sum() / subset["ref_mm3"].sum()),
                "median_ratio": float((subset["pred_mm3"] / subset["ref_mm3"]).median()),
            })
    return pd.DataFrame(records, columns=["region", "stratum", "n", "volume_ratio", "median_ratio"])


def _check_probability(probability: np.ndarray) -> np.ndarray:
    """float64 probabilities, refusing values outside [0, 1] and NaN."""
    probability = np.asarray(probability, dtype=np.float64)
    if probability.size and not (np.isfinite(probability).all() and probability.min() >= 0 and probability.max() <= 1):
        raise ValueError("Expected `probability` values in [0, 1] (no NaN).")
    return probability


def _candidates(probability: np.ndarray, threshold: float, score: str, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lesion_candidates` of checked arguments."""
    labels, count = connected_components(probability >= threshold, connectivity=connectivity)
    labels = labels.astype(np.int32, copy=False)
    if count == 0:
        return labels, np.zeros(0)
    foreground = np.flatnonzero(labels)
    ids, values = labels.ravel()[foreground] - 1, probability.ravel()[foreground]
    if score == "mean":
        return labels, np.bincount(ids, weights=values, minlength=count) / np.bincount(ids, minlength=count)
    confidences = np.zeros(count)  # every probability here is ≥ threshold > 0
    np.maximum.at(confidences, ids, values)
    return labels, confidences


def _point(curve: PrecisionRecall, k: int) -> CurvePoint:
    return CurvePoint(
        threshold=float(curve.thresholds[k]), precision=float(curve.precision[k]), recall=float(curve.recall[k]),
        f1=float(curve.f1[k]), fp_per_case=float(curve.fp_per_case[k]),
    )


def _max_overlap_matching(ref_ids: np.ndarray, cand_ids: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """One-to-one matching maximising the summed overlap among eligible pairs."""
    if ref_ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    refs, r = np.unique(ref_ids, return_inverse=True)
    cands, c = np.unique(cand_ids, return_inverse=True)
    weight = np.zeros((refs.size, cands.size))
    weight[r, c] = score
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = weight[rows, cols] > 0
    return refs[rows[keep]], cands[cols[keep]], weight[rows[keep], cols[keep]]


def _groups(rows: pd.DataFrame) -> list[tuple[object, np.ndarray]]:
    """(case id, positions of its rows), cases sorted by id."""
    codes, cases = pd.factorize(rows["case_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(cases) + 1))
    return [(case, order[bounds[i] : bounds[i + 1]]) for i, case in enumerate(cases)]


def _resample(rows: pd.DataFrame, groups: list[tuple[object, np.ndarray]], pick: np.ndarray) -> pd.DataFrame:
    """The rows of the picked cases (with repeats), each draw a case of its own (``case_id`` = draw index)."""
    positions = [groups[i][1] for i in pick]
    sample = rows.iloc[np.concatenate(positions)].copy() if positions else rows.iloc[:0].copy()
    sample["case_id"] = np.repeat(np.arange(len(pick)), [len(p) for p in positions])
    return sample
