"""concat_instance_maps: stacking per-patch maps equals computing them on the stacked batch."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.instances import InstanceMaps, concat_instance_maps, instance_maps


def random_targets(seed: int, batch: int, shape=(6, 7, 8), classes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, *shape)) < 0.15) * rng.integers(1, classes + 1, size=(batch, *shape))


def assert_maps_equal(actual: InstanceMaps, expected: InstanceMaps) -> None:
    np.testing.assert_array_equal(actual.components, expected.components)
    if expected.cells is None:
        assert actual.cells is None
    else:
        np.testing.assert_array_equal(actual.cells, expected.cells)
    np.testing.assert_array_equal(actual.counts, expected.counts)
    assert len(actual.sizes) == len(expected.sizes) and len(actual.bboxes) == len(expected.bboxes)
    for got_b, want_b in zip(actual.sizes, expected.sizes):
        for got, want in zip(got_b, want_b, strict=True):
            np.testing.assert_array_equal(got, want)
    for got_b, want_b in zip(actual.bboxes, expected.bboxes):
        for got, want in zip(got_b, want_b, strict=True):
            np.testing.assert_array_equal(got, want)
    assert actual.spacing == expected.spacing
    assert (actual.connectivity, actual.mode) == (expected.connectivity, expected.mode)


@pytest.mark.parametrize("voronoi", [True, False])
@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
def test_concat_equals_maps_of_the_stacked_batch(mode, voronoi):
    target = random_targets(0, 3)
    if mode == "sigmoid":
        target = np.stack([target == k for k in (1, 2, 3)], axis=1)
    options = dict(mode=mode, connectivity=6, spacing=(1.0, 2.0, 0.5), voronoi=voronoi)
    if mode == "softmax":
        options["num_classes"] = 3
    parts = [instance_maps(target[b : b + 1], **options) for b in range(3)]
    merged = concat_instance_maps(parts)
    assert merged.components.shape[0] == 3
    assert_maps_equal(merged, instance_maps(target, **options))
    # Groups of several batch elements, as a tuple.
    assert_maps_equal(concat_instance_maps((instance_maps(target[:2], **options), parts[2])), merged)


def test_single_item_round_trips():
    maps = instance_maps(random_targets(1, 2), num_classes=3)
    assert_maps_equal(concat_instance_maps([maps]), maps)


def test_concat_errors():
    target = random_targets(2, 1)
    base = instance_maps(target, connectivity=26, num_classes=3)
    with pytest.raises(ValueError, match="at least one InstanceMaps"):
        concat_instance_maps([])
    with pytest.raises(TypeError, match="item 1 is ndarray"):
        concat_instance_maps([base, target])
    with pytest.raises(ValueError, match=r"same \(K, \*S\).*\(3, 6, 7, 8\).*\(4, 6, 7, 8\)"):
        concat_instance_maps([base, instance_maps(target, num_classes=4)])
    with pytest.raises(ValueError, match=r"same \(K, \*S\)"):
        concat_instance_maps([base, instance_maps(random_targets(2, 1, shape=(6, 7, 9)), num_classes=3)])
    with pytest.raises(ValueError, match="same `connectivity`.*26.*6"):
        concat_instance_maps([base, instance_maps(target, connectivity=6, num_classes=3)])
    with pytest.raises(ValueError, match="same `mode`"):
        regions = np.stack([target == k for k in (1, 2, 3)], axis=1)
        concat_instance_maps([base, instance_maps(regions, "sigmoid")])
    with pytest.raises(ValueError, match="same `spacing`"):
        concat_instance_maps([base, instance_maps(target, spacing=(1.0, 1.0, 2.0), num_classes=3)])
    with pytest.raises(ValueError, match="cells in all InstanceMaps or in none.*item 1 lacks"):
        concat_instance_maps([base, instance_maps(target, voronoi=False, num_classes=3)])
