"""The losses by name: one :class:`LossSpec` per loss, and :func:`build_loss`, which reads them.

What a loss is, which options it takes and which instance maps it needs is said here once. Every
consumer reads :data:`LOSSES`: :func:`build_loss`, the training loop and its config check, the
nnU-Net trainers (one class generated per spec), the loss explorer, the audit layers, the loop
oracle (:mod:`workbench.losses.reference`) and the benchmarks. Adding a loss is one entry here
(and a module class in :mod:`workbench.losses.combined`, if none of the three computes it).

>>> for spec in LOSSES.values():
...     print(f"{spec.name:<17} {spec.title:<17} {spec.summary}")
dc_ce             DC+CE             nnU-Net's DC+CE (batch Dice + cross-entropy), the baseline
blob              blob              α · DC+CE + β · blob loss (Kofler et al. 2023, one-vs-rest domains)
cc                CC                α · DC+CE + β · CC loss (Voronoi-cell domains)
iwl_blob          IWL-blob          α · DC+CE + β · blob loss with inverse-size (IWL) weights inside each domain
iwl_cc            IWL-CC            α · DC+CE + β · CC loss with inverse-size (IWL) weights inside each cell
invweight_global  InvWeight-global  DC+CE weighted by one inverse-size weight map (Shirokikh et al. 2020)
invweight_local   InvWeight-local   per-channel, one-vs-rest inverse-size weighted Dice + BCE
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch

from workbench._validate import check_choice, expected
from workbench.losses.combined import DiceCELoss, InstanceLoss, InverseWeightLoss
from workbench.losses.instance import Domain

__all__ = ["LOSSES", "LOSS_NAMES", "PRESETS", "LossSpec", "MapsNeeded", "Weighting", "build_loss", "get_loss_spec"]

Weighting = Literal["iwl", "global", "local"]

PRESETS = {"default": (1.0, 1.0), "alpha2_beta1": (2.0, 1.0), "alpha1_beta2": (1.0, 2.0)}
"""(alpha, beta) presets: the default of the multi-class paper, and the blob paper's two settings."""

_DOMAINS = ("blob", "cc")
_WEIGHTINGS = ("iwl", "global", "local")


def _parameters(module: type[torch.nn.Module]) -> Mapping[str, inspect.Parameter]:
    """The constructor parameters of a loss class, ``self`` left out, in signature order."""
    return {name: p for name, p in inspect.signature(module.__init__).parameters.items() if name != "self"}


class MapsNeeded(NamedTuple):
    """The instance maps of the target a loss reads: connected components, and their Voronoi cells."""

    components: bool
    cells: bool


