"""Gradients: torch.autograd.gradcheck in float64, and finite values under mixed precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.instances import instance_maps
from workbench.losses import LOSS_NAMES, build_loss


def _maps(target, mode, channels):
    """Instance maps computed once, so gradcheck's many evaluations do not recompute them."""
    if mode == "softmax":
        return instance_maps(target.numpy(), "softmax", num_classes=channels - 1)
    return instance_maps(target.numpy(), "sigmoid")


def _tiny_case(mode: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if mode == "softmax":
        target = torch.from_numpy(rng.integers(0, 3, (2, 5, 6)) * (rng.random((2, 5, 6)) < 0.5))
        logits = torch.from_numpy(rng.normal(0, 1, (2, 3, 5, 6)))
    else:
        target = torch.from_numpy((rng.random((2, 2, 5, 6)) < 0.3).astype(np.float64))
        logits = torch.from_numpy(rng.normal(0, 1, (2, 2, 5, 6)))
    return logits, target


@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradcheck(name, mode):
    logits, target = _tiny_case(mode)
    loss = build_loss(name, mode=mode)
    maps = _maps(target, mode, logits.shape[1])
    assert torch.autograd.gradcheck(lambda x: loss(x, target, maps), (logits.requires_grad_(),), eps=1e-6, atol=1e-7, fast_mode=True)


@pytest.mark.parametrize("name", ["blob", "cc", "iwl_blob", "iwl_cc"])
def test_gradcheck_3d_with_ignore_index(name):
    rng = np.random.default_rng(1)
    target = torch.from_numpy(rng.integers(0, 3, (1, 4, 4, 5)) * (rng.random((1, 4, 4, 5)) < 0.4))
    target[0, 0, 0, :2] = 9
    logits = torch.from_numpy(rng.normal(0, 1, (1, 3, 4, 4, 5))).requires_grad_()
    spacing = (2.0, 1.0, 1.0)
    loss = build_loss(name, ignore_index=9, spacing=spacing)
    maps = instance_maps(target.numpy(), "softmax", spacing=spacing, num_classes=2, ignore_index=9)
    assert torch.autograd.gradcheck(lambda x: loss(x, target, maps), (logits,), eps=1e-6, atol=1e-7, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_half_precision_logits_give_finite_loss_and_gradients(name, dtype):
    logits, target = _tiny_case("softmax", seed=3)
    logits = (logits * 30).to(dtype).requires_grad_()  # saturated: |logits| up to ~100
    value = build_loss(name)(logits, target)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_autocast_on_cpu(name):
    logits, target = _tiny_case("sigmoid", seed=4)
    logits = logits.float().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = build_loss(name, mode="sigmoid")(logits * 2, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_saturated_softmax_logits_keep_log_one_minus_p_exact():
    # p_k ≈ 1 - e^-40: log(1 - p_k) must be ≈ -40, not -inf, even in float32.
    logits = torch.tensor([[[[20.0]], [[-20.0]]]])  # (1, 2, 1, 1): background wins by 40
    from workbench.losses.base import activations

    act = activations(logits, "softmax")
    assert act.log_p.item() == pytest.approx(-40.0, abs=1e-5)
    assert act.log_not_p.item() == pytest.approx(-4.248e-18, rel=1e-3)
    act = activations(-logits, "softmax")
    assert act.log_not_p.item() == pytest.approx(-40.0, abs=1e-5)
    three = torch.tensor([[[[30.0]], [[29.0]], [[-50.0]]]])
    act = activations(three, "softmax")
    expected = torch.log_softmax(three.double(), 1)
    torch.testing.assert_close(act.log_p.double(), expected[:, 1:], rtol=1e-6, atol=1e-6)
    not_p = torch.log(1 - torch.softmax(three.double(), 1))
    torch.testing.assert_close(act.log_not_p.double(), not_p[:, 1:], rtol=1e-5, atol=1e-6)
