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

* Σ p and Σ -log p over C_n: one ``index_add`` over the foreground voxels only;
* Σ p, Σ -log(1 - p) and the voxel count over the background part: a dense masked reduction per
  (b, k) for blob; for cc an ``index_add`` by cell id over the background voxels of the channels
  with two or more components (one component: the cell is the whole volume, use the dense sums);

then O(N) arithmetic. No Python loop over components; weights, being constant per segment, scale
segment sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from workbench.losses.base import EPS, Activations, Base, InstanceTensors, Targets

__all__ = ["ComponentTerms", "aggregate", "component_terms"]

Domain = Literal["blob", "cc"]


@dataclass(frozen=True, eq=False)
class ComponentTerms:
    """Per-component terms, one entry per global segment ``j`` (see InstanceTensors).

    ``dice``, ``ce``: base-loss terms on the component's domain (weighted for IWL); ``weight``:
    the IWL weight on the component's voxels (1 without IWL); ``domain_size``: |D_n| in voxels.
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


def component_terms(
    act: Activations, tg: Targets, inst: InstanceTensors, domain: Domain, iwl: bool, max_weight: float
) -> ComponentTerms:
    """Dice and CE of every component on its domain, from segment sums.

    Parameters
    ----------
    act : Activations
        ``p``, ``log_p``, ``log_not_p`` of shape (B, K, *S).
    tg : Targets
    inst : InstanceTensors
        Components (and cells for ``domain="cc"``) of the same target.
    domain : {"blob", "cc"}
    iwl : bool
        Apply the IWL weight ``clip(|D_n| / |C_n|, 1, max_weight)`` to the component's voxels.
    max_weight : float
    """
    batch, channels = inst.counts.shape
    p = act.p.reshape(batch, channels, -1)
    log_p = act.log_p.reshape(batch, channels, -1)
    log_not_p = act.log_not_p.reshape(batch, channels, -1)
    valid = tg.valid.reshape(batch, 1, -1)
    dtype = p.dtype
    n = inst.total

    # Component segments: foreground voxels only.
    flat_components = inst.components.reshape(-1)
    foreground = torch.nonzero(flat_components > 0).squeeze(1)
    voxels = p.shape[-1]
    segment = inst.offsets.reshape(-1)[foreground // voxels] + flat_components[foreground] - 1
    p_fg = torch.zeros(n, dtype=dtype, device=p.device).index_add(0, segment, p.reshape(-1)[foreground])
    ce_fg = torch.zeros(n, dtype=dtype, device=p.device).index_add(0, segment, -log_p.reshape(-1)[foreground])
    size_fg = inst.sizes.to(dtype)

    # Background parts: the channel's background (dense sums per (b, k)) ...
    background = (inst.components == 0).to(dtype) * valid
    bk = inst.segment_bk
    p_bg = (p * background).sum(-1).reshape(-1)[bk]
    ce_bg = (-log_not_p * background).sum(-1).reshape(-1)[bk]
    size_bg = background.sum(-1).reshape(-1)[bk]
    if domain == "cc":
        # ... or, for cc, the part of each cell outside its component (cells differ only where N ≥ 2).
        p_cell, ce_cell, size_cell = _cell_background_sums(p, log_not_p, background, inst)
        several = inst.counts.reshape(-1)[bk] >= 2
        p_bg = torch.where(several, p_cell, p_bg)
        ce_bg = torch.where(several, ce_cell, ce_bg)
        size_bg = torch.where(several, size_cell, size_bg)

    domain_size = size_bg + size_fg
    if iwl:
        weight = (domain_size / size_fg).clamp(1.0, max_weight)
    else:
        weight = torch.ones_like(size_fg)
    dice = 1.0 - (2.0 * weight * p_fg + EPS) / (p_bg + weight * p_fg + weight * size_fg + EPS)
    ce = (ce_bg + weight * ce_fg) / (size_bg + weight * size_fg)
    return ComponentTerms(dice=dice, ce=ce, weight=weight, domain_size=domain_size)


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


def _cell_background_sums(
    p: Tensor, log_not_p: Tensor, background: Tensor, inst: InstanceTensors
) -> tuple[Tensor, Tensor, Tensor]:
    """Σ p, Σ -log(1 - p) and voxel count over each cell's background part, by cell id.

    Only voxels of channels with two or more components are added; the others go to a spare bin.
    """
    n = inst.total
    several = (inst.counts >= 2).unsqueeze(-1)
    use = (background > 0) & several
    segment = torch.where(use, inst.offsets.unsqueeze(-1) + inst.cells - 1, torch.full_like(inst.cells, n))
    segment = segment.reshape(-1)
    zeros = torch.zeros(n + 1, dtype=p.dtype, device=p.device)
    weight = background.reshape(-1)
    p_cell = zeros.index_add(0, segment, (p.reshape(-1) * weight))[:n]
    ce_cell = zeros.index_add(0, segment, (-log_not_p.reshape(-1) * weight))[:n]
    size_cell = zeros.index_add(0, segment, weight)[:n]
    return p_cell, ce_cell, size_cell
