"""workbench.instances.weights against the loss reference implementation and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.instances import instance_maps
from workbench.losses.reference import (
    reference_global_weights,
    reference_instance_terms,
    reference_local_weights,
)
from workbench.instances.weights import global_inverse_weights, iwl_weights, local_inverse_weights


def random_labels(seed: int, shape=(1, 9, 10, 11), classes=3, fill=0.25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, classes + 1, size=shape)
    return np.where(rng.random(shape) < fill, labels, 0).astype(np.int64)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), mode=st.sampled_from(["softmax", "sigmoid"]))
def test_inverse_weights_equal_the_reference(seed, mode):
    labels = random_labels(seed)
    target = labels if mode == "softmax" else np.stack([labels > 0, labels >= 2, labels == 3], axis=1)
    maps = instance_maps(target, mode, connectivity=6, voronoi=False, num_classes=3)
    options = {"mode": mode, "connectivity": 6, "clip": (1.0, 50.0)}
    if mode == "softmax":
        options["num_classes"] = 3
    expected_global = reference_global_weights(torch.from_numpy(target), **options).numpy()
    expected_local = reference_local_weights(torch.from_numpy(target), **options).numpy()
    np.testing.assert_allclose(global_inverse_weights(maps, clip=(1.0, 50.0)), expected_global, rtol=1e-12)
    np.testing.assert_allclose(local_inverse_weights(maps, clip=(1.0, 50.0)), expected_local, rtol=1e-12)


def test_ignored_voxels_weigh_nothing_and_do_not_count():
    labels = random_labels(3)
    labels[0, :2] = 9
    maps = instance_maps(labels, "softmax", connectivity=26, voronoi=False, num_classes=3, ignore_index=9)
    valid = labels != 9
    expected = reference_global_weights(torch.from_numpy(labels), num_classes=3, ignore_index=9).numpy()
    weights = global_inverse_weights(maps, valid)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert (weights[~valid] == 0).all() and (weights[valid] >= 1).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), domain=st.sampled_from(["blob", "cc"]), max_weight=st.sampled_from([1.0, 5.0, 100.0]))
def test_iwl_weights_equal_the_reference_terms(seed, domain, max_weight):
    labels = random_labels(seed, shape=(2, 8, 9, 10), classes=2, fill=0.08)
    target = np.stack([labels > 0, labels == 2], axis=1)
    spacing = (2.0, 1.0, 0.5)
    maps = instance_maps(target, "sigmoid", connectivity=26, spacing=spacing)
    weights = iwl_weights(maps, domain=domain, max_weight=max_weight)
    logits = torch.zeros(target.shape, dtype=torch.float64)
    terms = reference_instance_terms(
        f"iwl_{domain}", logits, torch.from_numpy(target), mode="sigmoid", connectivity=26, spacing=spacing,
        max_weight=max_weight,
    )
    expected = np.ones(target.shape)
    for term in terms:
        expected[term["batch"], term["channel"]][maps.components[term["batch"], term["channel"]] == term["id"]] = term["weight"]
    np.testing.assert_allclose(weights, expected, rtol=1e-12)


def test_iwl_cc_weights_by_hand():
    # Components at x = 0..1 and x = 8 on a 1 x 10 line: cells split at the midpoint x = 4.5
    # (4.5 is not a voxel: cell 1 = x 0..4, five voxels; cell 2 = x 5..9, five voxels).
    target = np.zeros((1, 1, 1, 10), dtype=bool)
    target[0, 0, 0, :2] = target[0, 0, 0, 8] = True
    maps = instance_maps(target, mode="sigmoid", connectivity=4)
    assert iwl_weights(maps, domain="cc")[0, 0, 0].tolist() == [2.5, 2.5, 1, 1, 1, 1, 1, 1, 5.0, 1]
    assert iwl_weights(maps, domain="cc", max_weight=3)[0, 0, 0].max() == 3


def test_bad_arguments_are_named():
    maps = instance_maps(np.zeros((1, 1, 4, 4), dtype=bool), mode="sigmoid", voronoi=False)
    with pytest.raises(ValueError, match="domain"):
        iwl_weights(maps, domain="voronoi")
    with pytest.raises(ValueError, match="Voronoi cells"):
        iwl_weights(maps, domain="cc")
    with pytest.raises(ValueError, match="max_weight"):
        iwl_weights(maps, max_weight=0.5)
    with pytest.raises(ValueError, match="clip"):
        global_inverse_weights(maps, clip=(0.0, 10.0))
    with pytest.raises(ValueError, match=r"valid .*\(1, 4, 4\)"):
        local_inverse_weights(maps, np.ones((4, 4), dtype=bool))
