"""The sums every loss is made of, computed in one fused pass on the CPU or with torch ops elsewhere.

DC+CE, the blob / CC / IWL instance terms and InvWeight-local are all functions of a few sums of
per-voxel activations — per (batch element, channel), per component and per Voronoi cell (DESIGN
§4). :func:`voxel_sums` returns them, differentiable with respect to the logits; the losses are
O(N) float64 arithmetic on them (:mod:`workbench.losses.global_`, :mod:`workbench.losses.instance`).

Two backends give the same numbers:

* ``"fused"`` (CPU tensors): numba kernels read each logit once, keep the activations in registers
  and add them into their bins; the backward pass writes the gradient in one more pass
  (:mod:`workbench.losses._fused_cpu`).
* ``"torch"`` (any device, e.g. CUDA): activations as tensors, channel sums by reduction,
  component sums by ``index_add`` over the foreground voxels only, cell sums by a
  ``segment_reduce`` over runs of voxels that share a cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import torch
from torch import Tensor

from workbench.losses import _fused_cpu
from workbench.losses.base import InstanceTensors, Mode, Targets, activations

__all__ = ["Backend", "VoxelSums", "voxel_sums"]

Backend = Literal["fused", "torch"]
_RUN = 1024  # torch backend: longest run of voxels summed in the input's precision before float64


@dataclass(frozen=True, eq=False)
class VoxelSums:
    """Sums over non-ignored voxels, float64; K foreground channels, N components in all.

    ``chan``: (B, K, 6) per batch element and channel: Σ p, Σ p·y, Σ log(1 - p), Σ y·log p,
    Σ y·log(1 - p), Σ y. ``voxel``: (B, 2): Σ -log p_target (the softmax cross-entropy; 0 in
    sigmoid mode) and the voxel count. ``seg``: (N, 6) per global component j (see
    :class:`~workbench.losses.base.InstanceTensors`): over the component Σ p, Σ log p, Σ log(1 - p);
    over its Voronoi cell Σ p, Σ log(1 - p) and the voxel count (cell columns are 0 for channels with
    fewer than two components, whose cell is the whole volume). In softmax mode the ``log(1 - p)``
    columns are 0 unless asked for.
    """

    chan: Tensor
    voxel: Tensor
    seg: Tensor

    @property
    def p(self) -> Tensor:
        return self.chan[..., 0]

    @property
    def py(self) -> Tensor:
        return self.chan[..., 1]

    @property
    def log_not_p(self) -> Tensor:
        return self.chan[..., 2]

    @property
    def y_log_p(self) -> Tensor:
        return self.chan[..., 3]

    @property
    def y_log_not_p(self) -> Tensor:
        return self.chan[..., 4]

    @property
    def y(self) -> Tensor:
        return self.chan[..., 5]

    @property
    def cross_entropy(self) -> Tensor:
        return self.voxel[:, 0]

    @property
    def voxels(self) -> Tensor:
        return self.voxel[:, 1]


def voxel_sums(
    logits: Tensor,
    tg: Targets,
    inst: InstanceTensors | None,
    mode: Mode,
    *,
    log_not_p: bool,
    cells: bool,
    backend: Backend | None = None,
) -> VoxelSums:
    """Sums of the activations of ``logits`` over channels, components and cells.

    Parameters
    ----------
    logits : Tensor, shape (B, C + 1, *S) or (B, R, *S)
        Checked logits; float16/bfloat16 are summed in float32.
    tg : Targets
    inst : InstanceTensors, optional
        Components (and, with ``cells``, Voronoi cells); None for channel sums only.
    mode : {"softmax", "sigmoid"}
    log_not_p : bool
        Compute the ``log(1 - p)`` sums (one-vs-rest binary cross-entropies).
    cells : bool
        Compute the cell sums (needs ``inst.cells``).
    backend : {"fused", "torch"}, optional
        Default: fused for CPU tensors, torch otherwise.
    """
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if backend is None:
        backend = "fused" if x.device.type == "cpu" else "torch"
    if backend == "fused":
        return _fused(x, tg, inst, mode, log_not_p, cells)
    if backend == "torch":
        return _torch(x, tg, inst, mode, log_not_p, cells)
    raise ValueError(f"Expected `backend` to be 'fused' or 'torch', but got {backend!r}.")


def _fused(x: Tensor, tg: Targets, inst: InstanceTensors | None, mode: Mode, log_not_p: bool, cells: bool) -> VoxelSums:
    if x.device.type != "cpu":
        raise ValueError(f"The fused backend runs on CPU tensors, but the logits are on {x.device}.")
    batch, channels = x.shape[:2]
    k = channels - 1 if mode == "softmax" else channels
    voxels = x[0, 0].numel()
    if mode == "softmax":  # int8 where it fits: every kernel pass reads it
        target = tg.labels.reshape(batch, voxels).to(torch.int8 if channels <= 127 else torch.int32)
        if tg.has_ignored:
            target = target.masked_fill(tg.ignored.reshape(batch, voxels), -1)
    else:
        target = tg.masks.reshape(batch, k, voxels).to(torch.uint8)
    comp = cell = torch.zeros((batch, k, 0), dtype=torch.int32)
    comp_off = torch.zeros((batch, k), dtype=torch.int64)
    cell_off = torch.full((batch, k), -1, dtype=torch.int64)  # -1: no cell sums for (b, k)
    n_seg = 0
    if inst is not None:
        comp, comp_off, n_seg = inst.components, inst.offsets, inst.total
        if cells:
            cell, cell_off = inst.cells, torch.where(inst.counts >= 2, inst.offsets, -1)
    chan, voxel, seg = _FusedSums.apply(
        x, mode, target.contiguous(), comp.contiguous(), comp_off, cell.contiguous(), cell_off, log_not_p, n_seg
    )
    return VoxelSums(chan, voxel, seg)


class _FusedSums(torch.autograd.Function):
    """``logits -> (chan, voxel, seg)``: torch's vectorized activations, then the numba kernels;
    the backward pass is one numba pass over ``p``."""

    @staticmethod
    def forward(ctx, x, mode, target, comp, comp_off, cell, cell_off, log_not_p, n_seg):
        _match_torch_threads()
        batch, channels = x.shape[:2]
        z = x.detach().reshape(batch, channels, -1)
        if mode == "softmax":
            log_p = torch.log_softmax(z, dim=1)
            p = torch.exp(log_p)
            ln = torch.log1p(-p[:, 1:]) if log_not_p else p[:, :0]
        else:
            log_p = torch.nn.functional.logsigmoid(z)
            p = torch.exp(log_p)
            ln = log_p - z
        arrays = (target.numpy(), comp.numpy(), comp_off.numpy(), cell.numpy(), cell_off.numpy())
        chunks, length = _fused_cpu.tasks(batch, z.shape[2])
        activations = (p.numpy(), log_p.numpy(), ln.contiguous().numpy())
        if mode == "softmax":
            voxels = z.shape[2] if log_not_p else 0  # each voxel's channel with p > 1/2 and its 1 - p
            arrays += (np.empty((batch, voxels), dtype=np.int8), np.empty((batch, voxels), dtype=activations[0].dtype))
            chan, voxel, seg = _fused_cpu.softmax_forward(*activations, *arrays, chunks, length, n_seg)
        else:
            chan, voxel, seg = _fused_cpu.sigmoid_forward(*activations, *arrays, chunks, length, n_seg)
        ctx.mode, ctx.shape, ctx.p, ctx.arrays, ctx.tasks = mode, x.shape, activations[0], arrays, (chunks, length)
        chan = chan.reshape(batch, chunks, *chan.shape[1:]).sum(1)
        voxel = voxel.reshape(batch, chunks, 2).sum(1)
        return torch.from_numpy(chan), torch.from_numpy(voxel), torch.from_numpy(seg.sum(0))

    @staticmethod
    def backward(ctx, g_chan, g_voxel, g_seg):
        _match_torch_threads()
        out = np.empty_like(ctx.p)
        grads = [np.ascontiguousarray(g.detach().numpy(), dtype=np.float64) for g in (g_chan, g_voxel, g_seg)]
        if ctx.mode == "softmax":
            _fused_cpu.softmax_backward(ctx.p, *ctx.arrays, *grads, *ctx.tasks, out)
        else:
            _fused_cpu.sigmoid_backward(ctx.p, *ctx.arrays, grads[0], grads[2], *ctx.tasks, out)
        return torch.from_numpy(out).reshape(ctx.shape), *([None] * 8)


def _match_torch_threads() -> None:
    """Run the numba kernels on as many threads as torch's own kernels (``torch.set_num_threads``,
    ``OMP_NUM_THREADS``), so that parallel training runs sharing the cores do not oversubscribe them."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _torch(x: Tensor, tg: Targets, inst: InstanceTensors | None, mode: Mode, log_not_p: bool, cells: bool) -> VoxelSums:
    act = activations(x, mode, one_vs_rest=log_not_p)
    batch, k = act.p.shape[:2]
    p, log_p = act.p.flatten(2), act.log_p.flatten(2)
    ln = act.log_not_p.flatten(2) if act.log_not_p is not None else torch.zeros_like(p)
    y = tg.y.flatten(2)
    valid = tg.valid.flatten(2)
    if tg.has_ignored:
        p_valid, ln_valid = p * valid, ln * valid
    else:
        p_valid, ln_valid = p, ln
    columns = (p_valid, p * y, ln_valid, y * log_p, y * ln, y)
    chan = torch.stack([c.sum(-1).to(torch.float64) for c in columns], dim=-1)
    count = valid.sum((1, 2)).to(torch.float64)
    if mode == "softmax":
        ce = -(act.log_p_all.gather(1, tg.labels.unsqueeze(1)).flatten(1) * valid.flatten(1)).sum(1)
    else:
        ce = torch.zeros_like(count)
    voxel = torch.stack([ce.to(torch.float64), count], dim=-1)
    if inst is None or inst.total == 0:
        return VoxelSums(chan, voxel, torch.zeros((0, 6), dtype=torch.float64, device=x.device))
    seg = [_component_sums(inst, v) for v in (p, log_p, ln)]
    if cells:
        runs = _cell_runs(inst, valid if tg.has_ignored else None)
        seg += [_cell_sums(inst, runs, v) for v in (p_valid, ln_valid)]
        seg.append(_cell_sums(inst, runs, None))
    else:
        seg += [torch.zeros(inst.total, dtype=torch.float64, device=x.device)] * 3
    return VoxelSums(chan, voxel, torch.stack(seg, dim=-1))


