"""workbench.metrics.surface against hand-computed cases and MONAI as the oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from workbench.metrics.surface import (
    hd95,
    hd95_from_distances,
    surface_dice,
    surface_dice_from_distances,
    surface_distances,
)


def box(shape, corner, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return mask


def monai_scores(pred, ref, spacing, tolerance):
    """MONAI's surface Dice and symmetric HD95 of one pair of masks (float64 inputs: its float32 quantile
    differs from the exact HD95 by up to ~1e-5 relative)."""
    y_pred = torch.from_numpy(pred[None, None].astype(np.float64))
    y = torch.from_numpy(ref[None, None].astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on empty masks
        nsd = compute_surface_dice(y_pred, y, [tolerance], include_background=True, spacing=list(spacing))
        hd = compute_hausdorff_distance(y_pred, y, include_background=True, percentile=95, spacing=list(spacing))
    return float(nsd[0, 0]), float(hd[0, 0])


# --- hand-computed cases -------------------------------------------------------------------


def test_identical_masks():
    mask = box((10, 12, 9), (2, 3, 1), (4, 5, 6))
    assert hd95(mask, mask, spacing=(2.0, 1.0, 0.5)) == 0.0
    assert surface_dice(mask, mask, spacing=(2.0, 1.0, 0.5), tolerance_mm=0.0) == 1.0


@pytest.mark.parametrize(("axis", "spacing"), [(0, (1.5, 1.0, 0.5)), (1, (1.0, 3.0, 0.5)), (2, (2.0, 1.0, 0.75))])
def test_cubes_offset_along_one_axis(axis, spacing):
    # 4³ cubes 5 voxels apart: one empty layer between them. A border voxel in layer j of one cube
    # (j = 0 nearest the other) is (2 + j) voxels from the other cube's facing face, which is all
    # border. Layers hold 16, 12, 12, 16 border voxels (the 2×2 core of the middle layers is inside).
    corner = [3, 3, 3]
    ref = box((16, 16, 16), corner, (4, 4, 4))
    corner[axis] += 5
    pred = box((16, 16, 16), corner, (4, 4, 4))
    step = spacing[axis]
    expected = np.repeat(np.array([2.0, 3.0, 4.0, 5.0]) * step, [16, 12, 12, 16])
    pred_to_ref, ref_to_pred = surface_distances(pred, ref, spacing=spacing)
    np.testing.assert_allclose(np.sort(pred_to_ref), expected, rtol=1e-12)
    np.testing.assert_allclose(np.sort(ref_to_pred), expected, rtol=1e-12)
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(5.0 * step)  # 95 % lies in the last layer
    assert surface_dice(pred, ref, spacing=spacing, tolerance_mm=3.0 * step) == pytest.approx(28 / 56)
    assert surface_dice(pred, ref, spacing=spacing, tolerance_mm=1.9 * step) == 0.0


def test_hd95_interpolates_between_distances():
    # A one-row image (every pixel is border): pred = ref plus a pixel 10 pixels (5 mm) past its end.
    ref = np.zeros((1, 40), dtype=bool)
    ref[0, 0:20] = True
    pred = ref.copy()
    pred[0, 29] = True  # 10 pixels past the end of ref: 5 mm
    pred_to_ref, ref_to_pred = surface_distances(pred, ref, spacing=(1.0, 0.5))
    assert sorted(pred_to_ref.tolist()) == [0.0] * 20 + [5.0]
    assert ref_to_pred.tolist() == [0.0] * 20
    # np.percentile on 21 values: position 0.95 · 20 = 19 → the 20th smallest, 0.
    assert hd95(pred, ref, spacing=(1.0, 0.5)) == 0.0
    pred[0, 30] = True  # now 22 values: position 19.95 → 0 + 0.95 · (5 - 0)
    assert hd95(pred, ref, spacing=(1.0, 0.5)) == pytest.approx(0.95 * 5.0)


def test_border_uses_face_neighbours_and_image_edge():
    # 3³ cube minus one corner: the centre still has all 6 face neighbours inside (not border),
    # even though a diagonal neighbour is outside. 26 voxels - corner - centre = 25 border voxels.
    cube = box((5, 5, 5), (1, 1, 1), (3, 3, 3))
    cube[1, 1, 1] = False
    assert surface_distances(cube, cube, spacing=(1.0, 1.0, 1.0))[0].size == 25
    # A mask filling the image: only its interior core is not border (outside the image counts).
    full = np.ones((3, 4, 5), dtype=bool)
    assert surface_distances(full, full, spacing=(1.0, 1.0, 1.0))[0].size == 3 * 4 * 5 - 1 * 2 * 3


def test_distance_equal_to_tolerance_counts_as_within():
    # 3 voxels of 0.1 mm: 3 * 0.1 = 0.30000000000000004 > 0.3 in floating point.
    ref = box((1, 8), (0, 0), (1, 1))
    pred = box((1, 8), (0, 3), (1, 1))
    assert surface_distances(pred, ref, spacing=(1.0, 0.1))[0][0] > 0.3
    assert surface_dice(pred, ref, spacing=(1.0, 0.1), tolerance_mm=0.3) == 1.0
    assert surface_dice(pred, ref, spacing=(1.0, 0.1), tolerance_mm=0.2999) == 0.0


def test_distances_reused_give_the_same_scores():
    ref = box((12, 12, 12), (2, 2, 2), (5, 4, 3))
    pred = box((12, 12, 12), (3, 2, 1), (5, 5, 3))
    spacing = (1.2, 0.8, 2.5)
    distances = surface_distances(pred, ref, spacing=spacing)
    assert hd95_from_distances(*distances) == hd95(pred, ref, spacing=spacing)
    assert surface_dice_from_distances(*distances, tolerance_mm=1.0) == surface_dice(
        pred, ref, spacing=spacing, tolerance_mm=1.0
    )


def test_int_masks_are_accepted():
    ref = box((6, 6), (1, 1), (3, 3))
    assert hd95(ref.astype(np.uint8), ref.astype(np.int64), spacing=(1.0, 1.0)) == 0.0


# --- empty masks ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["pred", "ref", "both"])
def test_empty_mask_gives_nan(which):
    mask, empty = box((6, 6, 6), (1, 1, 1), (2, 2, 2)), np.zeros((6, 6, 6), dtype=bool)
    pred = empty if which in ("pred", "both") else mask
    ref = empty if which in ("ref", "both") else mask
    assert np.isnan(hd95(pred, ref, spacing=(1.0, 1.0, 1.0)))
    assert np.isnan(surface_dice(pred, ref, spacing=(1.0, 1.0, 1.0), tolerance_mm=1.0))


@pytest.mark.parametrize("which", ["pred", "ref"])
def test_one_empty_mask_differs_from_monai(which):
    # MONAI scores a mask against an empty one as surface Dice 0 (HD95 NaN, as here); we return
    # NaN for both and let the caller apply its empty-case policy. The distances say why: one
    # border has nothing to measure to.
    mask, empty = box((6, 6, 6), (1, 1, 1), (2, 2, 2)), np.zeros((6, 6, 6), dtype=bool)
    pred, ref = (empty, mask) if which == "pred" else (mask, empty)
    pred_to_ref, ref_to_pred = surface_distances(pred, ref, spacing=(1.0, 1.0, 1.0))
    present, missing = (ref_to_pred, pred_to_ref) if which == "pred" else (pred_to_ref, ref_to_pred)
    assert missing.size == 0 and present.size == 8 and np.all(np.isinf(present))
    monai_nsd, monai_hd = monai_scores(pred, ref, (1.0, 1.0, 1.0), 1.0)
    assert monai_nsd == 0.0 and np.isnan(monai_hd)
    assert np.isnan(surface_dice(pred, ref, spacing=(1.0, 1.0, 1.0), tolerance_mm=1.0))
    assert np.isnan(hd95(pred, ref, spacing=(1.0, 1.0, 1.0)))


# --- validation ----------------------------------------------------------------------------


def test_rejects_bad_inputs():
    mask = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match=r"same shape, but got \(4, 4, 4\) and \(4, 4, 5\)"):
        hd95(mask, np.zeros((4, 4, 5), dtype=bool), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"2D \(Y, X\) or 3D \(Z, Y, X\) masks, but got shape \(4,\)"):
        hd95(mask[0, 0], mask[0, 0], spacing=(1.0,))
    with pytest.raises(ValueError, match=r"`spacing` to be 3 positive, finite voxel sizes in mm, but got \(1.0, 1.0\)"):
        hd95(mask, mask, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="`spacing` to be 3 positive"):
        hd95(mask, mask, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"`ref` to hold only 0 and 1, but got values \[0, 2\]"):
        hd95(mask, np.where(box((4, 4, 4), (0, 0, 0), (1, 1, 1)), 2, 0), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="`pred` to be a mask of bool or of int 0/1, but got dtype float64"):
        hd95(mask.astype(float), mask, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="`tolerance_mm` to be a finite, non-negative distance, but got -1.0"):
        surface_dice(mask, mask, spacing=(1.0, 1.0, 1.0), tolerance_mm=-1.0)


# --- MONAI as the oracle -------------------------------------------------------------------


@st.composite
def lesion_pairs(draw, ndim):
    """A reference of 1-4 ellipsoids and a prediction that moves, resizes, drops or adds some."""
    shape = tuple(draw(st.integers(16, 32)) for _ in range(ndim))
    grid = np.indices(shape).reshape(ndim, -1).T

    def ellipsoid(centre, radii):
        return (((grid - centre) / radii) ** 2).sum(1).reshape(shape) <= 1.0

    ref = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    for _ in range(draw(st.integers(1, 4))):
        centre = np.array([draw(st.integers(0, s - 1)) for s in shape])
        radii = np.array([draw(st.floats(0.5, 5.0)) for _ in shape])
        ref |= ellipsoid(centre, radii)
        kept = draw(st.sampled_from(["same", "moved", "missed"]))
        if kept == "same":
            pred |= ellipsoid(centre, radii)
        elif kept == "moved":
            shift = np.array([draw(st.integers(-2, 2)) for _ in shape])
            pred |= ellipsoid(centre + shift, radii * draw(st.floats(0.6, 1.5)))
    if draw(st.booleans()):  # a false positive
        pred |= ellipsoid(np.array([draw(st.integers(0, s - 1)) for s in shape]), np.full(ndim, 1.5))
    return pred, ref


SPACINGS = st.floats(0.4, 3.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]), tolerance=st.floats(0.0, 6.0))
def test_matches_monai(data, ndim, tolerance):
    pred, ref = data.draw(lesion_pairs(ndim))
    spacing = tuple(data.draw(SPACINGS) for _ in range(ndim))
    assume(pred.any() and ref.any())
    pred_to_ref, ref_to_pred = surface_distances(pred, ref, spacing=spacing)
    distances = np.concatenate([pred_to_ref, ref_to_pred])
    # MONAI rounds distances to float32 before comparing: skip tolerances at a rounding tie.
    assume(not np.any(np.abs(distances - tolerance) <= 1e-6 * max(tolerance, 1.0)))
    expected_nsd, expected_hd = monai_scores(pred, ref, spacing, tolerance)
    assert surface_dice(pred, ref, spacing=spacing, tolerance_mm=tolerance) == pytest.approx(expected_nsd, abs=1e-6)
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(expected_hd, rel=1e-5, abs=1e-6)  # see monai_scores
