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
* Σ p, Σ -log(1 - p) and the voxel count over the background part: the channel's total minus its
  components' sums (blob), or the cell's total — one ``index_add`` by cell id over the channels
  with two or more components — minus its component's sum (cc; with one component the cell is
  the whole volume);

then O(N) arithmetic in float64. No Python loop over components; IWL weights, being constant per
segment, scale segment sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from workbench.losses.base import EPS, Activations, Base, InstanceTensors, Targets

__all__ = ["ComponentTerms", "aggregate", "component_terms"]

Domain = Literal["blob", "cc"]
_RUN = 1024  # longest run of voxels summed in the input's precision before widening to float64


@dataclass(frozen=True, eq=False)
class ComponentTerms:
    """Per-component terms, one entry per global segment ``j`` (see InstanceTensors).

    ``dice``, ``ce``: base-loss terms on the component's domain (weighted for IWL; ``ce`` is None
    when the activations carry no ``log(1 - p)``, i.e. for a Dice-only base); ``weight``:
    the IWL weight on the component's voxels (1 without IWL); ``domain_size``: |D_n| in voxels.
    """

    dice: Tensor
    ce: Tensor | None
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
        ``p``, ``log_p``, ``log_not_p`` of shape (B, K, *S); without ``log_not_p`` only Dice terms.
    tg : Targets
    inst : InstanceTensors
        Components (and cells for ``domain="cc"``) of the same target.
    domain : {"blob", "cc"}
    iwl : bool
        Apply the IWL weight ``clip(|D_n| / |C_n|, 1, max_weight)`` to the component's voxels.
    max_weight : float

    Notes
    -----
    Background parts are totals minus component parts. With float32 activations a channel total
    carries the relative error of torch's pairwise float32 sum (~1e-7 of the total), so a
    background part is exact to about 1e-7 of the channel's total; cell totals and all the
    arithmetic on sums are float64. In float64 everything is exact to rounding.
    """
    sums = _SegmentSums(act, tg, inst)
    with_ce = act.log_not_p is not None
    p_fg = sums.components(act.p)
    p_bg = sums.backgrounds(act.p, p_fg, domain)
    size_fg = inst.sizes.to(torch.float64)
    size_bg = sums.background_sizes(domain)
    if with_ce:
        ce_fg = -sums.components(act.log_p)
        ce_not_fg = -sums.components(act.log_not_p)
        ce_bg = -sums.backgrounds(act.log_not_p, -ce_not_fg, domain)

    domain_size = size_bg + size_fg
    if iwl:
        weight = (domain_size / size_fg).clamp(1.0, max_weight)
    else:
        weight = torch.ones_like(size_fg)
    dice = 1.0 - (2.0 * weight * p_fg + EPS) / (p_bg + weight * p_fg + weight * size_fg + EPS)
    ce = (ce_bg + weight * ce_fg) / (size_bg + weight * size_fg) if with_ce else None
    dtype = act.p.dtype
    return ComponentTerms(
        dice=dice.to(dtype), ce=None if ce is None else ce.to(dtype), weight=weight.to(dtype), domain_size=domain_size
    )


class _SegmentSums:
    """Sums of per-voxel quantities (B, K, *S) over components, channel backgrounds and cells.

    Component sums gather the foreground voxels only. A channel's background sum is its total
    (summed in the input's precision, which torch does pairwise, then widened) minus its
    components' sums; a cell's background part is the cell's total minus its component's sum,
    the total being a ``segment_reduce`` over runs of voxels that share a cell, then a float64
    ``index_add`` of the run sums.
    """

    def __init__(self, act: Activations, tg: Targets, inst: InstanceTensors) -> None:
        batch, channels = inst.counts.shape
        self.inst = inst
        self.valid = tg.valid.flatten(2) if tg.has_ignored else None  # (B, 1, V)
        flat = inst.components.reshape(-1)
        foreground = torch.nonzero(flat > 0).squeeze(1)
        voxels = flat.numel() // (batch * channels)
        self.index = (foreground // (channels * voxels), (foreground // voxels) % channels, foreground % voxels)
        self.segment = inst.offsets.reshape(-1)[foreground // voxels] + flat[foreground].long() - 1
        if self.valid is not None:
            total = self.valid.sum(-1, dtype=torch.float64)
        else:
            total = torch.full((batch, 1), float(voxels), dtype=torch.float64, device=flat.device)
        self.voxels = total.expand(batch, channels).reshape(-1)  # non-ignored voxels per (b, k)
        self._cell_runs = None

    def components(self, values: Tensor) -> Tensor:
        """(N,) sums over each component."""
        picked = values.flatten(2)[self.index].to(torch.float64)
        return torch.zeros(self.inst.total, dtype=torch.float64, device=picked.device).index_add(0, self.segment, picked)

    def backgrounds(self, values: Tensor, per_component: Tensor, domain: Domain) -> Tensor:
        """(N,) sums over each component's background part (channel background or cell part)."""
        flat = values.flatten(2)
        if self.valid is not None:
            flat = flat * self.valid
        totals = flat.sum(-1).to(torch.float64).reshape(-1)  # cascade-summed in the input's precision
        cells = None
        if domain == "cc":
            cells = self._cell_totals(torch.segment_reduce(flat.reshape(-1), "sum", lengths=self.cell_runs()[1]))
        return self._background_parts(totals, cells, per_component)

    def background_sizes(self, domain: Domain) -> Tensor:
        """(N,) voxel counts of each component's background part."""
        cells = self._cell_totals(self.cell_runs()[1]) if domain == "cc" else None
        return self._background_parts(self.voxels, cells, self.inst.sizes.to(torch.float64))

    def _background_parts(self, channel_totals: Tensor, cell_totals: Tensor | None, per_component: Tensor) -> Tensor:
        """Totals minus component parts: per channel (B·K,) totals, or per cell (N,) totals for
        the components whose channel has several (the others' cell is the whole channel)."""
        bk = self.inst.segment_bk
        background = (channel_totals - torch.zeros_like(channel_totals).index_add(0, bk, per_component))[bk]
        if cell_totals is None:
            return background
        return torch.where(self.several(), cell_totals - per_component, background)

    def _cell_totals(self, run_values: Tensor) -> Tensor:
        """(N,) float64 totals per cell of per-run values (runs of :meth:`cell_runs`)."""
        run_cell = self.cell_runs()[0]
        totals = torch.zeros(self.inst.total + 1, dtype=torch.float64, device=run_values.device)
        return totals.index_add(0, run_cell, run_values.to(torch.float64))[:-1]

    def several(self) -> Tensor:
        """(N,) whether the component's channel has two or more components (else its cell is everything)."""
        return self.inst.counts.reshape(-1)[self.inst.segment_bk] >= 2

    def cell_runs(self) -> tuple[Tensor, Tensor]:
        """Runs of consecutive voxels (in memory order) that share a global cell id: (cell, length).

        Voxels of channels with fewer than two components, and ignored voxels, carry a spare id
        (N). Runs are cut every ``_RUN`` voxels, so that the float sums within a run stay short;
        per-cell totals then add run sums in float64 — far fewer values than voxels, since cells
        are contiguous regions.
        """
        if self._cell_runs is None:
            inst = self.inst
            use = (inst.counts >= 2).unsqueeze(-1)
            if self.valid is not None:
                use = use & (self.valid > 0)
            offsets = inst.offsets.unsqueeze(-1).to(inst.cells.dtype)
            segment = torch.where(use, offsets + inst.cells - 1, torch.full_like(inst.cells, inst.total)).reshape(-1)
            starts = torch.ones_like(segment, dtype=torch.bool)
            starts[1:] = segment[1:] != segment[:-1]
            starts[::_RUN] = True
            first = torch.nonzero(starts).squeeze(1)
            length = torch.diff(first, append=torch.tensor([segment.numel()], device=first.device))
            self._cell_runs = (segment[first].long(), length)
        return self._cell_runs


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
