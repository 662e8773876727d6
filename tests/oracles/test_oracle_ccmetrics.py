"""workbench.metrics.ccmetric against the CCMetrics package (CC-Dice, Voronoi cells from scipy's
feature transform): equal Dice given the same cells, cells that differ only at exact ties, and the
documented differences on hand-made cases (empty reference, ties, spacing)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch
from _lesions import box, mask_of, mask_pairs
from _sessions import import_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.instances import instance_maps
from workbench.metrics.ccmetric import cc_dice

# CCMetrics calls ``torch.set_grad_enabled(False)`` at import; undo that for the other tests.
_grad_enabled = torch.is_grad_enabled()
try:
    CCMetrics = import_or_skip("CCMetrics", "ccmetrics", "oracles")
    from CCMetrics.space_separation import compute_voronoi_regions_fast
finally:
    torch.set_grad_enabled(_grad_enabled)


def ccmetrics_dice(pred, ref, space_separation=None):
    """CCMetrics' per-component Dice; 2D masks as one-slice volumes (it takes (1, 2, D, H, W))."""
    if pred.ndim == 2:
        pred, ref = pred[None], ref[None]
    metric = CCMetrics.CCDiceMetric(cc_reduction="overall")
    if space_separation is not None:
        metric.space_separation = space_separation
    metric(*(np.stack([~mask, mask])[None].astype(np.float32) for mask in (pred, ref)))
    return metric.get_buffer()[0].numpy().ravel()


def test_one_lesion_found_one_missed():
    ref = box((10, 20, 20), (2, 2, 2), (3, 3, 3)) | box((10, 20, 20), (5, 14, 14), (2, 4, 4))
    pred = box((10, 20, 20), (2, 2, 2), (3, 3, 3))
    np.testing.assert_array_equal(ccmetrics_dice(pred, ref), cc_dice(pred, ref))


def test_an_empty_reference_scores_nothing_where_ccmetrics_records_one_score():
    # CCMetrics records one score for an empty reference: 1 if nothing is predicted, else 0.
    empty, blob = np.zeros((6, 6, 6), dtype=bool), box((6, 6, 6), (1, 1, 1), (2, 2, 2))
    for pred, ccmetrics_score in ((empty, 1.0), (blob, 0.0)):
        assert cc_dice(pred, empty).shape == (0,)
        np.testing.assert_array_equal(ccmetrics_dice(pred, empty), [ccmetrics_score])


def test_a_tie_goes_to_the_smaller_id_where_ccmetrics_gives_it_to_the_larger():
    # Seeds 1 at (1, 2) and 2 at (3, 0): (2, 1) is √2 from both; CCMetrics (scipy's feature
    # transform) gives it to lesion 2.
    ref = mask_of((4, 6), (1, 2), (3, 0))
    pred = ref | mask_of((4, 6), (2, 1))
    np.testing.assert_allclose(cc_dice(pred, ref), [2 / 3, 1.0])
    np.testing.assert_allclose(ccmetrics_dice(pred, ref), [1.0, 2 / 3])


def test_spacing_moves_our_cells_where_ccmetrics_uses_voxels():
    ref = mask_of((5, 5), (0, 0), (4, 4))
    pred = ref | mask_of((5, 5), (3, 0))
    np.testing.assert_allclose(ccmetrics_dice(pred, ref), cc_dice(pred, ref))
    np.testing.assert_allclose(cc_dice(pred, ref, spacing=(3.0, 1.0)), [1.0, 2 / 3])
    np.testing.assert_allclose(ccmetrics_dice(pred, ref), [2 / 3, 1.0])


def assert_differ_only_at_ties(ref, ours, theirs):
    """Two partitions of the volume by nearest component differ only at equidistant voxels."""
    components, _ = ndi.label(ref, structure=np.ones((3,) * ref.ndim))
    seeds = {}
    for voxel in map(tuple, np.argwhere(ours != theirs)):
        d2 = []
        for label in (ours[voxel], theirs[voxel]):
            if label not in seeds:
                seeds[label] = np.argwhere(components == label)
            d2.append(((seeds[label] - voxel) ** 2).sum(1).min())
        assert d2[0] == d2[1], f"cells differ at {voxel} without a tie: squared distances {d2}"


@settings(max_examples=40, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_matches_ccmetrics(data, ndim):
    pred, ref = data.draw(mask_pairs(ndim))
    ours = cc_dice(pred, ref)
    ours_cells = instance_maps(ref[None, None], mode="sigmoid").cells[0, 0]
    # Given our cells, CCMetrics' Dice agrees exactly, component by component ...
    np.testing.assert_allclose(
        ccmetrics_dice(pred, ref, space_separation=lambda _: ours_cells.reshape((1,) * (3 - ndim) + ref.shape)),
        ours,
        rtol=1e-6,
    )
    # ... its own cells differ from ours only at exact ties, and where no predicted voxel is a
    # disputed tie, its scores are ours.
    theirs_cells = compute_voronoi_regions_fast(ref.reshape((1,) * (3 - ndim) + ref.shape)).reshape(ref.shape)
    assert_differ_only_at_ties(ref, ours_cells, theirs_cells)
    if not np.any(pred & (ours_cells != theirs_cells)):
        np.testing.assert_allclose(ccmetrics_dice(pred, ref), ours, rtol=1e-6)
