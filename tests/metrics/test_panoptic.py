"""workbench.metrics.panoptic against hand-computed cases (panoptica as the oracle: tests/oracles)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _lesions import label_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.metrics.matching import Matching, OverlapTable, connected_components, match_instances, overlap_table
from workbench.metrics.panoptic import (
    DEFAULT_SIZE_EDGES_MM3,
    detection_metrics,
    panoptic_quality,
    size_strata,
    stratified_panoptic_quality,
    stratum_names,
)


def matching(pairs, n_pred, n_ref, threshold=0.5) -> Matching:
    """A Matching from (ref_id, pred_id, dice) triples."""
    refs = np.array([r for r, _, _ in pairs], dtype=np.int64)
    preds = np.array([p for _, p, _ in pairs], dtype=np.int64)
    dice = np.array([d for _, _, d in pairs], dtype=np.float64)
    return Matching(preds, refs, dice, n_pred, n_ref, threshold)


def table(pairs, pred_sizes, ref_sizes) -> OverlapTable:
    """An OverlapTable from (ref_id, pred_id, intersection) triples."""
    refs, preds, inter = (np.array([p[i] for p in pairs], dtype=np.int64) for i in range(3))
    return OverlapTable(np.array(pred_sizes), np.array(ref_sizes), preds, refs, inter)


# --- PQ, SQ, RQ ----------------------------------------------------------------------------


def test_quality_by_hand():
    # 3 refs, 4 preds, two matches with Dice 0.9 and 0.6: TP 2, FP 2, FN 1.
    q = panoptic_quality(matching([(1, 2, 0.9), (3, 1, 0.6)], n_pred=4, n_ref=3))
    assert (q.tp, q.fp, q.fn) == (2, 2, 1)
    assert q.sq == pytest.approx(0.75)
    assert q.rq == pytest.approx(2 / (2 + 1 + 0.5))
    assert q.pq == pytest.approx(0.75 * 2 / 3.5)


def test_quality_without_true_positives_is_zero_except_sq():
    q = panoptic_quality(matching([], n_pred=2, n_ref=1))
    assert (q.pq, q.rq, q.tp, q.fp, q.fn) == (0.0, 0.0, 0, 2, 1)
    assert math.isnan(q.sq)


def test_quality_without_components_is_undefined():
    q = panoptic_quality(matching([], n_pred=0, n_ref=0))
    assert all(math.isnan(v) for v in (q.pq, q.sq, q.rq)) and (q.tp, q.fp, q.fn) == (0, 0, 0)


def test_quality_of_a_split_lesion():
    # ref 0..8; prediction 0..5 and 6..8 (as in test_matching): Dice 10/13 matched, 4/10 not at 0.5.
    ref, pred = np.zeros((1, 10), bool), np.zeros((1, 10), bool)
    ref[0, 0:8] = pred[0, 0:5] = pred[0, 6:8] = True
    t = overlap_table(connected_components(pred)[0], connected_components(ref)[0])
    q = panoptic_quality(match_instances(t, 0.5))
    assert (q.tp, q.fp, q.fn) == (1, 1, 0)
    assert q.pq == pytest.approx((10 / 13) / 1.5)


# --- size strata ---------------------------------------------------------------------------


def test_size_strata_edges_belong_to_the_upper_stratum():
    assert size_strata(np.array([0.5, 99.99, 100.0, 999.0, 1000.0, 1e6])).tolist() == [0, 0, 1, 1, 2, 2]
    assert size_strata(np.array([5.0, 50.0]), (10.0,)).tolist() == [0, 1]
    assert DEFAULT_SIZE_EDGES_MM3 == (100.0, 1000.0)
    assert stratum_names() == ("<100", "100-1000", ">=1000")
    assert stratum_names([10]) == ("<10", ">=10")


@pytest.mark.parametrize("edges", [(), (100, 100), (1000, 100), (0, 10), (-5, 10), (10, float("inf")), (float("nan"),)])
def test_size_edges_must_increase_strictly_and_be_positive(edges):
    with pytest.raises(ValueError, match="`size_edges_mm3` to be strictly increasing, positive, finite"):
        stratum_names(edges)


def test_stratified_quality_by_hand():
    # refs of 50, 500, 5000 mm³; preds of 60 (matched to ref 1), 4000 and 20 mm³ (both FP).
    m = matching([(1, 1, 0.8)], n_pred=3, n_ref=3)
    strata = stratified_panoptic_quality(m, np.array([50.0, 500.0, 5000.0]), np.array([60.0, 4000.0, 20.0]))
    assert list(strata) == ["<100", "100-1000", ">=1000"]
    small, medium, large = strata.values()
    assert (small.tp, small.fp, small.fn) == (1, 1, 0)
    assert small.pq == pytest.approx(0.8 / 1.5) and small.sq == pytest.approx(0.8)
    assert (medium.tp, medium.fp, medium.fn, medium.pq, medium.rq) == (0, 0, 1, 0.0, 0.0)
    assert math.isnan(medium.sq)
    assert (large.tp, large.fp, large.fn, large.pq) == (0, 1, 1, 0.0)


def test_stratum_of_a_match_is_the_references():
    # A 90 mm³ reference matched by a 150 mm³ prediction counts as small, not medium.
    strata = stratified_panoptic_quality(matching([(1, 1, 0.75)], 1, 1), np.array([90.0]), np.array([150.0]))
    assert strata["<100"].tp == 1 and strata["100-1000"].tp + strata["100-1000"].fp == 0


def test_stratified_quality_checks_volume_shapes():
    with pytest.raises(ValueError, match=r"one volume per component, \(N_ref,\) = \(2,\)"):
        stratified_panoptic_quality(matching([], 1, 2), np.array([1.0]), np.array([1.0]))


@settings(max_examples=40, deadline=None)
@given(label_pairs(values=(1,)), st.sampled_from([0.1, 0.3, 0.5]))
def test_strata_add_up_to_the_region(pair, threshold):
    pred, ref = (m > 0 for m in pair)
    t = overlap_table(connected_components(pred)[0], connected_components(ref)[0])
    m = match_instances(t, threshold)
    strata = stratified_panoptic_quality(m, t.ref_sizes * 2.0, t.pred_sizes * 2.0, (8.0, 30.0))
    whole = panoptic_quality(m)
    for count in ("tp", "fp", "fn"):
        assert sum(getattr(q, count) for q in strata.values()) == getattr(whole, count)


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "pred_sizes", "ref_sizes", "expected"),
    [
        # one reference split into two predictions: both predictions hit, the lesion is found
        ([(1, 1, 3), (1, 2, 2)], [3, 2], [8], (1.0, 1.0, 1.0)),
        # two references merged into one prediction
        ([(1, 1, 4), (2, 1, 4)], [10], [4, 4], (1.0, 1.0, 1.0)),
        # one of two references found, plus one false positive
        ([(1, 1, 1)], [5, 5], [4, 4], (0.5, 0.5, 0.5)),
        # a one-voxel overlap is enough
        ([(1, 1, 1)], [100], [100], (1.0, 1.0, 1.0)),
        # nothing overlaps
        ([], [3], [3], (0.0, 0.0, 0.0)),
    ],
)
def test_detection_by_hand(pairs, pred_sizes, ref_sizes, expected):
    d = detection_metrics(table(pairs, pred_sizes, ref_sizes))
    assert (d.sensitivity, d.precision, d.f1) == pytest.approx(expected)
    assert (d.n_pred, d.n_ref) == (len(pred_sizes), len(ref_sizes))


def test_detection_with_an_empty_side():
    only_pred = detection_metrics(table([], [3], []))
    assert math.isnan(only_pred.sensitivity) and only_pred.precision == 0.0 and only_pred.f1 == 0.0
    only_ref = detection_metrics(table([], [], [3]))
    assert only_ref.sensitivity == 0.0 and math.isnan(only_ref.precision) and only_ref.f1 == 0.0
    neither = detection_metrics(table([], [], []))
    assert all(math.isnan(v) for v in neither[:3])
