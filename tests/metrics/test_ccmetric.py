"""workbench.metrics.ccmetric against hand-made cases, the dense Voronoi partition of
workbench.instances and exact brute force (the CCMetrics package as the oracle: tests/oracles)."""

from __future__ import annotations

from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _lesions import box, mask_of, mask_pairs

from workbench.instances import instance_maps
from workbench.metrics import ccmetric
from workbench.metrics.ccmetric import cc_dice, cc_dice_from_cells
from workbench.metrics.matching import connected_components


# --- hand-made cases -----------------------------------------------------------------------


def test_one_lesion_found_one_missed():
    ref = box((10, 20, 20), (2, 2, 2), (3, 3, 3)) | box((10, 20, 20), (5, 14, 14), (2, 4, 4))
    pred = box((10, 20, 20), (2, 2, 2), (3, 3, 3))
    np.testing.assert_array_equal(cc_dice(pred, ref), [1.0, 0.0])


def test_false_positive_counts_in_the_cell_it_lies_in():
    # Lesions of 8 voxels at the two ends of a 1 × 30 image (2D); cells split at x = 14.5.
    first, second = box((1, 30), (0, 0), (1, 8)), box((1, 30), (0, 22), (1, 8))
    ref = first | second
    near_second = ref | box((1, 30), (0, 15), (1, 4))  # 4 false voxels, nearer the second lesion
    np.testing.assert_allclose(cc_dice(near_second, ref), [1.0, 16 / 20])
    near_first = ref | box((1, 30), (0, 11), (1, 4))  # x = 11..14, nearer the first
    np.testing.assert_allclose(cc_dice(near_first, ref), [16 / 20, 1.0])


def test_partial_overlap():
    ref = box((8, 8, 8), (1, 1, 1), (2, 2, 2))  # 8 voxels
    pred = box((8, 8, 8), (2, 1, 1), (2, 2, 2))  # 8 voxels, 4 shared
    np.testing.assert_allclose(cc_dice(pred, ref), [2 * 4 / 16])


def test_connectivity_decides_the_components():
    ref = mask_of((4, 4, 4), (1, 1, 1), (2, 2, 2))  # touching at a corner
    pred = mask_of((4, 4, 4), (1, 1, 1))
    np.testing.assert_allclose(cc_dice(pred, ref), [2 / 3])
    np.testing.assert_allclose(cc_dice(pred, ref, connectivity=6), [1.0, 0.0])
    np.testing.assert_allclose(cc_dice(pred[1], ref[1] | mask_of((4, 4), (2, 2)), connectivity=4), [1.0, 0.0])


def test_empty_reference_gives_no_scores():
    empty, blob = np.zeros((6, 6, 6), dtype=bool), box((6, 6, 6), (1, 1, 1), (2, 2, 2))
    for pred in (empty, blob):
        scores = cc_dice(pred, empty)
        assert scores.shape == (0,) and scores.dtype == np.float64


def test_ties_go_to_the_smaller_id():
    # Seeds 1 at (1, 2) and 2 at (3, 0): (2, 1) is √2 from both. We give it to lesion 1.
    ref = mask_of((4, 6), (1, 2), (3, 0))
    pred = ref | mask_of((4, 6), (2, 1))
    np.testing.assert_allclose(cc_dice(pred, ref), [2 / 3, 1.0])


def test_spacing_moves_the_cells():
    # Seeds (0, 0) and (4, 4); (3, 0) is 3 voxels from the first and √17 from the second, but with
    # 3 mm rows it is 9 mm from the first and √(9 + 16) = 5 mm from the second.
    ref = mask_of((5, 5), (0, 0), (4, 4))
    pred = ref | mask_of((5, 5), (3, 0))
    np.testing.assert_allclose(cc_dice(pred, ref), [2 / 3, 1.0])
    np.testing.assert_allclose(cc_dice(pred, ref, spacing=(3.0, 1.0)), [1.0, 2 / 3])


def test_from_cells_reuses_instance_maps():
    ref = box((12, 12, 12), (1, 1, 1), (3, 3, 3)) | box((12, 12, 12), (7, 6, 8), (2, 4, 3))
    pred = box((12, 12, 12), (2, 1, 1), (3, 3, 3)) | box((12, 12, 12), (8, 2, 8), (2, 2, 2))
    maps = instance_maps(ref[None, None], mode="sigmoid", spacing=(2.0, 1.0, 1.0))
    np.testing.assert_array_equal(
        cc_dice_from_cells(pred, maps.components[0, 0], maps.cells[0, 0]),
        cc_dice(pred, ref, spacing=(2.0, 1.0, 1.0)),
    )