def _component_sums(inst: InstanceTensors, values: Tensor) -> Tensor:
    """(N,) float64 sums of (B, K, V) ``values`` over each component (foreground voxels only)."""
    flat = inst.components.reshape(-1)
    foreground = torch.nonzero(flat > 0).squeeze(1)
    voxels = inst.components.shape[-1]
    segment = inst.offsets.reshape(-1)[foreground // voxels] + flat[foreground].long() - 1
    picked = values.reshape(-1)[foreground].to(torch.float64)
    return torch.zeros(inst.total, dtype=torch.float64, device=values.device).index_add(0, segment, picked)


def _cell_runs(inst: InstanceTensors, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """Runs of consecutive voxels (in memory order) that share a global cell id: (cell, length).

    Voxels of channels with fewer than two components, and ignored voxels, carry a spare id (N).
    Runs are cut every ``_RUN`` voxels, so that the sums within a run stay short; per-cell totals
    add run sums in float64 — far fewer values than voxels, since cells are contiguous regions.
    """
    use = (inst.counts >= 2).unsqueeze(-1)
    if valid is not None:
        use = use & (valid > 0)
    offsets = inst.offsets.unsqueeze(-1).to(inst.cells.dtype)
    segment = torch.where(use, offsets + inst.cells - 1, torch.full_like(inst.cells, inst.total)).reshape(-1)
    starts = torch.ones_like(segment, dtype=torch.bool)
    starts[1:] = segment[1:] != segment[:-1]
    starts[::_RUN] = True
    first = torch.nonzero(starts).squeeze(1)
    length = torch.diff(first, append=torch.tensor([segment.numel()], device=first.device))
    return segment[first].long(), length


def _cell_sums(inst: InstanceTensors, runs: tuple[Tensor, Tensor], values: Tensor | None) -> Tensor:
    """(N,) float64 sums of ``values`` (voxel counts when None) over each component's cell."""
    cell, length = runs
    if values is None:
        run_sums = length.to(torch.float64)
    else:
        run_sums = torch.segment_reduce(values.reshape(-1), "sum", lengths=length).to(torch.float64)
    totals = torch.zeros(inst.total + 1, dtype=torch.float64, device=length.device)
    return totals.index_add(0, cell, run_sums)[:-1]
