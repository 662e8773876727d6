"""Instance losses in O(voxels): blob, CC and their inverse-size weighted (IWL) forms.

For every batch element b, foreground channel k and component n of ``y_k`` the loss evaluates a
base loss (soft Dice + binary CE, DESIGN §4) on a domain D_n:

* **blob** (Kofler et al. 2023): D_n = component n plus the channel's background (the other
  components of k are removed);
* **cc** (the Voronoi-partitioned CC loss): D_n = the Voronoi cell of component n;

optionally with IWL weights ``w_n = clip(|D_n| / |C_n|, 1, max_weight)`` on the component's voxels
(1 elsewhere in the domain). Terms are averaged over components, then over the channels that have
a component, then over the batch elements that have one (multi-class paper, eq. 4).

Every term is a function of a few sums over the domain, and each domain is a union of two
segments: the component C_n (where g = 1) and a background part (g = 0) — the channel's whole
background for blob, the cell minus the component for cc. So the loss needs, per component,
Σ p and Σ -log p over C_n, and Σ p, Σ -log(1 - p) and the voxel count over the background part:
the channel's total minus its components' sums (blob), or the cell's total minus its component's
sum (cc; with one component the cell is the whole volume). :func:`workbench.losses.sums.voxel_sums`
gives all of them in float64 without a loop over components; what remains is O(N) arithmetic.
IWL weights, being constant per segment, scale segment sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from workbench.losses.base import EPS, Base, InstanceTensors
from workbench.losses.sums import VoxelSums

__all__ = ["ComponentTerms", "aggregate", "component_terms"]

Domain = Literal["blob", "cc"]


@dataclass(frozen=True, eq=False)
class ComponentTerms:
    """Per-component terms (N,), one entry per global component ``j`` (see InstanceTensors).

    ``dice``, ``ce``: base-loss terms on the component's domain (weighted for IWL); ``weight``:
    the IWL weight on the component's voxels (1 without IWL); ``domain_size``: |D_n| in voxels.
    All float64.
    """

    dice: Tensor
    ce: Tensor
    weight: Tensor
    domain_size: Tensor

    def loss(self, base: Base) -> Tensor:
        """Per-component base loss."""
        if base == "dice":
            return self.dice
        if base == "ce":
            return self.ce
        return self.dice + self.ce


def component_terms(sums: VoxelSums, inst: InstanceTensors, domain: Domain, iwl: bool, max_weight: float) -> ComponentTerms:
    """Dice and CE of every component on its domain, from segment sums.

    Parameters
    ----------
    sums : VoxelSums
        With component sums, and cell sums for ``domain="cc"``; the CE terms are meaningful only
        when the sums carry ``log(1 - p)``.
    inst : InstanceTensors
        The components the sums were taken over.
    domain : {"blob", "cc"}
    iwl : bool
        Apply the IWL weight ``clip(|D_n| / |C_n|, 1, max_weight)`` to the component's voxels.
    max_weight : float

    Notes
    -----
    Background parts are totals minus component parts, in float64. The fused CPU backend sums in
    float64 throughout; the torch backend sums float32 activations pairwise before widening, so a
    background part is exact to about 1e-7 of its channel's total.
    """
    bk = inst.segment_bk
    seg = sums.seg
    p_fg, ce_fg, log_not_p_fg = seg[:, 0], -seg[:, 1], seg[:, 2]
    size_fg = inst.sizes.to(torch.float64)
    p_bg = _background(sums.p.reshape(-1), p_fg, bk)
    ce_bg = -_background(sums.log_not_p.reshape(-1), log_not_p_fg, bk)
    size_bg = _background(sums.voxels.unsqueeze(1).expand(sums.p.shape).reshape(-1), size_fg, bk)
    if domain == "cc":
        several = inst.counts.reshape(-1)[bk] >= 2  # else the cell is the whole volume
        p_bg = torch.where(several, seg[:, 3] - p_fg, p_bg)
        ce_bg = torch.where(several, log_not_p_fg - seg[:, 4], ce_bg)
        size_bg = torch.where(several, seg[:, 5] - size_fg, size_bg)
    domain_size = size_bg + size_fg
    if iwl:
        weight = (domain_size / size_fg).clamp(1.0, max_weight)
    else:
        weight = torch.ones_like(size_fg)
    dice = 1.0 - (2.0 * weight * p_fg + EPS) / (p_bg + weight * p_fg + weight * size_fg + EPS)
    ce = (ce_bg + weight * ce_fg) / (size_bg + weight * size_fg)
    return ComponentTerms(dice=dice, ce=ce, weight=weight, domain_size=domain_size)


def _background(channel_totals: Tensor, per_component: Tensor, bk: Tensor) -> Tensor:
    """(N,) each component's channel total (B·K,) minus the sum over all components of that channel."""
    return (channel_totals - torch.zeros_like(channel_totals).index_add(0, bk, per_component))[bk]


def aggregate(per_component: Tensor, inst: InstanceTensors, anchor: Tensor) -> Tensor:
    """Mean over components, then over channels with a component, then over batch elements with one.

    ``anchor`` is any tensor of the graph; with no component anywhere the loss is ``0 * anchor.sum()``
    (zero, with an all-zero gradient).
    """
    if inst.total == 0:
        return anchor.sum() * 0.0
    batch, channels = inst.counts.shape
    counts = inst.counts.reshape(-1).to(per_component.dtype)
    sums = torch.zeros(batch * channels, dtype=per_component.dtype, device=per_component.device)
    sums = sums.index_add(0, inst.segment_bk, per_component)
    present = counts > 0
    per_channel = torch.where(present, sums / counts.clamp(min=1), torch.zeros_like(sums)).reshape(batch, channels)
    channels_present = present.reshape(batch, channels).sum(1)
    per_element = per_channel.sum(1) / channels_present.clamp(min=1)
    elements = channels_present > 0
    return per_element[elements].mean()
