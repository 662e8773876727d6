"""Panoptic quality per Dice threshold, its size-stratified version, and detection metrics.

Definitions (multi-class paper §2.7, after Kirillov et al. 2019, with Dice in place of IoU; blob
paper §2.5 for detection). With the one-to-one matching of :func:`~workbench.metrics.matching.match_instances`
at threshold ``t``:

.. math::

    SQ = \\frac{1}{TP}\\sum_{(p, r) \\in TP} \\mathrm{Dice}(p, r), \\qquad
    RQ = \\frac{TP}{TP + \\tfrac12 FP + \\tfrac12 FN}, \\qquad
    PQ = SQ \\cdot RQ = \\frac{\\sum_{TP} \\mathrm{Dice}}{TP + \\tfrac12 FP + \\tfrac12 FN}.

Values that are 0/0 are returned as NaN — SQ when there is no TP, everything when there is no
component at all — and never replaced here: :class:`~workbench.metrics.case.EmptyPolicy` decides
what a case reports. PQ is taken from its last form, so it is 0 (not NaN) when components exist
but none matched.

Examples
--------
>>> import numpy as np
>>> from workbench.metrics.matching import Matching
>>> m = Matching(pred_ids=np.array([1]), ref_ids=np.array([2]), dice=np.array([0.8]),
...              n_pred=2, n_ref=2, threshold=0.5)
>>> panoptic_quality(m)           # TP 1, FP 1, FN 1: RQ = 1 / 2
PanopticQuality(pq=0.4, sq=0.8, rq=0.5, tp=1, fp=1, fn=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from workbench.metrics.matching import Matching, OverlapTable

__all__ = [
    "DEFAULT_SIZE_EDGES_MM3",
    "Detection",
    "PanopticQuality",
    "detection_metrics",
    "panoptic_quality",
    "size_strata",
    "stratified_panoptic_quality",
    "stratum_names",
]

DEFAULT_SIZE_EDGES_MM3: tuple[float, ...] = (100.0, 1000.0)
"""Edges of the lesion size strata in mm³: small < 100 ≤ medium < 1000 ≤ large.

Spheres of about 5.8 mm and 12.4 mm diameter, close to the 5 mm / 10 mm diameter classes used
clinically for brain metastases; BraTS-METS 2025 lesions have a median of about 80 mm³ (ET/TC)
and 120 mm³ (WT), so the three strata are all populated. The multi-class paper reports small /
medium / large PQ but its edges did not survive in our copy; pass ``size_edges_mm3`` to change them."""


class PanopticQuality(NamedTuple):
    """PQ, SQ, RQ (NaN where 0/0) and the counts they come from."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int


class Detection(NamedTuple):
    """Blob-paper detection metrics (NaN where 0/0) and the counts they come from.

    Attributes
    ----------
    sensitivity : float
        Reference components overlapped by any prediction voxel / reference components.
    precision : float
        Prediction components overlapping any reference voxel / prediction components.
    f1 : float
        Harmonic mean of the two (0 when either is 0).
    detected_ref, overlapping_pred, n_ref, n_pred : int
    """

    sensitivity: float
    precision: float
    f1: float
    detected_ref: int
    overlapping_pred: int
    n_ref: int
    n_pred: int


def panoptic_quality(matching: Matching) -> PanopticQuality:
    """PQ, SQ and RQ of one matching (one region, one threshold).

    Parameters
    ----------
    matching : Matching

    Returns
    -------
    PanopticQuality
        ``sq`` is NaN when TP = 0; all three are NaN when there is no component at all.
    """
    return _quality(matching.tp, matching.fp, matching.fn, float(matching.dice.sum()))


def _quality(tp: int, fp: int, fn: int, dice_sum: float) -> PanopticQuality:
    denominator = tp + 0.5 * fp + 0.5 * fn
    rq = tp / denominator if denominator else np.nan
    pq = dice_sum / denominator if denominator else np.nan
    sq = dice_sum / tp if tp else np.nan
    return PanopticQuality(float(pq), float(sq), float(rq), int(tp), int(fp), int(fn))


def size_strata(volumes_mm3: np.ndarray, edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3) -> np.ndarray:
    """Stratum index of each volume: ``i`` means ``edges[i - 1] ≤ v < edges[i]``.

    Parameters
    ----------
    volumes_mm3 : ndarray of float, shape (N,)
    edges_mm3 : sequence of float
        Strictly increasing, positive, finite; ``len(edges) + 1`` strata.

    Returns
    -------
    ndarray of int64, shape (N,), values ``0..len(edges)``

    Examples
    --------
    >>> size_strata(np.array([5.0, 100.0, 999.9, 1000.0])).tolist()
    [0, 1, 1, 2]
    """
    edges = check_size_edges(edges_mm3)
    return np.searchsorted(np.asarray(edges), np.asarray(volumes_mm3, dtype=np.float64), side="right").astype(np.int64)


def stratum_names(edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3) -> tuple[str, ...]:
    """Readable names of the strata, e.g. ``('<100', '100-1000', '>=1000')`` (mm³).

    Examples
    --------
    >>> stratum_names((10, 250.5))
    ('<10', '10-250.5', '>=250.5')
    """
    edges = check_size_edges(edges_mm3)
    inner = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return (f"<{edges[0]:g}", *inner, f">={edges[-1]:g}")


