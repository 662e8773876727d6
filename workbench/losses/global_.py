"""Global losses: nnU-Net's DC+CE and the inverse-size weighted DC+CE (Shirokikh et al. 2020).

Both use batch Dice: the sums of every soft Dice run over the batch and the voxels, per
foreground channel, then the Dice losses are averaged over channels (DESIGN §4, §4a).

* DC+CE: ``1 - mean_k dice_k`` plus the multi-class cross-entropy (softmax mode) or the binary
  cross-entropy averaged over regions (sigmoid mode), each a mean over voxels.
* InvWeight global: one weight map per batch element, ``w(v) = |V| / ((K + 1) |segment(v)|)``
  clipped to ``[w_min, w_max]``, where the segments are all K components of all foreground
  channels plus the background (in sigmoid mode a voxel's segment is the smallest component that
  holds it); ``w`` multiplies every voxel term of the DC+CE above (CE as a weighted mean).
* InvWeight local: the same formula one-vs-rest per channel k (segments: the components of k and
  the rest), applied to channel k's Dice and binary CE, then averaged over channels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from workbench.losses.base import EPS, Activations, InstanceTensors, Mode, Targets
from workbench.losses.sums import VoxelSums

__all__ = ["dice_ce", "global_inverse_weights", "invweight_local", "weighted_dice_ce"]


def dice_ce(sums: VoxelSums, mode: Mode) -> Tensor:
    """nnU-Net's DC+CE with batch Dice, from channel sums.

    Returns
    -------
    loss : Tensor, scalar float64
    """
    dice = _dice(sums.py.sum(0), sums.p.sum(0), sums.y.sum(0))
    if mode == "softmax":
        ce = sums.cross_entropy.sum() / sums.voxels.sum()
    else:  # mean over voxels and regions of -(y log p + (1 - y) log(1 - p))
        ce = -(sums.y_log_p + sums.log_not_p - sums.y_log_not_p).sum() / (sums.voxels.sum() * sums.p.shape[1])
    return 1.0 - dice.mean() + ce


def invweight_local(sums: VoxelSums, inst: InstanceTensors, clip: tuple[float, float]) -> Tensor:
    """InvWeight local from segment sums: per channel, weighted batch Dice + weighted BCE; mean over channels.

    The weight of a voxel is constant on each component of channel k and on k's background
    (``|V| / ((n_k + 1) |segment|)``, clipped), so every weighted sum is a weighted sum of
    segment sums.
    """
    batch, channels = inst.counts.shape
    bk = inst.segment_bk
    voxels = sums.voxels.unsqueeze(1).expand(batch, channels)
    segments = (inst.counts + 1).to(torch.float64)
    size = inst.sizes.to(torch.float64)

    def per_channel(values: Tensor) -> Tensor:  # (N,) -> (B, K) sums over each channel's components
        return torch.zeros(batch * channels, dtype=torch.float64, device=size.device).index_add(0, bk, values).reshape(batch, channels)

    fg_size = per_channel(size)
    w = (voxels.reshape(-1)[bk] / (segments.reshape(-1)[bk] * size)).clamp(*clip)
    w_bg = (voxels / (segments * (voxels - fg_size))).clamp(*clip)  # an empty background weighs 0 voxels
    seg = sums.seg
    fg_p, fg_log_p, fg_log_not_p = (per_channel(w * seg[:, i]) for i in range(3))
    fg_weight = per_channel(w * size)
    bg_p = w_bg * (sums.p - per_channel(seg[:, 0]))
    bg_log_not_p = w_bg * (sums.log_not_p - per_channel(seg[:, 2]))
    dice = _dice(fg_p.sum(0), (fg_p + bg_p).sum(0), fg_weight.sum(0))
    ce = -(fg_log_p + bg_log_not_p).sum(0) / (fg_weight + w_bg * (voxels - fg_size)).sum(0)
    return (1.0 - dice + ce).mean()


def weighted_dice_ce(act: Activations, tg: Targets, mode: Mode, weights: Tensor) -> Tensor:
    """DC+CE with every voxel term weighted (InvWeight global): weighted batch Dice + weighted-mean CE.

    ``weights``: (B, 1, *S), 0 on ignored voxels.
    """
    dims = [0, *range(2, act.p.ndim)]
    pw = act.p * weights
    dice = _dice((pw * tg.y).sum(dims), pw.sum(dims), (tg.y * weights).sum(dims))
    if mode == "softmax":
        voxel_ce = -act.log_p_all.gather(1, tg.labels.unsqueeze(1))
    else:
        voxel_ce = -(tg.y * act.log_p + (1.0 - tg.y) * act.log_not_p).mean(dim=1, keepdim=True)
    return 1.0 - dice.mean() + (voxel_ce * weights).sum() / weights.sum()


def _dice(intersection: Tensor, p: Tensor, y: Tensor) -> Tensor:
    """Soft Dice ``(2 Σ pg + ε) / (Σ p + Σ g + ε)`` from its sums."""
    return (2.0 * intersection + EPS) / (p + y + EPS)


@torch.no_grad()
def global_inverse_weights(inst: InstanceTensors, tg: Targets, clip: tuple[float, float], shape: torch.Size) -> Tensor:
    """InvWeight-global voxel weights ``|V| / ((K + 1) |segment(v)|)``, clipped (no gradient).

    A voxel's segment is the smallest component of any channel that holds it, else the background.

    Parameters
    ----------
    inst : InstanceTensors
    tg : Targets
    clip : (w_min, w_max)
    shape : torch.Size
        Shape of the foreground probabilities (B, K, *S).

    Returns
    -------
    weights : Tensor, shape (B, 1, *S); 0 on ignored voxels.
    """
    comp = inst.components  # (B, K, V)
    valid = tg.valid.reshape(shape[0], 1, -1)
    in_component = comp > 0
    segment = (inst.offsets.unsqueeze(-1) + comp - 1).clamp(min=0)
    sizes = inst.sizes.to(valid.dtype)
    if sizes.numel():
        size = torch.where(in_component, sizes[segment], torch.full_like(valid, float("inf")))
    else:
        size = torch.full(comp.shape, float("inf"), dtype=valid.dtype, device=valid.device)
    size = size.min(dim=1, keepdim=True).values
    background = torch.isinf(size)
    background_voxels = (background * valid).sum(dim=-1, keepdim=True)
    size = torch.where(background, background_voxels, size)
    n_segments = inst.counts.sum(dim=1, keepdim=True) + 1  # (B, 1)
    weights = valid.sum(dim=-1, keepdim=True) / (n_segments.unsqueeze(-1).to(valid.dtype) * size)
    weights = weights.clamp(clip[0], clip[1]) * valid
    return weights.reshape(shape[0], 1, *shape[2:])