def test_many_equidistant_components_go_to_the_smallest_id():
    # The centre is 2 voxels from six one-voxel lesions (more than the k-d tree's first query
    # fetches); raster order numbers the one at z = 2 first.
    centre = (4, 4, 4)
    seeds = [tuple(c + (d if a == axis else 0) for a, c in enumerate(centre)) for axis in range(3) for d in (-2, 2)]
    ref = mask_of((9, 9, 9), *seeds)
    pred = ref | mask_of((9, 9, 9), centre)
    assert ref[2, 4, 4] and connected_components(ref)[0][2, 4, 4] == 1
    np.testing.assert_array_equal(cc_dice(pred, ref), [2 / 3, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(cc_dice(pred, ref, spacing=(2.0, 2.0, 2.0)), [2 / 3, 1, 1, 1, 1, 1])
    # With 2 mm rows the two lesions along z are 4 mm away, the four others 2 mm: the first of
    # those (y = 2) gets the centre.
    np.testing.assert_array_equal(cc_dice(pred, ref, spacing=(2.0, 1.0, 1.0)), [1, 2 / 3, 1, 1, 1, 1])


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("transpose", [False, True])
def test_a_tie_behind_two_voxels_of_one_lesion(turns, transpose):
    # The centre (3, 3) is √5 from both voxels of a two-voxel lesion and from a one-voxel lesion:
    # it goes to the smaller id, even where the k-d tree lists the two voxels of the other first.
    ref = mask_of((7, 7), (4, 5), (5, 4), (1, 2))
    ref = np.rot90(ref, turns).T if transpose else np.rot90(ref, turns)
    pred = ref | mask_of((7, 7), (3, 3))
    components, _ = connected_components(ref)
    first_is_single = np.count_nonzero(components == 1) == 1
    expected = [2 / 3, 1.0] if first_is_single else [0.8, 1.0]  # 2·1 / (2 + 1) or 2·2 / (3 + 2)
    np.testing.assert_array_equal(cc_dice(pred, ref), expected)
    np.testing.assert_array_equal(cc_dice(pred, ref), dense_cc_dice(pred, ref, None))


def test_isotropic_spacing_changes_nothing():
    # (0, 2) is √2 voxels from both lesions, so it goes to the first at any isotropic spacing.
    # (The dense partition of instance_maps rounds 1.05² and gives it to the second.)
    ref = mask_of((3, 4), (1, 1), (1, 3))
    pred = ref | mask_of((3, 4), (0, 2))
    for size in (1.0, 1.05, 0.1, 1.0516129032258064, 3.3):
        np.testing.assert_array_equal(cc_dice(pred, ref, spacing=(size, size)), [2 / 3, 1.0])
    # Ties at (2, 1) and along the middle column.
    ref = mask_of((5, 7), (1, 2), (3, 0), (0, 6), (4, 6))
    pred = np.ones((5, 7), dtype=bool)
    expected = cc_dice(pred, ref)
    for size in (1.05, 0.1, 1.0516129032258064, 3.3):
        np.testing.assert_array_equal(cc_dice(pred, ref, spacing=(size, size)), expected)


def test_rejects_bad_inputs():
    mask = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match=r"same shape, but got \(4, 4, 4\) and \(4, 4\)"):
        cc_dice(mask, mask[0])
    with pytest.raises(ValueError, match=r"`pred` to hold only 0 and 1, but got values \[0, 3\]"):
        cc_dice(np.where(mask_of((4, 4, 4), (0, 0, 0)), 3, 0), mask)
    with pytest.raises(ValueError, match=r"`connectivity` to be one of \(4, 8\) for 2D data, but got 26"):
        cc_dice(mask[0], mask[0], connectivity=26)
    with pytest.raises(ValueError, match="`spacing` to be 3 positive"):
        cc_dice(mask, mask, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match=r"`cells` of shape \(4, 4, 4\)"):
        cc_dice_from_cells(mask, np.zeros((4, 4, 4), np.int32), np.zeros((4, 4), np.int32))


# --- the dense Voronoi partition and exact brute force as oracles ------------------------

# Spacings whose squares are short binary fractions: the dense partition of workbench.instances
# is exact for these, and so must agree with cc_dice voxel for voxel, ties included.
EXACT_SPACINGS = {
    2: [None, (1.0, 1.0), (2.0, 0.5), (0.75, 2.5), (3.0, 1.0), (1.0, 1.25)],
    3: [None, (1.0, 1.0, 1.0), (2.0, 1.0, 0.5), (0.75, 2.5, 1.25), (3.0, 1.0, 1.0), (1.0, 1.0, 0.5)],
}
# Spacings that are not: there, only exact arithmetic gives the true cells.
INEXACT_SPACINGS = {
    2: [(1.05, 1.05), (1.1, 1.0), (0.3, 0.4), (1.05, 2.1), (0.9, 1.2)],
    3: [(1.05, 1.05, 1.05), (1.0516129032258064,) * 3, (1.05, 1.05, 2.1), (0.9, 1.2, 1.5), (0.3, 0.4, 0.5)],
}


@st.composite
def tied_lesions(draw, ndim, max_side):
    """A small reference of 1-4 tiny boxes, each mirrored across the centre along some axes
    (so that many voxels lie midway between lesions), and a random prediction."""
    shape = tuple(draw(st.integers(3, max_side)) for _ in range(ndim))
    ref = np.zeros(shape, dtype=bool)
    for _ in range(draw(st.integers(1, 4))):
        lesion = box(shape, [draw(st.integers(0, s - 1)) for s in shape], [draw(st.integers(1, 2)) for _ in shape])
        ref |= lesion
        for axes in draw(st.lists(st.sets(st.integers(0, ndim - 1), min_size=1), max_size=3)):
            ref |= np.flip(lesion, axis=tuple(axes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pred = rng.random(shape) < draw(st.sampled_from([0.2, 0.6, 1.0]))
    return pred, ref


def dense_cc_dice(pred, ref, spacing):
    """The former cc_dice: the dense Voronoi partition of every voxel, then cc_dice_from_cells."""
    maps = instance_maps(ref[None, None], mode="sigmoid", spacing=spacing)
    return cc_dice_from_cells(pred, maps.components[0, 0], maps.cells[0, 0])


def brute_force_cc_dice(pred, ref, spacing):
    """Every predicted voxel against every reference voxel in exact rational arithmetic."""
    components, count = connected_components(ref)
    squares = [Fraction(float(s)) ** 2 for s in spacing]
    seeds, seed_ids = np.argwhere(ref), components[ref]
    cells = np.ones(ref.shape, dtype=np.int64)
    for voxel in np.argwhere(pred & ~ref):
        offsets = (seeds - voxel) ** 2
        distances = [sum(Fraction(int(o)) * w for o, w in zip(row, squares)) for row in offsets]
        cells[tuple(voxel)] = min(zip(distances, seed_ids))[1]
    return cc_dice_from_cells(pred, components, np.where(ref, components, cells))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]), neighbours=st.sampled_from([2, 4]))
def test_equals_the_dense_partition(data, ndim, neighbours):
    """Exactly (==) on tie-heavy small grids and on larger random boxes, for exact spacings; with
    2 first neighbours most ties take the gather-all path."""
    strategy = tied_lesions(ndim, 9 if ndim == 3 else 16) if data.draw(st.booleans()) else mask_pairs(ndim)
    pred, ref = data.draw(strategy)
    spacing = data.draw(st.sampled_from(EXACT_SPACINGS[ndim]))
    with mock.patch.object(ccmetric, "_NEIGHBOURS", neighbours):
        ours = cc_dice(pred, ref, spacing=spacing)
    np.testing.assert_array_equal(ours, dense_cc_dice(pred, ref, spacing))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_exact_for_any_spacing(data, ndim):
    """For spacings whose squares are not short binary fractions (1.05 mm, ...), against brute
    force in exact arithmetic; the dense partition rounds there and may break ties otherwise."""
    pred, ref = data.draw(tied_lesions(ndim, 6 if ndim == 3 else 10))
    spacing = data.draw(st.sampled_from(INEXACT_SPACINGS[ndim]))
    np.testing.assert_array_equal(cc_dice(pred, ref, spacing=spacing), brute_force_cc_dice(pred, ref, spacing))