def check_size_edges(edges_mm3: Sequence[float]) -> tuple[float, ...]:
    """Validate stratum edges; returns them as floats.

    Raises
    ------
    ValueError
        If ``edges_mm3`` is empty, not strictly increasing, or holds a non-positive or
        non-finite value.
    """
    edges = tuple(float(e) for e in np.ravel(edges_mm3))
    values = np.asarray(edges)
    if not edges or not np.all(np.isfinite(values)) or values[0] <= 0 or np.any(np.diff(values) <= 0):
        raise ValueError(
            f"Expected `size_edges_mm3` to be strictly increasing, positive, finite volumes in mm³, "
            f"but got {tuple(np.ravel(edges_mm3))}."
        )
    return edges


def stratified_panoptic_quality(
    matching: Matching,
    ref_volumes_mm3: np.ndarray,
    pred_volumes_mm3: np.ndarray,
    edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3,
) -> dict[str, PanopticQuality]:
    """PQ, SQ, RQ per lesion size stratum.

    Parameters
    ----------
    matching : Matching
        Matching of the whole region (the strata do not re-match).
    ref_volumes_mm3 : ndarray of float, shape (N_ref,)
        Volume of reference component ``j + 1``.
    pred_volumes_mm3 : ndarray of float, shape (N_pred,)
        Volume of prediction component ``i + 1``.
    edges_mm3 : sequence of float

    Returns
    -------
    dict
        Stratum name (:func:`stratum_names`) -> :class:`PanopticQuality`, in size order.

    Notes
    -----
    A true positive and a false negative fall in the stratum of their **reference** lesion's
    volume; a false positive (an unmatched prediction) in the stratum of its **own** volume, so
    that false positives are attributed to a size class too. Summing TP, FP and FN over the
    strata gives the region's counts.
    """
    edges = check_size_edges(edges_mm3)
    ref_volumes_mm3, pred_volumes_mm3 = np.asarray(ref_volumes_mm3), np.asarray(pred_volumes_mm3)
    if ref_volumes_mm3.shape != (matching.n_ref,) or pred_volumes_mm3.shape != (matching.n_pred,):
        raise ValueError(
            f"Expected one volume per component, (N_ref,) = ({matching.n_ref},) and (N_pred,) = ({matching.n_pred},), "
            f"but got {ref_volumes_mm3.shape} and {pred_volumes_mm3.shape}."
        )
    n_strata = len(edges) + 1
    ref_stratum = size_strata(ref_volumes_mm3, edges)
    unmatched_pred = np.ones(matching.n_pred, dtype=bool)
    unmatched_pred[matching.pred_ids - 1] = False
    refs = np.bincount(ref_stratum, minlength=n_strata)
    tp = np.bincount(ref_stratum[matching.ref_ids - 1], minlength=n_strata)
    dice_sum = np.bincount(ref_stratum[matching.ref_ids - 1], weights=matching.dice, minlength=n_strata)
    fp = np.bincount(size_strata(pred_volumes_mm3[unmatched_pred], edges), minlength=n_strata)
    return {
        name: _quality(int(tp[s]), int(fp[s]), int(refs[s] - tp[s]), float(dice_sum[s]))
        for s, name in enumerate(stratum_names(edges))
    }


def detection_metrics(table: OverlapTable) -> Detection:
    """Instance sensitivity, precision and F1 with any-overlap true positives (blob paper §2.5).

    Parameters
    ----------
    table : OverlapTable

    Returns
    -------
    Detection
        ``sensitivity`` is NaN without reference components, ``precision`` without prediction
        components, ``f1`` when both are NaN.

    Notes
    -----
    The blob paper counts a prediction component overlapping a reference by ≥ 1 voxel as a TP
    and a reference with no overlap as a FN, then writes ``S = TP / (TP + FN)``. Read literally
    this mixes prediction and reference counts (one lesion split into three predictions gives
    TP = 3), so here each side is counted in its own units: sensitivity is the fraction of
    reference lesions hit, precision the fraction of predicted lesions that hit. Both
    definitions agree whenever no lesion is split or merged.

    Examples
    --------
    >>> from workbench.metrics.matching import OverlapTable
    >>> t = OverlapTable(pred_sizes=np.array([3, 3, 3]), ref_sizes=np.array([4, 4]),
    ...                  pred_ids=np.array([1, 2]), ref_ids=np.array([1, 1]), intersection=np.array([1, 2]))
    >>> d = detection_metrics(t)     # ref 1 hit twice, ref 2 missed, pred 3 hits nothing
    >>> d.sensitivity, round(d.precision, 4), round(d.f1, 4)
    (0.5, 0.6667, 0.5714)
    """
    detected_ref = int(np.unique(table.ref_ids).size)
    overlapping_pred = int(np.unique(table.pred_ids).size)
    sensitivity = detected_ref / table.n_ref if table.n_ref else np.nan
    precision = overlapping_pred / table.n_pred if table.n_pred else np.nan
    return Detection(
        sensitivity=float(sensitivity),
        precision=float(precision),
        f1=_f1(sensitivity, precision),
        detected_ref=detected_ref,
        overlapping_pred=overlapping_pred,
        n_ref=table.n_ref,
        n_pred=table.n_pred,
    )


def _f1(sensitivity: float, precision: float) -> float:
    """Harmonic mean; 0 if either is 0 (its limit), NaN if one is NaN and the other is not 0."""
    if sensitivity == 0 or precision == 0:
        return 0.0
    return float(2 * sensitivity * precision / (sensitivity + precision))
