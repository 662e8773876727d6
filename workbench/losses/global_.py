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

__all__ = ["dice_ce", "inverse_size_weights", "weighted_channel_dice_ce"]


def dice_ce(act: Activations, tg: Targets, mode: Mode, weights: Tensor | None = None) -> Tensor:
    """nnU-Net's DC+CE with batch Dice, optionally with voxel weights (InvWeight global).

    Parameters
    ----------
    act, tg
        From :func:`workbench.losses.base.activations` / :func:`~workbench.losses.base.targets`.
    mode : {"softmax", "sigmoid"}
    weights : Tensor, shape (B, 1, *S), optional
        Voxel weights (ignored voxels must already be 0).

    Returns
    -------
    loss : Tensor, scalar
    """
    w = weights if weights is not None else (tg.valid if tg.has_ignored else None)
    dice_loss = 1.0 - _batch_dice(act.p, tg.y, w).mean()
    if mode == "softmax":
        voxel_ce = -act.log_p_all.gather(1, tg.labels.unsqueeze(1))
    else:
        voxel_ce = -(tg.y * act.log_p + (1.0 - tg.y) * act.log_not_p).mean(dim=1, keepdim=True)
    if w is None:
        return dice_loss + voxel_ce.mean()
    return dice_loss + (voxel_ce * w).sum() / w.sum()


def weighted_channel_dice_ce(act: Activations, tg: Targets, weights: Tensor) -> Tensor:
    """Per channel k: weighted batch Dice + weighted binary CE of ``p_k`` against ``y_k``;
    averaged over channels (InvWeight local).

    ``weights``: (B, K, *S), ignored voxels 0.
    """
    dims = [0, *range(2, act.p.ndim)]
    bce = -(tg.y * act.log_p + (1.0 - tg.y) * act.log_not_p)
    ce = (bce * weights).sum(dims) / weights.sum(dims)
    return (1.0 - _batch_dice(act.p, tg.y, weights) + ce).mean()


def _batch_dice(p: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
    """Per-channel soft Dice with sums over batch and voxels, voxel weights ``w`` (broadcastable
    to ``p``) or none; shape (K,)."""
    dims = [0, *range(2, p.ndim)]
    pw = p if w is None else p * w
    yw = y if w is None else y * w
    return (2.0 * (pw * y).sum(dims) + EPS) / (pw.sum(dims) + yw.sum(dims) + EPS)


@torch.no_grad()
def inverse_size_weights(
    inst: InstanceTensors, tg: Targets, scope: str, clip: tuple[float, float], shape: torch.Size
) -> Tensor:
    """Inverse-size voxel weights from the target's components (no gradient).

    Parameters
    ----------
    inst : InstanceTensors
    tg : Targets
    scope : {"global", "local"}
    clip : (w_min, w_max)
    shape : torch.Size
        Shape of the foreground probabilities (B, K, *S).

    Returns
    -------
    weights : Tensor, shape (B, 1, *S) (global) or (B, K, *S) (local); 0 on ignored voxels.
    """
    batch, channels = inst.counts.shape
    comp = inst.components  # (B, K, V)
    valid = tg.valid.reshape(batch, 1, -1)
    in_component = comp > 0
    segment = (inst.offsets.unsqueeze(-1) + comp - 1).clamp(min=0)
    sizes = inst.sizes.to(valid.dtype)
    voxels = valid.sum(dim=-1)  # (B, 1)
    if sizes.numel():
        size = torch.where(in_component, sizes[segment], torch.full_like(valid, float("inf")))
    else:
        size = torch.full(comp.shape, float("inf"), dtype=valid.dtype, device=valid.device)
    if scope == "global":
        size = size.min(dim=1, keepdim=True).values  # smallest component holding the voxel
        background = torch.isinf(size)
        n_segments = inst.counts.sum(dim=1, keepdim=True) + 1  # (B, 1)
    else:
        background = ~in_component
        n_segments = inst.counts + 1  # (B, K)
    background_voxels = (background * valid).sum(dim=-1, keepdim=True)
    size = torch.where(background, background_voxels.expand_as(size), size)
    weights = voxels.unsqueeze(-1) / (n_segments.unsqueeze(-1).to(valid.dtype) * size)
    weights = weights.clamp(clip[0], clip[1]) * valid
    return weights.reshape(shape if scope == "local" else (shape[0], 1, *shape[2:]))
