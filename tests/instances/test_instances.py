"""workbench.instances against hand-made volumes, brute force and scipy as oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.instances._voronoi import nearest_seed_labels
from workbench.instances import cached_instance_maps, instance_maps

# Squared values of these spacings are exact binary fractions, so equidistant voxels compare
# equal in floating point and the tie-break (smallest id) is checkable exactly.
DYADIC_SPACINGS = st.sampled_from([0.5, 0.75, 0.9375, 1.0, 1.5, 2.0, 3.0])


def brute_force_cells(components: np.ndarray, spacing) -> np.ndarray:
    """Nearest component of every voxel by comparing all voxel pairs; ties → smallest id."""
    seeds = np.argwhere(components > 0)
    ids = components[components > 0].astype(np.int64)
    grid = np.indices(components.shape).reshape(components.ndim, -1).T
    d2 = ((((grid[:, None, :] - seeds[None]) * np.asarray(spacing)) ** 2).sum(-1))
    nearest = d2 == d2.min(axis=1, keepdims=True)
    return np.where(nearest, ids[None], np.iinfo(np.int64).max).min(axis=1).reshape(components.shape)


def cube(shape, corner, size, value=1):
    volume = np.zeros(shape, dtype=np.int64)
    volume[tuple(slice(c, c + s) for c, s in zip(corner, size))] = value
    return volume


# --- hand-made volumes ---------------------------------------------------------------------


@pytest.mark.parametrize(("connectivity", "expected"), [(26, 1), (18, 2), (6, 2)])
def test_cubes_touching_at_a_corner(connectivity, expected):
    target = cube((8, 8, 8), (1, 1, 1), (2, 2, 2)) + cube((8, 8, 8), (3, 3, 3), (2, 2, 2))
    maps = instance_maps(target[None], connectivity=connectivity)
    assert maps.counts.tolist() == [[expected]]


@pytest.mark.parametrize(("connectivity", "expected"), [(26, 1), (18, 1), (6, 2)])
def test_cubes_touching_along_an_edge(connectivity, expected):
    target = cube((8, 8, 8), (1, 1, 1), (2, 2, 2)) + cube((8, 8, 8), (3, 3, 1), (2, 2, 2))
    assert instance_maps(target[None], connectivity=connectivity).counts.tolist() == [[expected]]


@pytest.mark.parametrize(("connectivity", "expected"), [(8, 1), (4, 2)])
def test_squares_touching_at_a_corner_in_2d(connectivity, expected):
    target = cube((6, 6), (0, 0), (2, 2)) + cube((6, 6), (2, 2), (3, 3))
    assert instance_maps(target[None], connectivity=connectivity).counts.tolist() == [[expected]]


def test_sizes_volumes_and_boxes_with_anisotropic_spacing():
    target = cube((10, 10, 10), (1, 2, 3), (2, 3, 4)) + cube((10, 10, 10), (6, 6, 6), (1, 1, 1))
    maps = instance_maps(target[None], spacing=(1.0, 0.5, 3.0))
    # cc3d numbers components in raster order: the 2×3×4 box first.
    assert maps.sizes[0][0].tolist() == [24, 1]
    np.testing.assert_allclose(maps.volumes_mm3(0, 0), [24 * 1.5, 1.5])
    assert maps.bboxes[0][0].tolist() == [[[1, 2, 3], [3, 5, 7]], [[6, 6, 6], [7, 7, 7]]]
    table = maps.table()
    assert table["volume_mm3"].tolist() == [36.0, 1.5]
    assert table["bbox_stop"].tolist() == [(3, 5, 7), (7, 7, 7)]


def test_voronoi_split_follows_spacing():
    # Seeds at (0, 0) and (4, 4). Isotropic: (0, 4) is 4 mm from both (tie → id 1).
    target = np.zeros((1, 5, 5), dtype=np.int64)
    target[0, 0, 0] = target[0, 4, 4] = 1
    iso = instance_maps(target, connectivity=4, spacing=(1.0, 1.0)).cells[0, 0]
    assert iso[0, 4] == 1 and iso[4, 0] == 1 and iso[1, 3] == 1 and iso[3, 1] == 1
    assert iso[4, 3] == 2 and iso[3, 4] == 2
    stretched = instance_maps(target, connectivity=4, spacing=(3.0, 1.0)).cells[0, 0]
    # 3 mm rows: (1, 4) is 5 mm from (0, 0) and 9 mm from (4, 4); (3, 0) is 9 mm vs 5 mm.
    assert stretched[1, 4] == 1 and stretched[3, 0] == 2


def test_single_component_is_the_whole_volume_and_none_gives_no_cells():
    target = np.zeros((2, 6, 6, 6), dtype=np.int64)
    target[0, 2:4, 2:4, 2:4] = 1
    maps = instance_maps(target)
    assert maps.counts.tolist() == [[1], [0]]
    assert np.all(maps.cells[0, 0] == 1)
    assert np.all(maps.cells[1, 0] == 0) and np.all(maps.components[1, 0] == 0)
    assert maps.sizes[1][0].shape == (0,) and maps.bboxes[1][0].shape == (0, 2, 3)


def test_softmax_channels_are_one_vs_rest_and_num_classes_pads():
    target = np.zeros((1, 1, 6, 6, 6), dtype=np.int64)  # (B, 1, *S)
    target[0, 0, 0, 0, 0] = 1
    target[0, 0, 0, 0, 1] = 2  # touches the class-1 voxel, yet is its own class
    target[0, 0, 5, 5, 5] = 1
    maps = instance_maps(target, num_classes=3)
    assert maps.components.shape == (1, 3, 6, 6, 6)
    assert maps.counts.tolist() == [[2, 1, 0]]


def test_sigmoid_regions_may_overlap():
    wt = cube((6, 6, 6), (1, 1, 1), (4, 4, 4))
    et = cube((6, 6, 6), (1, 1, 1), (1, 1, 1)) + cube((6, 6, 6), (4, 4, 4), (1, 1, 1))
    maps = instance_maps(np.stack([wt, et])[None], mode="sigmoid")
    assert maps.counts.tolist() == [[1, 2]]
    assert maps.sizes[0][0].tolist() == [64]


def test_ignore_index_voxels_belong_to_no_class_but_get_a_cell():
    target = np.zeros((1, 5, 5), dtype=np.int64)
    target[0, 0, 0] = 1
    target[0, 0, 2] = 255
    target[0, 0, 4] = 1
    maps = instance_maps(target, connectivity=8, ignore_index=255)
    assert maps.counts.tolist() == [[2]]
    assert maps.components[0, 0, 0, 2] == 0
    assert maps.cells[0, 0, 0, 2] == 1  # equidistant → smaller id


# --- oracles on random volumes ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    ndim=st.sampled_from([2, 3]),
)
def test_voronoi_cells_equal_brute_force(data, ndim):
    shape = tuple(data.draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    density = data.draw(st.sampled_from([0.02, 0.08, 0.3]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random(shape) < density
    spacing = tuple(data.draw(st.lists(DYADIC_SPACINGS, min_size=ndim, max_size=ndim)))
    connectivity = data.draw(st.sampled_from([4, 8] if ndim == 2 else [6, 18, 26]))
    maps = instance_maps(mask[None, None].astype(np.int64), connectivity=connectivity, spacing=spacing, num_classes=1)
    components = maps.components[0, 0]
    if maps.counts[0, 0] == 0:
        assert np.all(maps.cells == 0)
    else:
        np.testing.assert_array_equal(maps.cells[0, 0], brute_force_cells(components, spacing))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    spacing=st.tuples(*[st.floats(0.3, 4.0, allow_nan=False)] * 3),
)
def test_voronoi_assigns_a_nearest_component_for_any_spacing(seed, spacing):
    # Arbitrary float spacings: ties may break either way by rounding, but the assigned
    # component must be at the minimum distance.
    mask = np.random.default_rng(seed).random((6, 7, 5)) < 0.05
    maps = instance_maps(mask[None, None].astype(np.int64), spacing=spacing, num_classes=1)
    comps, cells = maps.components[0, 0], maps.cells[0, 0]
    n = int(maps.counts[0, 0])
    if n < 2:
        return
    grid = np.indices(comps.shape).reshape(3, -1).T
    per_component = []
    for cid in range(1, n + 1):
        pts = np.argwhere(comps == cid)
        per_component.append(((((grid[:, None] - pts[None]) * spacing) ** 2).sum(-1)).min(1))
    dist = np.stack(per_component, 1)
    assigned = dist[np.arange(len(grid)), cells.ravel() - 1]
    np.testing.assert_allclose(assigned, dist.min(1), rtol=1e-12, atol=1e-12)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_components_match_scipy_label(data, ndim):
    shape = tuple(data.draw(st.lists(st.integers(1, 19 if ndim == 2 else 11), min_size=ndim, max_size=ndim)))
    density = data.draw(st.sampled_from([0.02, 0.1, 0.3, 0.6]))
    mask = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).random(shape) < density
    connectivity = data.draw(st.sampled_from([4, 8] if ndim == 2 else [6, 18, 26]))
    rank = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    reference, n = ndi.label(mask, structure=ndi.generate_binary_structure(ndim, rank))
    maps = instance_maps(mask[None, None], mode="sigmoid", connectivity=connectivity)
    ours = maps.components[0, 0]
    assert maps.counts[0, 0] == n
    np.testing.assert_array_equal(ours > 0, mask)
    assert sorted(maps.sizes[0][0].tolist()) == sorted(np.bincount(reference.ravel())[1:].tolist())
    # Same partition: each of our components is exactly one scipy component.
    assert len(set(zip(ours[mask].tolist(), reference[mask].tolist()))) == n


def test_two_dimensional_eight_connected_regression():
    # cc3d 4.1.1 labels (3, 1) here when given a bool image; workbench must not.
    mask = np.zeros((11, 11), dtype=bool)
    mask[1, 6] = mask[10, 9] = True
    mask[6:9, 5:7] = True
    maps = instance_maps(mask[None, None], mode="sigmoid", connectivity=8)
    np.testing.assert_array_equal(maps.components[0, 0] > 0, mask)
    assert maps.sizes[0][0].tolist() == [1, 6, 1]


def test_voronoi_matches_scipy_feature_transform_without_ties():
    # Seeds at well-separated points with an irrational-ish spacing: no ties, so scipy's
    # nearest-feature assignment must agree voxel for voxel.
    rng = np.random.default_rng(3)
    target = np.zeros((1, 20, 24, 18), dtype=np.int64)
    for z, y, x in rng.integers(0, (20, 24, 18), size=(6, 3)):
        target[0, z, y, x] = 1
    spacing = (1.1, 0.83, 2.7)
    maps = instance_maps(target, spacing=spacing)
    components = maps.components[0, 0]
    indices = ndi.distance_transform_edt(components == 0, sampling=spacing, return_distances=False, return_indices=True)
    np.testing.assert_array_equal(maps.cells[0, 0], components[tuple(indices)])


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"connectivity": 8}, r"`connectivity` to be one of \(6, 18, 26\) for 3D"),
        ({"spacing": (1.0, 1.0)}, r"`spacing` to be 3 positive"),
        ({"spacing": (1.0, 0.0, 1.0)}, r"`spacing` to be 3 positive"),
        ({"mode": "softmx"}, r"`mode` to be one of \('softmax', 'sigmoid'\), but got 'softmx'"),
        ({"num_classes": 1}, r"class labels in 0\.\.1 .* got values \[2\]"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    target = np.zeros((1, 4, 4, 4), dtype=np.int64)
    target[0, 0, 0, 0] = 2
    with pytest.raises(ValueError, match=message):
        instance_maps(target, **kwargs)


def test_bad_targets_name_the_problem():
    with pytest.raises(ValueError, match=r"shape \(B, \*S\) or \(B, 1, \*S\).*\(4, 4\)"):
        instance_maps(np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"binary region masks .* values \[2\]"):
        instance_maps(np.full((1, 2, 3, 3), 2), mode="sigmoid")
    with pytest.raises(ValueError, match=r"integer labels.*float64"):
        instance_maps(np.full((1, 3, 3), 0.5))
    with pytest.raises(ValueError, match=r"values \[-1\]"):
        instance_maps(np.full((1, 3, 3), -1))


# --- cache ---------------------------------------------------------------------------------


def test_cache_round_trip_and_key(tmp_path):
    target = cube((1, 8, 8, 8), (0, 1, 1, 1), (1, 2, 2, 2)) + cube((1, 8, 8, 8), (0, 5, 5, 5), (1, 2, 2, 2))
    first = cached_instance_maps(target, tmp_path, spacing=(1.0, 1.0, 2.0))
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = cached_instance_maps(target, tmp_path, spacing=(1.0, 1.0, 2.0))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_array_equal(again.cells, first.cells)
    np.testing.assert_array_equal(again.components, first.components)
    assert [s.tolist() for s in again.sizes[0]] == [s.tolist() for s in first.sizes[0]]
    assert again.bboxes[0][0].tolist() == first.bboxes[0][0].tolist()
    assert (again.spacing, again.connectivity, again.mode) == ((1.0, 1.0, 2.0), 26, "softmax")
    cached_instance_maps(target, tmp_path, spacing=(1.0, 1.0, 2.0), connectivity=6)
    changed = target.copy()
    changed[0, 0, 0, 0] = 1
    cached_instance_maps(changed, tmp_path, spacing=(1.0, 1.0, 2.0))
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert not list(tmp_path.glob(".*tmp*"))


def test_voronoi_ties_do_not_depend_on_the_voxel_size():
    # (0, 2) is equidistant from the seeds at (1, 1) and (1, 3): it belongs to the smaller id at any
    # isotropic spacing, 1.05 mm included (whose square is not a short binary fraction).
    seeds = np.zeros((3, 4), dtype=np.int32)
    seeds[1, 1], seeds[1, 3] = 1, 2
    for size in (1.0, 1.05, 1.0516, 0.7):
        cells = nearest_seed_labels(seeds, (size, size))
        assert cells[0, 2] == 1 and cells[2, 2] == 1, size
        np.testing.assert_array_equal(cells, nearest_seed_labels(seeds, (1.0, 1.0)))
