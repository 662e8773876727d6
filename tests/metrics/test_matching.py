"""workbench.metrics.matching against hand-computed cases, scipy and brute force as oracles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from workbench.metrics.matching import OverlapTable, connected_components, match_instances, overlap_table


def segments(length: int, *spans: tuple[int, int]) -> np.ndarray:
    """A (1, length) instance map: span ``i`` (start, stop) gets id ``i + 1``."""
    labels = np.zeros((1, length), dtype=np.int64)
    for i, (start, stop) in enumerate(spans, start=1):
        labels[0, start:stop] = i
    return labels


def table_of(pred_spans, ref_spans, length: int = 16) -> OverlapTable:
    return overlap_table(segments(length, *pred_spans), segments(length, *ref_spans))


# --- connected_components ------------------------------------------------------------------


@pytest.mark.parametrize(("connectivity", "expected"), [(26, 1), (18, 2), (6, 2)])
def test_components_of_cubes_touching_at_a_corner(connectivity, expected):
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[0:2, 0:2, 0:2] = mask[2:4, 2:4, 2:4] = True
    assert connected_components(mask, connectivity=connectivity)[1] == expected


def test_components_default_to_full_connectivity_in_2d():
    mask = np.eye(4, dtype=bool)
    assert connected_components(mask)[1] == 1
    labels, n = connected_components(mask, connectivity=4)
    assert n == 4 and labels.dtype == np.uint32
    np.testing.assert_array_equal(np.diag(labels), [1, 2, 3, 4])  # raster order


@settings(max_examples=30, deadline=None)
@given(arrays(np.bool_, (7, 8, 9)), st.sampled_from([6, 18, 26]))
def test_components_agree_with_scipy(mask, connectivity):
    structure = ndi.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    expected, n_expected = ndi.label(mask, structure)
    labels, n = connected_components(mask, connectivity=connectivity)
    assert n == n_expected
    # Same partition: the two labelings are related by a one-to-one map of ids.
    pairs = np.unique(np.stack([labels[mask], expected[mask]]), axis=1)
    assert pairs.shape[1] == n


@pytest.mark.parametrize(
    ("mask", "connectivity", "message"),
    [
        (np.zeros((4, 4), dtype=np.uint8), None, "boolean array, but got dtype uint8"),
        (np.zeros(4, dtype=bool), None, r"2D or 3D .* shape \(4,\)"),
        (np.zeros((4, 4), dtype=bool), 26, r"one of \(4, 8\) for 2D data, but got 26"),
    ],
)
def test_components_reject_bad_input(mask, connectivity, message):
    with pytest.raises(ValueError, match=message):
        connected_components(mask, connectivity=connectivity)


# --- overlap_table -------------------------------------------------------------------------


def test_overlap_table_by_hand():
    # ref:  1 1 1 1 . 2 2 .        pred: . 1 1 2 2 2 . 3
    ref = np.array([[1, 1, 1, 1, 0, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 2, 2, 2, 0, 3]])
    table = overlap_table(pred, ref)
    assert table.pred_sizes.tolist() == [2, 3, 1] and table.ref_sizes.tolist() == [4, 2]
    assert table.ref_ids.tolist() == [1, 1, 2]
    assert table.pred_ids.tolist() == [1, 2, 2]
    assert table.intersection.tolist() == [2, 1, 1]
    np.testing.assert_allclose(table.dice, [4 / 6, 2 / 7, 2 / 5])
    assert (table.n_pred, table.n_ref) == (3, 2)


def test_overlap_table_without_overlap():
    table = overlap_table(np.array([[1, 0, 0]]), np.array([[0, 0, 1]]))
    assert table.pred_ids.size == table.ref_ids.size == table.dice.size == 0
    assert (table.n_pred, table.n_ref) == (1, 1)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, (5, 6, 7), elements=st.integers(0, 4)), arrays(np.int64, (5, 6, 7), elements=st.integers(0, 5)))
def test_overlap_table_agrees_with_a_dense_contingency_table(pred, ref):
    # Renumber to ids without gaps, as connected_components would give.
    pred = np.unique(pred, return_inverse=True)[1].reshape(pred.shape) + (0 if (pred == 0).any() else 1)
    ref = np.unique(ref, return_inverse=True)[1].reshape(ref.shape) + (0 if (ref == 0).any() else 1)
    dense = np.zeros((ref.max() + 1, pred.max() + 1), dtype=np.int64)
    np.add.at(dense, (ref.ravel(), pred.ravel()), 1)
    table = overlap_table(pred, ref)
    np.testing.assert_array_equal(table.ref_sizes, dense[1:].sum(axis=1))
    np.testing.assert_array_equal(table.pred_sizes, dense[:, 1:].sum(axis=0))
    rows, cols = np.nonzero(dense[1:, 1:])
    np.testing.assert_array_equal(table.ref_ids, rows + 1)
    np.testing.assert_array_equal(table.pred_ids, cols + 1)
    np.testing.assert_array_equal(table.intersection, dense[1:, 1:][rows, cols])


@pytest.mark.parametrize(
    ("pred", "ref", "message"),
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), r"same shape, but got \(2, 3\) and \(3, 2\)"),
        (np.array([[0, 2]]), np.array([[1, 0]]), r"`pred_labels` to number its instances 1..N without gaps, but ids \[1\]"),
        (np.array([[0, 1]]), np.array([[-1, 0]]), "`ref_labels` to hold non-negative instance ids, but got -1"),
        (np.array([[0.0, 1.0]]), np.array([[1, 0]]), "`pred_labels` to hold integer instance ids, but got dtype float64"),
    ],
)
def test_overlap_table_rejects_bad_labels(pred, ref, message):
    with pytest.raises(ValueError, match=message):
        overlap_table(pred, ref)


# --- match_instances -----------------------------------------------------------------------


def test_split_lesion_matches_its_larger_part():
    # ref 0..8 (8 voxels); the prediction splits it into 0..5 and 6..8.
    table = table_of([(0, 5), (6, 8)], [(0, 8)])
    np.testing.assert_allclose(table.dice, [10 / 13, 4 / 10])
    matching = match_instances(table, 0.3)
    assert matching.pred_ids.tolist() == [1] and matching.ref_ids.tolist() == [1]
    assert (matching.tp, matching.fp, matching.fn) == (1, 1, 0)
    np.testing.assert_allclose(matching.dice, [10 / 13])
    none = match_instances(table, 0.8)
    assert (none.tp, none.fp, none.fn) == (0, 2, 1)


def test_merged_lesions_match_one_reference():
    # refs 0..4 and 5..9 (4 voxels each, a gap between); one prediction 0..10 covers both.
    table = table_of([(0, 10)], [(0, 4), (5, 9)])
    np.testing.assert_allclose(table.dice, [8 / 14, 8 / 14])
    matching = match_instances(table, 0.5)
    assert (matching.tp, matching.fp, matching.fn) == (1, 0, 1)
    assert matching.ref_ids.tolist() in ([1], [2])


def test_hungarian_beats_greedy():
    # A = 0..9, B = 10..13; X = 4..13 overlaps both, Y = 0..3 lies inside A.
    # Dice(A, X) = 5/9 is the largest, but A–Y and B–X (1/2 each) total more.
    table = table_of([(0, 3), (4, 13)], [(0, 9), (10, 13)])
    np.testing.assert_allclose(table.dice, [1 / 2, 5 / 9, 1 / 2])
    matching = match_instances(table, 0.5)
    assert list(zip(matching.ref_ids.tolist(), matching.pred_ids.tolist())) == [(1, 1), (2, 2)]
    assert (matching.tp, matching.fp, matching.fn) == (2, 0, 0)


def test_tie_in_total_dice_goes_to_more_pairs():
    # A = 1..10, B = 11..14; X = 4..13, Y = 0..3: Dice(A, X) = 2/3 = Dice(A, Y) + Dice(B, X).
    # Both matchings have the same PQ; the one with two pairs has the higher RQ.
    table = table_of([(0, 3), (4, 13)], [(1, 10), (11, 14)])
    np.testing.assert_allclose(table.dice, [1 / 3, 2 / 3, 1 / 3])
    matching = match_instances(table, 0.3)
    assert list(zip(matching.ref_ids.tolist(), matching.pred_ids.tolist())) == [(1, 1), (2, 2)]
    only_best = match_instances(table, 0.5)  # the 1/3 pairs are not eligible
    assert list(zip(only_best.ref_ids.tolist(), only_best.pred_ids.tolist())) == [(1, 2)]


def test_tie_between_equal_pairs_is_deterministic():
    # One 3-voxel reference, two 1-voxel predictions inside it: both pairs have Dice 1/2.
    table = table_of([(0, 1), (2, 3)], [(0, 3)])
    np.testing.assert_allclose(table.dice, [2 / 4, 2 / 4])
    first = match_instances(table, 0.5)
    assert first.tp == 1 and first.fp == 1
    for _ in range(3):
        again = match_instances(table, 0.5)
        assert again.pred_ids.tolist() == first.pred_ids.tolist()


def test_dice_equal_to_the_threshold_matches():
    table = table_of([(1, 3)], [(0, 2)])  # intersection 1, sizes 2 and 2: Dice 0.5 exactly
    assert table.dice.tolist() == [0.5]
    assert match_instances(table, 0.5).tp == 1
    assert match_instances(table, np.nextafter(0.5, 1.0)).tp == 0


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_match_rejects_thresholds_outside_0_1(threshold):
    with pytest.raises(ValueError, match=r"`threshold` to be a Dice value in \(0, 1\]"):
        match_instances(table_of([(0, 2)], [(0, 2)]), threshold)


def brute_force_best(table: OverlapTable, threshold: float) -> tuple[float, int]:
    """Largest (total Dice + 1e-9 per pair) over all one-to-one matchings of eligible pairs."""
    pairs = [(r, p, d) for r, p, d in zip(table.ref_ids, table.pred_ids, table.dice) if d >= threshold]
    best = (0.0, 0)
    for k in range(1, len(pairs) + 1):
        for subset in itertools.combinations(pairs, k):
            refs, preds = {r for r, _, _ in subset}, {p for _, p, _ in subset}
            if len(refs) == k and len(preds) == k:
                total = sum(d for _, _, d in subset)
                if total + 1e-9 * k > best[0] + 1e-9 * best[1]:
                    best = (total, k)
    return best


spans = st.lists(st.tuples(st.integers(0, 22), st.integers(1, 6)), min_size=0, max_size=6)


def disjoint(raw):
    """Turn (start, length) draws into separated spans (a gap of ≥ 1 voxel between them)."""
    taken = np.zeros(24, dtype=bool)
    out = []
    for start, length in raw:
        stop = min(start + length, 24)
        if not taken[max(start - 1, 0) : min(stop + 1, 24)].any():
            taken[start:stop] = True
            out.append((start, stop))
    return sorted(out)


@settings(max_examples=150, deadline=None)
@given(spans, spans, st.sampled_from([0.1, 0.3, 0.5, 0.7]))
def test_matching_is_optimal_against_brute_force(raw_pred, raw_ref, threshold):
    pred_spans, ref_spans = disjoint(raw_pred), disjoint(raw_ref)
    table = overlap_table(segments(24, *pred_spans), segments(24, *ref_spans))
    matching = match_instances(table, threshold)
    assert np.all(matching.dice >= threshold)
    assert len(set(matching.ref_ids.tolist())) == matching.tp == len(set(matching.pred_ids.tolist()))
    total, count = brute_force_best(table, threshold)
    assert matching.dice.sum() == pytest.approx(total, abs=1e-12)
    assert matching.tp == count
