"""The loss modules: DC+CE, the instance losses (blob, CC, IWL) and the inverse-size weighted losses.

Every named loss is one of these classes with some constructor arguments fixed by its name; the
names, what each fixes and what each needs are in :mod:`workbench.losses.registry`, and
:func:`~workbench.losses.registry.build_loss` is the one way to make a loss by name.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from workbench._validate import (
    check_choice, check_connectivity, check_finite, check_numbers, check_spacing_option, expected,
)
from workbench.instances import InstanceMaps
from workbench.labels import LabelSchema, get_schema
from workbench.losses.base import Base, Mode, Targets, activations, check_inputs, resolve_instances, targets
from workbench.losses.global_ import dice_ce, global_inverse_weights, invweight_local, weighted_dice_ce
from workbench.losses.instance import Domain, aggregate, component_terms
from workbench.losses.sums import voxel_sums

__all__ = ["DiceCELoss", "InstanceLoss", "InverseWeightLoss"]

_MODES = ("softmax", "sigmoid")
_BASES = ("dice_ce", "dice", "ce")


class _Loss(torch.nn.Module):
    """Validation and target handling shared by every loss module."""

    def __init__(self, mode: Mode, ignore_index: int | None, schema: str | LabelSchema | None) -> None:
        super().__init__()
        check_choice("mode", mode, _MODES)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))):
            raise ValueError(expected("ignore_index", "None or an int (the label value to ignore)", ignore_index))
        if ignore_index is not None and mode == "sigmoid":
            raise ValueError("`ignore_index` applies to softmax class maps only; in sigmoid mode mask the regions instead.")
        self.mode = mode
        self.ignore_index = ignore_index
        self.schema = get_schema(schema) if schema is not None else None

    def _prepare(self, logits: Tensor, target: Tensor) -> Targets:
        check_inputs(logits, target, self.mode, self.schema, self.ignore_index)
        return targets(target, self.mode, logits, self.ignore_index)


class DiceCELoss(_Loss):
    """nnU-Net's DC+CE: ``1 - mean_k dice_k`` (batch Dice over foreground channels) + CE.

    Call: ``loss(logits, target)`` with logits (B, C + 1, *S) and target (B, *S) or (B, 1, *S)
    int (softmax), or logits (B, R, *S) and target (B, R, *S) binary (sigmoid). Returns a scalar.
    """

    def __init__(self, mode: Mode = "softmax", ignore_index: int | None = None, schema: str | LabelSchema | None = None):
        super().__init__(mode, ignore_index, schema)

    def forward(self, logits: Tensor, target: Tensor, instances: InstanceMaps | None = None) -> Tensor:
        tg = self._prepare(logits, target)
        sums = voxel_sums(logits, tg, None, self.mode, log_not_p=self.mode == "sigmoid", cells=False)
        return _as_loss(dice_ce(sums, self.mode), logits)

    def extra_repr(self) -> str:
        return _repr(mode=self.mode, ignore_index=self.ignore_index, schema=self.schema and self.schema.name)


class InstanceLoss(_Loss):
    """``alpha · DC+CE + beta · L_instance`` with blob or CC domains, optionally IWL-weighted.

    Parameters
    ----------
    domain : {"blob", "cc"}
    iwl : bool
        Inverse-size weights inside each component's domain, ``clip(|D_n| / |C_n|, 1, max_weight)``.
    alpha, beta : float
        Weights of the global DC+CE and of the instance term; a zero weight skips its term.
    base : {"dice_ce", "dice", "ce"}
        Base loss of the instance term.
    mode : {"softmax", "sigmoid"}
    connectivity : int, optional
        Component connectivity when instance maps are computed on the fly (26 / 8 by default).
    spacing : tuple of float, optional
        Voxel size (mm) for the Voronoi cells computed on the fly.
    ignore_index : int, optional
    max_weight : float
        IWL bound (default 100).
    schema : str or LabelSchema, optional
        Checks the number of channels.

    Call: ``loss(logits, target, instances=None)``; ``instances`` are the target's
    :class:`~workbench.instances.InstanceMaps` (precomputed in data-loader workers), computed on the
    fly when None. Returns a scalar.

    Raises
    ------
    ValueError
        On construction, naming the option: ``alpha`` or ``beta`` not a finite number ≥ 0 (None
        included), ``max_weight`` below 1, ``spacing`` not 2 or 3 positive numbers (a single number
        or a string such as ``"1,1,1"`` is refused), an unknown ``connectivity``, ``mode``,
        ``domain`` or ``base``, ``ignore_index`` not an int; on call, the inputs
        :func:`~workbench.losses.base.check_inputs` refuses.
    """

    def __init__(
        self,
        domain: Domain = "blob",
        *,
        iwl: bool = False,
        alpha: float = 1.0,
        beta: float = 1.0,
        base: Base = "dice_ce",
        mode: Mode = "softmax",
        connectivity: int | None = None,
        spacing: tuple[float, ...] | None = None,
        ignore_index: int | None = None,
        max_weight: float = 100.0,
        schema: str | LabelSchema | None = None,
    ) -> None:
        super().__init__(mode, ignore_index, schema)
        check_choice("domain", domain, ("blob", "cc"))
        check_choice("iwl", iwl, (False, True))
        check_choice("base", base, _BASES)
        self.alpha = check_finite("alpha", alpha, minimum=0.0, what="a finite number ≥ 0")
        self.beta = check_finite("beta", beta, minimum=0.0, what="a finite number ≥ 0")
        is_number = isinstance(max_weight, (int, float, np.number)) and not isinstance(max_weight, (bool, np.bool_))
        if not is_number or not max_weight >= 1:  # NaN fails `>= 1`; inf (no bound) passes
            raise ValueError(f"Expected `max_weight` ≥ 1, but got {max_weight!r}.")
        self.domain = domain
        self.iwl = iwl
        self.base = base
        self.connectivity = _connectivity(connectivity)
        self.spacing = check_spacing_option(spacing)
        self.max_weight = float(max_weight)

    def forward(self, logits: Tensor, target: Tensor, instances: InstanceMaps | None = None) -> Tensor:
        if not (self.alpha or self.beta):
            check_inputs(logits, target, self.mode, self.schema, self.ignore_index)
            return logits.sum() * 0.0
        tg = self._prepare(logits, target)
        inst = self._instances(logits, target, instances) if self.beta else None
        one_vs_rest = self.mode == "sigmoid" or (self.beta > 0 and self.base != "dice")
        sums = voxel_sums(logits, tg, inst, self.mode, log_not_p=one_vs_rest, cells=inst is not None and self.domain == "cc")
        loss = self.alpha * dice_ce(sums, self.mode) if self.alpha else 0.0
        if self.beta:
            terms = component_terms(sums, inst, self.domain, self.iwl, self.max_weight)
            loss = loss + self.beta * aggregate(terms.loss(self.base), inst, sums.chan)
        return _as_loss(loss, logits)

    @torch.no_grad()
    def components(self, logits: Tensor, target: Tensor, instances: InstanceMaps | None = None) -> pd.DataFrame:
        """The instance term per component, for exploring a loss.

        Returns
        -------
        table : DataFrame
            One row per component: ``batch, channel, id, size, domain_size, weight, dice, ce, loss``
            (``loss`` is the base loss of the component; ``channel`` is the logits channel: class
            1..C in softmax mode, region 0..R-1 in sigmoid mode; with a schema, its name instead).
        """
        tg = self._prepare(logits, target)
        inst = self._instances(logits, target, instances)
        sums = voxel_sums(logits, tg, inst, self.mode, log_not_p=True, cells=self.domain == "cc")
        terms = component_terms(sums, inst, self.domain, self.iwl, self.max_weight)
        batch, channels = inst.counts.shape
        bk = inst.segment_bk.cpu().numpy()
        ids = (torch.arange(inst.total, device=inst.offsets.device) - inst.offsets.reshape(-1)[inst.segment_bk] + 1)
        names = self.schema.foreground_names(self.mode) if self.schema is not None else None
        foreground = bk % channels
        return pd.DataFrame(
            {
                "batch": bk // channels,
                "channel": [names[c] for c in foreground] if names else foreground + (self.mode == "softmax"),
                "id": ids.cpu().numpy(),
                "size": inst.sizes.cpu().numpy().astype(np.int64),
                "domain_size": terms.domain_size.cpu().numpy().astype(np.int64),
                "weight": terms.weight.double().cpu().numpy(),
                "dice": terms.dice.double().cpu().numpy(),
                "ce": terms.ce.double().cpu().numpy(),
                "loss": terms.loss(self.base).double().cpu().numpy(),
            }
        )

    def _instances(self, logits: Tensor, target: Tensor, instances: InstanceMaps | None):
        return resolve_instances(
            instances, logits, target, self.mode, connectivity=self.connectivity, spacing=self.spacing,
            ignore_index=self.ignore_index, use_cells=self.domain == "cc",
        )

    def extra_repr(self) -> str:
        return _repr(
            domain=self.domain, iwl=self.iwl, alpha=self.alpha, beta=self.beta, base=self.base, mode=self.mode,
            connectivity=self.connectivity, spacing=self.spacing, ignore_index=self.ignore_index,
            max_weight=self.max_weight if self.iwl else None, schema=self.schema and self.schema.name,
        )


class InverseWeightLoss(_Loss):
    """Inverse-size weighted DC+CE (Shirokikh et al. 2020), global or per channel (local).

    Parameters
    ----------
    scope : {"global", "local"}
        One weight map over all channels' components (weighted DC+CE), or one per channel
        (one-vs-rest weighted Dice + BCE, averaged over channels).
    clip : (float, float)
        Weight bounds ``[w_min, w_max]``, default ``(1, 2e5)``.
    mode, connectivity, ignore_index, schema
        As for :class:`InstanceLoss`.

    Raises
    ------
    ValueError
        On construction: ``clip`` not a pair of numbers with 0 < w_min ≤ w_max < inf (``-1`` or
        None included), and the shared options as for :class:`InstanceLoss`.
    """

    def __init__(
        self,
        scope: Literal["global", "local"] = "global",
        *,
        clip: tuple[float, float] = (1.0, 2e5),
        mode: Mode = "softmax",
        connectivity: int | None = None,
        ignore_index: int | None = None,
        schema: str | LabelSchema | None = None,
    ) -> None:
        super().__init__(mode, ignore_index, schema)
        check_choice("scope", scope, ("global", "local"))
        low, high = check_numbers("clip", clip, 2, "a pair (w_min, w_max) of numbers")
        if not (0 < low <= high < np.inf):
            raise ValueError(f"Expected `clip` = (w_min, w_max) with 0 < w_min ≤ w_max < inf, but got {tuple(clip)!r}.")
        self.scope = scope
        self.clip = (low, high)
        self.connectivity = _connectivity(connectivity)

    def forward(self, logits: Tensor, target: Tensor, instances: InstanceMaps | None = None) -> Tensor:
        tg = self._prepare(logits, target)
        inst = resolve_instances(
            instances, logits, target, self.mode, connectivity=self.connectivity, spacing=None,
            ignore_index=self.ignore_index, use_cells=False,
        )
        if self.scope == "local":
            sums = voxel_sums(logits, tg, inst, self.mode, log_not_p=True, cells=False)
            return _as_loss(invweight_local(sums, inst, self.clip), logits)
        act = activations(logits, self.mode, one_vs_rest=False)
        weights = global_inverse_weights(inst, tg, self.clip, act.p.shape)
        return weighted_dice_ce(act, tg, self.mode, weights)

    def extra_repr(self) -> str:
        return _repr(
            scope=self.scope, clip=self.clip, mode=self.mode, connectivity=self.connectivity,
            ignore_index=self.ignore_index, schema=self.schema and self.schema.name,
        )


def _connectivity(connectivity: int | None) -> int | None:
    """A connectivity option checked before the data's dimensions are known; None stays None (full)."""
    return None if connectivity is None else check_connectivity(connectivity)


def _as_loss(value: Tensor, logits: Tensor) -> Tensor:
    """The float64 arithmetic on sums, returned in float64 for float64 logits and float32 otherwise."""
    return value.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)


def _repr(**fields: object) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
