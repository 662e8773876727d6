"""The fast segment-sum losses equal the loop oracle (workbench.losses.reference), values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.losses import LOSS_NAMES, build_loss
from workbench.losses.reference import reference_loss

from _cases import loss_cases

INSTANCE = ("blob", "cc", "iwl_blob", "iwl_cc")


def _value_and_grad(fn, logits):
    x = logits.clone().requires_grad_(True)
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


@pytest.mark.parametrize("name", LOSS_NAMES)
@settings(max_examples=25, deadline=None)
@given(case=loss_cases(), base=st.sampled_from(["dice_ce", "dice", "ce"]), weights=st.sampled_from([(1.0, 1.0), (0.0, 1.0), (2.0, 1.0)]))
def test_fast_path_equals_reference(name, case, base, weights):
    mode, logits, target, ignore_index = case
    options = {"mode": mode, "ignore_index": ignore_index}
    if name in INSTANCE:
        options.update(base=base, alpha=weights[0], beta=weights[1])
    if name in ("cc", "iwl_cc"):
        options["spacing"] = (1.0, 2.0, 0.5)[-logits.ndim + 2 :]
    fast = build_loss(name, **options)
    value, grad = _value_and_grad(lambda x: fast(x, target), logits)
    expected_value, expected_grad = _value_and_grad(lambda x: reference_loss(name, x, target, **options), logits)
    torch.testing.assert_close(value, expected_value, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(case=loss_cases(), name=st.sampled_from(INSTANCE))
def test_precomputed_instances_give_the_same_loss(case, name):
    from workbench.instances import instance_maps

    mode, logits, target, ignore_index = case
    loss = build_loss(name, mode=mode, ignore_index=ignore_index)
    array = target.numpy()
    if mode == "softmax":
        maps = instance_maps(array, "softmax", num_classes=logits.shape[1] - 1, ignore_index=ignore_index)
    else:
        maps = instance_maps(array, "sigmoid")
    torch.testing.assert_close(loss(logits, target, instances=maps), loss(logits, target), rtol=0, atol=0)


@settings(max_examples=15, deadline=None)
@given(case=loss_cases(), name=st.sampled_from(INSTANCE))
def test_component_table_matches_the_oracle(case, name):
    from workbench.losses.reference import reference_instance_terms

    mode, logits, target, ignore_index = case
    table = build_loss(name, mode=mode, ignore_index=ignore_index).components(logits, target)
    expected = reference_instance_terms(name, logits, target, mode=mode, ignore_index=ignore_index)
    assert len(table) == len(expected)
    rows = sorted(expected, key=lambda r: (r["batch"], r["channel"], r["id"]))
    table = table.sort_values(["batch", "channel", "id"]).reset_index(drop=True)
    for row, (_, got) in zip(rows, table.iterrows()):
        assert (got["batch"], got["channel"], got["id"], got["size"]) == (row["batch"], row["channel"], row["id"], row["size"])
        assert got["domain_size"] == row["domain_size"]
        assert got["dice"] == pytest.approx(float(row["dice"]), rel=1e-9, abs=1e-12)
        assert got["ce"] == pytest.approx(float(row["ce"]), rel=1e-9, abs=1e-12)
        assert got["weight"] == pytest.approx(float(row["weight"]), rel=1e-12)


@pytest.mark.parametrize("name", INSTANCE + ("invweight_global", "invweight_local"))
@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
def test_float32_on_a_larger_volume_matches_the_float64_oracle(name, mode):
    # Long runs of voxels in one Voronoi cell (> 1,024), channel totals over ~30k voxels and
    # saturated logits: the float32 fast path must keep ~1e-5 of the exact value.
    rng = np.random.default_rng(7)
    shape = (2, 32, 32, 32)
    labels = np.zeros(shape, dtype=np.int64)
    for b in range(2):
        for value, (z, y, x) in zip([1, 1, 2, 1, 2], rng.integers(2, 28, (5, 3))):
            labels[b, z - 2 : z + 2, y - 1 : y + 3, x - 2 : x + 1] = value
    if mode == "softmax":
        target = torch.from_numpy(labels)
        logits = torch.from_numpy(rng.normal(0, 6, (2, 3, *shape[1:])))
    else:
        target = torch.from_numpy(np.stack([labels == 1, labels > 0], axis=1).astype(np.float64))
        logits = torch.from_numpy(rng.normal(0, 6, (2, 2, *shape[1:])))
    expected = reference_loss(name, logits, target, mode=mode)
    value = build_loss(name, mode=mode)(logits.float(), target)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(float(expected), rel=2e-5)


@pytest.mark.parametrize("name", ["blob", "cc", "iwl_blob", "invweight_local"])
def test_saturated_logits_give_the_oracles_gradients(name):
    # Logits up to ±40: log(1 - p) of the top channel and its gradient must stay exact.
    rng = np.random.default_rng(11)
    target = torch.from_numpy(rng.integers(0, 3, (2, 6, 7, 5)) * (rng.random((2, 6, 7, 5)) < 0.4))
    logits = torch.from_numpy(rng.normal(0, 15, (2, 3, 6, 7, 5)))
    value, grad = _value_and_grad(lambda x: build_loss(name)(x, target), logits)
    expected_value, expected_grad = _value_and_grad(lambda x: reference_loss(name, x, target), logits)
    torch.testing.assert_close(value, expected_value, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-7, atol=1e-12)