@dataclass(frozen=True)
class LossSpec:
    """What one named loss is, which options it takes and which instance maps it needs.

    Attributes
    ----------
    name : str
        The name :func:`build_loss` takes, e.g. ``"iwl_blob"``.
    title : str
        Short display name, e.g. ``"IWL-blob"``.
    summary : str
        One line (no final full stop): what the loss computes.
    trainer : str
        Suffix of its nnU-Net trainer class, ``nnUNetTrainer_<trainer>`` (a Python identifier).
    module : type of torch.nn.Module
        The class computing the loss; ``module(**fixed, **options)`` makes one.
    fixed : Mapping of str to Any
        Constructor arguments the name fixes, e.g. ``{"domain": "blob", "iwl": True}``; the
        constructor's other parameters are the loss's :attr:`options`.
    domain : {"blob", "cc"} or None
        Domains of its instance term (one-vs-rest or Voronoi cells); None: no instance term, so
        no ``alpha`` / ``beta`` / ``preset``.
    weighting : {"iwl", "global", "local"} or None
        Its voxel weights: IWL inside each instance domain, one inverse-size map over all
        channels, one per channel; None: unweighted.
    """

    name: str
    title: str
    summary: str
    trainer: str
    module: type[torch.nn.Module]
    fixed: Mapping[str, Any] = field(default_factory=dict, hash=False)
    domain: Domain | None = None
    weighting: Weighting | None = None

    def __post_init__(self) -> None:
        if self.domain is not None:
            check_choice("domain", self.domain, _DOMAINS)
        if self.weighting is not None:
            check_choice("weighting", self.weighting, _WEIGHTINGS)
        if self.weighting == "iwl" and self.domain is None:
            raise ValueError(f"Loss {self.name!r}: IWL weights live inside instance domains; give `domain` too.")
        if not self.trainer.isidentifier():
            raise ValueError(expected("trainer", "a Python identifier (a class-name suffix)", self.trainer))
        unknown = sorted(set(self.fixed) - set(_parameters(self.module)))
        if unknown:
            raise ValueError(f"Loss {self.name!r} fixes {unknown}, which {self.module.__name__} does not take.")
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))

    @property
    def instance_term(self) -> bool:
        """Whether the loss has an instance term, weighted by ``beta`` against ``alpha · DC+CE``."""
        return self.domain is not None

    @property
    def options(self) -> tuple[str, ...]:
        """The constructor parameters the name leaves open, in signature order (``preset`` aside)."""
        return tuple(p for p in _parameters(self.module) if p not in self.fixed)

    def needs_maps(self, **options: Any) -> MapsNeeded:
        """The instance maps of the target the loss built with ``options`` reads.

        Components for an active instance term (``beta > 0``) or an inverse-size weighting;
        Voronoi cells only for an active instance term on ``"cc"`` domains.

        Parameters
        ----------
        **options
            As :func:`build_loss` takes them; only ``beta`` and ``preset`` matter here.

        Returns
        -------
        MapsNeeded
            ``(components, cells)``, two bools.

        Examples
        --------
        >>> LOSSES["iwl_cc"].needs_maps(), LOSSES["cc"].needs_maps(beta=0)
        (MapsNeeded(components=True, cells=True), MapsNeeded(components=False, cells=False))
        >>> LOSSES["invweight_local"].needs_maps()
        MapsNeeded(components=True, cells=False)
        """
        if not self.instance_term:
            return MapsNeeded(components=self.weighting is not None, cells=False)
        given = dict(options)
        _apply_preset(given, given.pop("preset", None))
        active = given.get("beta", _parameters(self.module)["beta"].default) > 0
        return MapsNeeded(components=active, cells=active and self.domain == "cc")

    def construct(self, options: Mapping[str, Any]) -> torch.nn.Module:
        """``module(**fixed, **options)``; :func:`build_loss` resolves ``preset`` into ``alpha`` / ``beta`` first.

        Raises
        ------
        TypeError
            An option outside :attr:`options`; the message lists those the loss takes.
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            also = " and preset" if self.instance_term else ""
            takes = f"{list(self.options)}{also}"
            raise TypeError(f"Loss {self.name!r} got unexpected options {unknown}; it takes {takes}.")
        return self.module(**self.fixed, **options)


LOSSES: Mapping[str, LossSpec] = MappingProxyType({spec.name: spec for spec in (
    LossSpec(
        name="dc_ce", title="DC+CE", summary="nnU-Net's DC+CE (batch Dice + cross-entropy), the baseline",
        trainer="DCCE", module=DiceCELoss,
    ),
    LossSpec(
        name="blob", title="blob", summary="α · DC+CE + β · blob loss (Kofler et al. 2023, one-vs-rest domains)",
        trainer="Blob", module=InstanceLoss, fixed={"domain": "blob", "iwl": False}, domain="blob",
    ),
    LossSpec(
        name="cc", title="CC", summary="α · DC+CE + β · CC loss (Voronoi-cell domains)",
        trainer="CC", module=InstanceLoss, fixed={"domain": "cc", "iwl": False}, domain="cc",
    ),
    LossSpec(
        name="iwl_blob", title="IWL-blob",
        summary="α · DC+CE + β · blob loss with inverse-size (IWL) weights inside each domain",
        trainer="IWLBlob", module=InstanceLoss, fixed={"domain": "blob", "iwl": True}, domain="blob", weighting="iwl",
    ),
    LossSpec(
        name="iwl_cc", title="IWL-CC", summary="α · DC+CE + β · CC loss with inverse-size (IWL) weights inside each cell",
        trainer="IWLCC", module=InstanceLoss, fixed={"domain": "cc", "iwl": True}, domain="cc", weighting="iwl",
    ),
    LossSpec(
        name="invweight_global", title="InvWeight-global",
        summary="DC+CE weighted by one inverse-size weight map (Shirokikh et al. 2020)",
        trainer="InvWeightGlobal", module=InverseWeightLoss, fixed={"scope": "global"}, weighting="global",
    ),
    LossSpec(
        name="invweight_local", title="InvWeight-local", summary="per-channel, one-vs-rest inverse-size weighted Dice + BCE",
        trainer="InvWeightLocal", module=InverseWeightLoss, fixed={"scope": "local"}, weighting="local",
    ),
)})
"""Every loss, name → :class:`LossSpec`, in the order listings and sweeps show them."""

LOSS_NAMES = tuple(LOSSES)
"""The names of :data:`LOSSES`, in its order."""


def get_loss_spec(name: str) -> LossSpec:
    """The spec of the loss called ``name``.

    Raises
    ------
    ValueError
        ``Expected `name` to be one of ('dc_ce', ...), but got 'blobb'.``

    Examples
    --------
    >>> get_loss_spec("iwl_blob").title, get_loss_spec("iwl_blob").trainer
    ('IWL-blob', 'IWLBlob')
    """
    return LOSSES[check_choice("name", name, tuple(LOSSES))]


def build_loss(name: str, **options: Any) -> torch.nn.Module:
    """Make a loss by name (DESIGN §6).

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NAMES`.
    **options
        ``mode``, ``ignore_index``, ``schema`` for every loss; for blob / cc / iwl_*: ``alpha``,
        ``beta`` or ``preset`` (one of :data:`PRESETS`), ``base``, ``connectivity``, ``spacing``, and
        ``max_weight`` (iwl_* only); for invweight_*: ``clip``, ``connectivity``
        (:attr:`LossSpec.options` lists them).

    Returns
    -------
    loss : torch.nn.Module
        Called as ``loss(logits, target)`` or ``loss(logits, target, instances=maps)``.

    Raises
    ------
    ValueError
        Unknown name, preset or option value.
    TypeError
        An option the named loss does not take (the message lists those it takes).

    Examples
    --------
    >>> import torch
    >>> loss = build_loss("blob", preset="alpha2_beta1", mode="sigmoid")
    >>> loss
    InstanceLoss(domain='blob', iwl=False, alpha=2.0, beta=1.0, base='dice_ce', mode='sigmoid')
    >>> target = torch.zeros(1, 1, 8, 8)
    >>> target[0, 0, 1:3, 1:3] = target[0, 0, 5:7, 5:7] = 1
    >>> float(loss(torch.zeros(1, 1, 8, 8), target)) > 0
    True
    """
    spec = get_loss_spec(name)
    options = dict(options)
    preset = options.pop("preset", None)
    if not spec.instance_term:
        _drop_instance_weights(name, options, preset)
        return spec.construct(options)
    _apply_preset(options, preset)
    if spec.weighting != "iwl" and "max_weight" in options:
        iwl = ", ".join(n for n, s in LOSSES.items() if s.weighting == "iwl")
        raise TypeError(f"`max_weight` is an option of the IWL losses ({iwl}), not of {name!r}.")
    return spec.construct(options)


def _drop_instance_weights(name: str, options: dict[str, Any], preset: str | None) -> None:
    """Warn about (at :func:`build_loss`'s caller) and drop ``alpha`` / ``beta`` of a loss without instance term."""
    given = sorted(k for k in ("alpha", "beta") if k in options) + (["preset"] if preset else [])
    if given:
        warnings.warn(f"{given} have no effect on {name!r}, which has no instance term.", stacklevel=3)
        for key in ("alpha", "beta"):
            options.pop(key, None)


def _apply_preset(options: dict[str, Any], preset: str | None) -> None:
    """Set ``alpha`` and ``beta`` of ``options`` from ``preset`` (None: leave them)."""
    if preset is None:
        return
    check_choice("preset", preset, tuple(PRESETS))
    if "alpha" in options or "beta" in options:
        raise ValueError(f"Give either `preset` or `alpha`/`beta`, not both (got preset={preset!r}).")
    options["alpha"], options["beta"] = PRESETS[preset]
