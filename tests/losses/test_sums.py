"""The two backends of voxel_sums agree: every sum, and the gradient of any function of the sums."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.instances import instance_maps
from workbench.losses.base import instance_tensors, targets
from workbench.losses.sums import voxel_sums

from _cases import loss_cases


def _inputs(mode, logits, target, ignore_index):
    tg = targets(target, mode, logits, ignore_index)
    if mode == "softmax":
        maps = instance_maps(target.numpy(), "softmax", num_classes=logits.shape[1] - 1, ignore_index=ignore_index, voronoi=True)
    else:
        maps = instance_maps(target.numpy(), "sigmoid", voronoi=True)
    return tg, instance_tensors(maps, logits.device, use_cells=True)


@settings(max_examples=40, deadline=None)
@given(case=loss_cases(), log_not_p=st.booleans(), cells=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_and_torch_sums_agree_with_gradients(case, log_not_p, cells, seed):
    mode, logits, target, ignore_index = case
    tg, inst = _inputs(mode, logits, target, ignore_index)
    results = {}
    for backend in ("fused", "torch"):
        x = logits.clone().requires_grad_(True)
        sums = voxel_sums(x, tg, inst, mode, log_not_p=log_not_p, cells=cells, backend=backend)
        parts = (sums.chan, sums.voxel, sums.seg)
        # the same random cotangents for both backends
        weights = [torch.from_numpy(np.random.default_rng(seed + i).normal(size=part.shape)) for i, part in enumerate(parts)]
        total = sum((w * part).sum() for w, part in zip(weights, parts))
        (grad,) = torch.autograd.grad(total, x)
        results[backend] = (*(part.detach() for part in parts), grad)
    for fused, reference in zip(results["fused"], results["torch"]):
        torch.testing.assert_close(fused, reference, rtol=1e-9, atol=1e-9)


def test_saturated_logits_give_the_exact_log_of_one_minus_p():
    # p_top = 1 - 2e-13 in float64; log(1 - p_top) must come from the other channels, not from 1 - p.
    logits = torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64).reshape(1, 3, 1, 1).repeat(1, 1, 2, 2)
    target = torch.zeros(1, 2, 2, dtype=torch.int64)
    sums = voxel_sums(logits, targets(target, "softmax", logits, None), None, "softmax", log_not_p=True, cells=False)
    expected = 4 * torch.log1p(-torch.softmax(logits[0, :, 0, 0], 0))[1:]
    torch.testing.assert_close(sums.log_not_p[0], expected, rtol=1e-12, atol=0)
    logits = logits.flip(1)  # now a foreground channel is the saturated one
    sums = voxel_sums(logits, targets(target, "softmax", logits, None), None, "softmax", log_not_p=True, cells=False)
    rest = 2 * torch.exp(torch.tensor(-30.0, dtype=torch.float64)) / (1 + 2 * torch.exp(torch.tensor(-30.0, dtype=torch.float64)))
    torch.testing.assert_close(sums.log_not_p[0, 1], 4 * torch.log(rest), rtol=1e-12, atol=0)


@settings(max_examples=15, deadline=None)
@given(case=loss_cases())
def test_float32_sums_match_float64(case):
    mode, logits, target, ignore_index = case
    tg, inst = _inputs(mode, logits, target, ignore_index)
    exact = voxel_sums(logits, tg, inst, mode, log_not_p=True, cells=True, backend="fused")
    single = voxel_sums(logits.float(), targets(target, mode, logits.float(), ignore_index), inst, mode,
                        log_not_p=True, cells=True, backend="fused")
    for a, b in ((single.chan, exact.chan), (single.voxel, exact.voxel), (single.seg, exact.seg)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
