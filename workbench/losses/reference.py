"""Plain reference implementation of every workbench loss: the test oracle, never used in training.

Every loss of DESIGN §4/§4a is written the obvious way: Python loops over batch elements, classes
and components; for each component the boolean domain mask ``D_n`` and a dense per-voxel weight
map are built explicitly, and Dice and BCE are plain sums over the masked voxels
(``(w * p * g)[mask].sum()``). There is no segment-sum, ``index_add`` or totals-minus-parts
shortcut, so the fast implementation in :mod:`workbench.losses` can be checked against it.
Masks select voxels by indexing (never by multiplying with 0/1), so ignored voxels and voxels
outside a domain get exactly zero gradient.

Definitions (eps = 1e-5), for a domain ``D``, probabilities ``p``, labels ``g`` and weights ``w``:

- soft Dice: ``1 - (2 Σ_D w p g + eps) / (Σ_D w p + Σ_D w g + eps)``
- BCE: ``-Σ_D w [g log p + (1 - g) log(1 - p)] / Σ_D w``, with ``log p`` and ``log(1 - p)``
  from ``log_softmax``/``logsumexp`` (softmax) or ``logsigmoid`` (sigmoid).

Examples
--------
>>> import torch
>>> target = torch.zeros(1, 4, 4, dtype=torch.long)     # (B, Y, X), one class, softmax mode
>>> target[0, 0, 0] = target[0, 3, 3] = 1               # two components, one voxel each
>>> logits = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
>>> logits[:, 0] = 20.0                                  # background everywhere...
>>> logits[0, :, 0, 0] = torch.tensor([-20.0, 20.0])     # ...but the first component is found
>>> round(float(reference_loss("blob", logits, target, base="dice", alpha=0.0)), 4)
0.5
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from workbench._validate import check_choice
from workbench.instances import InstanceMaps, instance_maps
from workbench.losses.registry import LOSS_NAMES, LOSSES

__all__ = [
    "BASES",
    "EPS",
    "INSTANCE_NAMES",
    "MODES",
    "NAMES",
    "reference_global_dc_ce",
    "reference_global_weights",
    "reference_instance_terms",
    "reference_local_weights",
    "reference_loss",
]

EPS = 1e-5
NAMES = LOSS_NAMES
"""Every registered loss (:data:`workbench.losses.LOSSES`); the oracle reads only its domain and weighting."""
INSTANCE_NAMES = tuple(name for name, spec in LOSSES.items() if spec.instance_term)
"""The losses with an instance term."""
MODES = ("softmax", "sigmoid")
BASES = ("dice_ce", "dice", "ce")


def reference_loss(
    name: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "softmax",
    base: str = "dice_ce",
    alpha: float = 1.0,
    beta: float = 1.0,
    connectivity: int | None = None,
    spacing: tuple[float, ...] | None = None,
    ignore_index: int | None = None,
    max_weight: float = 100.0,
    clip: tuple[float, float] = (1.0, 2e5),
) -> torch.Tensor:
    """Any workbench loss, computed the slow, obvious way.

    Parameters
    ----------
    name : {"dc_ce", "blob", "cc", "iwl_blob", "iwl_cc", "invweight_global", "invweight_local"}
        ``dc_ce``: nnU-Net's global DC+CE (batch Dice). ``blob``/``cc``/``iwl_blob``/``iwl_cc``:
        ``alpha * dc_ce + beta * instance loss``. ``invweight_*``: Shirokikh's inverse-size
        weighted DC+CE (``alpha``, ``beta`` and ``base`` do not apply).
    logits : Tensor, shape (B, K, Y, X) or (B, K, Z, Y, X), float
        ``K = C + 1`` (channel 0 background) in softmax mode, ``K = R`` in sigmoid mode.
    target : Tensor
        softmax: (B, *S) or (B, 1, *S) int, ``0..C`` (or ``ignore_index``).
        sigmoid: (B, R, *S) binary.
    mode : {"softmax", "sigmoid"}
    base : {"dice_ce", "dice", "ce"}
        Base loss of the instance terms (the global term is always DC+CE).
    alpha, beta : float
        Weights of the global and instance terms; a zero weight skips its term.
    connectivity : int, optional
        Component connectivity (6/18/26 in 3D, 4/8 in 2D); default full.
    spacing : tuple of float, optional
        Voxel size in mm (Voronoi cells of ``cc``/``iwl_cc``); default 1.
    ignore_index : int, optional
        softmax mode: target value excluded from every sum and count. Ignored (with a warning)
        in sigmoid mode.
    max_weight : float
        Upper clip of the IWL component weight ``|D_n| / |C_n|``.
    clip : tuple of float
        ``(w_min, w_max)`` of the InvWeight maps.

    Returns
    -------
    Tensor
        Scalar, differentiable with respect to ``logits``.

    Raises
    ------
    ValueError
        On an unknown ``name``, ``mode`` or ``base``, a bad weight bound, or mismatched shapes.
    """
    spec = LOSSES[check_choice("name", name, NAMES)]
    check_choice("base", base, BASES)
    _check_max_weight(max_weight)
    _check_clip(clip)
    inputs = _prepare(logits, target, mode, connectivity, spacing, ignore_index)

    if spec.weighting == "global":
        return _invweight_global(inputs, clip)
    if spec.weighting == "local":
        return _invweight_local(inputs, clip)
    if not spec.instance_term:
        return _global_dc_ce(inputs)

    total = logits.sum() * 0.0
    if alpha != 0:
        total = total + alpha * _global_dc_ce(inputs)
    if beta != 0:
        terms = _instance_terms(inputs, spec.domain, spec.weighting == "iwl", base, max_weight)
        total = total + beta * _aggregate(terms, logits)
    return total


def reference_global_dc_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "softmax",
    ignore_index: int | None = None,
) -> torch.Tensor:
    """nnU-Net's global DC+CE: ``1 - mean_k batch Dice_k`` plus the mean (B)CE, a scalar.

    softmax: Dice over the foreground classes ``1..C``, multi-class CE over the non-ignored
    voxels. sigmoid: Dice over all regions, BCE averaged over voxels and regions. Arguments as in
    :func:`reference_loss`.
    """
    return _global_dc_ce(_prepare(logits, target, mode, None, None, ignore_index, need_maps=False))


def reference_instance_terms(
    name: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "softmax",
    base: str = "dice_ce",
    connectivity: int | None = None,
    spacing: tuple[float, ...] | None = None,
    ignore_index: int | None = None,
    max_weight: float = 100.0,
) -> list[dict]:
    """The per-component terms of an instance loss, one dict per component.

    Parameters
    ----------
    name : {"blob", "cc", "iwl_blob", "iwl_cc"}
    logits, target, mode, base, connectivity, spacing, ignore_index, max_weight
        As in :func:`reference_loss`.

    Returns
    -------
    list of dict
        In order of batch element, channel, component id. Keys: ``batch`` (int), ``channel``
        (int, the logits channel: class ``1..C`` in softmax mode, region ``0..R-1`` in sigmoid
        mode), ``id`` (int, component id ``1..N``), ``dice``, ``ce``, ``loss`` (0-d tensors; the
        weighted soft Dice loss, the weighted BCE, and their combination chosen by ``base``),
        ``weight`` (float, the weight on the component's voxels; 1 for ``blob``/``cc``),
        ``domain_size`` (int, non-ignored voxels of ``D_n``), ``size`` (int, ``|C_n|``).
    """
    spec = LOSSES[check_choice("name", name, INSTANCE_NAMES)]
    check_choice("base", base, BASES)
    _check_max_weight(max_weight)
    inputs = _prepare(logits, target, mode, connectivity, spacing, ignore_index)
    return _instance_terms(inputs, spec.domain, spec.weighting == "iwl", base, max_weight)


def reference_global_weights(
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    mode: str = "softmax",
    connectivity: int | None = None,
    ignore_index: int | None = None,
    clip: tuple[float, float] = (1.0, 2e5),
) -> torch.Tensor:
    """InvWeight-global weight map ``|V_b| / ((K + 1) |segment(v)|)``, clipped; (B, *S) float64.

    ``num_classes`` is C in softmax mode (default: the largest label present); ignored voxels
    get weight 0. Other arguments as in :func:`reference_loss`.
    """
    _check_clip(clip)
    labels, valid, maps = _weight_inputs(target, num_classes, mode, connectivity, ignore_index)
    return torch.from_numpy(_global_weight_map(labels, valid, maps, clip))


def reference_local_weights(
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    mode: str = "softmax",
    connectivity: int | None = None,
    ignore_index: int | None = None,
    clip: tuple[float, float] = (1.0, 2e5),
) -> torch.Tensor:
    """InvWeight-local weight maps ``|V_b| / ((N_bk + 1) |segment(v)|)``, clipped; (B, K, *S) float64.

    Channel ``k`` is the ``k``-th foreground class (softmax) or region (sigmoid); ignored voxels
    get weight 0. Arguments as in :func:`reference_global_weights`.
    """
    _check_clip(clip)
    _, valid, maps = _weight_inputs(target, num_classes, mode, connectivity, ignore_index)
    return torch.from_numpy(_local_weight_maps(valid, maps, clip))


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """Per-voxel quantities of one (logits, target) pair, foreground channels only."""

    p: torch.Tensor  # (B, K, *S) probabilities of the K foreground channels
    log_p: torch.Tensor  # (B, K, *S) log p, computed stably
    log_1mp: torch.Tensor  # (B, K, *S) log(1 - p), computed stably
    g: torch.Tensor  # (B, K, *S) float 0/1 labels (0 on ignored voxels)
    valid: torch.Tensor  # (B, *S) bool, False on ignored voxels
    voxel_ce: torch.Tensor  # (B, *S) multi-class CE (softmax) or mean BCE over regions (sigmoid)
    labels: torch.Tensor | None  # (B, *S) int64 class map (softmax), None (sigmoid)
    channels: list[int]  # logits channel of each foreground channel
    maps: InstanceMaps | None  # instance maps of the target


def _prepare(logits, target, mode, connectivity, spacing, ignore_index, need_maps=True) -> _Inputs:
    check_choice("mode", mode, MODES)
    if not torch.is_tensor(logits) or not logits.is_floating_point() or logits.ndim not in (4, 5):
        raise ValueError(
            "Expected `logits` to be a float tensor of shape (B, K, Y, X) or (B, K, Z, Y, X), "
            f"but got {getattr(logits, 'dtype', type(logits).__name__)} of shape {tuple(getattr(logits, 'shape', ()))}."
        )
    target = torch.as_tensor(target, device=logits.device)
    spatial = logits.shape[2:]
    batch = logits.shape[0]

    if mode == "sigmoid":
        _warn_if_ignore_index(ignore_index)
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(
                f"Expected `target` of shape {tuple(logits.shape)} (B, R, *S) in sigmoid mode, "
                f"but got {tuple(target.shape)}."
            )
        g = target.to(logits.dtype)
        p = torch.sigmoid(logits)
        log_p = torch.nn.functional.logsigmoid(logits)
        log_1mp = torch.nn.functional.logsigmoid(-logits)
        valid = torch.ones((batch, *spatial), dtype=torch.bool, device=logits.device)
        voxel_ce = -(g * log_p + (1 - g) * log_1mp).mean(dim=1)
        channels = list(range(logits.shape[1]))
        labels = None
        maps_target = target.detach().cpu().numpy()
        num_classes = None
    else:
        if target.ndim == logits.ndim and target.shape[1] == 1:
            target = target[:, 0]
        if tuple(target.shape) != (batch, *spatial):
            raise ValueError(
                f"Expected `target` of shape {(batch, *spatial)} or {(batch, 1, *spatial)} in softmax mode, "
                f"but got {tuple(target.shape)}."
            )
        if logits.shape[1] < 2:
            raise ValueError(
                "Expected at least 2 logits channels (background + classes) in softmax mode, "
                f"but got {logits.shape[1]}."
            )
        labels = target.long()
        valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
        channels = list(range(1, logits.shape[1]))
        log_softmax = torch.log_softmax(logits, dim=1)
        log_total = torch.logsumexp(logits, dim=1)
        p = torch.softmax(logits, dim=1)[:, 1:]
        log_p = log_softmax[:, 1:]
        # log(1 - p_k) = logsumexp over the other channels - logsumexp over all channels
        others = [torch.cat([logits[:, :k], logits[:, k + 1 :]], dim=1) for k in channels]
        log_1mp = torch.stack([torch.logsumexp(x, dim=1) - log_total for x in others], dim=1)
        g = torch.stack([(labels == k) & valid for k in channels], dim=1).to(logits.dtype)
        safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
        voxel_ce = -torch.gather(log_softmax, 1, safe_labels[:, None])[:, 0]
        maps_target = labels.detach().cpu().numpy()
        num_classes = logits.shape[1] - 1

    maps = None
    if need_maps:
        maps = instance_maps(
            maps_target,
            mode,
            connectivity,
            spacing,
            num_classes=num_classes,
            ignore_index=ignore_index if mode == "softmax" else None,
        )
    return _Inputs(p, log_p, log_1mp, g, valid, voxel_ce, labels, channels, maps)


def _weight_inputs(target, num_classes, mode, connectivity, ignore_index):
    """Class map, valid mask and instance maps (no Voronoi) for the InvWeight maps."""
    check_choice("mode", mode, MODES)
    target = np.asarray(torch.as_tensor(target).detach().cpu())
    if mode == "sigmoid":
        _warn_if_ignore_index(ignore_index)
        valid = np.ones((target.shape[0], *target.shape[2:]), dtype=bool)
        maps = instance_maps(target, mode, connectivity, voronoi=False)
        return None, valid, maps
    labels = target.astype(np.int64)
    if labels.ndim in (4, 5) and labels.shape[1] == 1:
        labels = labels[:, 0]
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, dtype=bool)
    maps = instance_maps(labels, mode, connectivity, voronoi=False, num_classes=num_classes, ignore_index=ignore_index)
    return labels, valid, maps


def _check_max_weight(max_weight: float) -> None:
    if not max_weight >= 1:
        raise ValueError(f"Expected `max_weight` to be at least 1, but got {max_weight!r}.")


def _check_clip(clip: tuple[float, float]) -> None:
    if len(clip) != 2 or not 0 < clip[0] <= clip[1]:
        raise ValueError(f"Expected `clip` to be (w_min, w_max) with 0 < w_min <= w_max, but got {clip!r}.")


def _warn_if_ignore_index(ignore_index) -> None:
    """Warn that ``ignore_index`` has no effect in sigmoid mode (called two levels below the API)."""
    if ignore_index is not None:
        warnings.warn("`ignore_index` applies only in softmax mode; ignored in sigmoid mode.", stacklevel=4)


# --- base losses on one domain ---------------------------------------------------------------


def _dice(p, g, w, mask):
    """Weighted soft Dice loss over the voxels selected by ``mask``."""
    p, g, w = p[mask], g[mask], w[mask]
    return 1 - (2 * (w * p * g).sum() + EPS) / ((w * p).sum() + (w * g).sum() + EPS)


def _bce(log_p, log_1mp, g, w, mask):
    """Weighted binary cross-entropy mean over the voxels selected by ``mask``."""
    log_p, log_1mp, g, w = log_p[mask], log_1mp[mask], g[mask], w[mask]
    return -(w * (g * log_p + (1 - g) * log_1mp)).sum() / w.sum()


def _combine(dice, ce, base):
    return {"dice_ce": dice + ce, "dice": dice, "ce": ce}[base]


# --- global DC+CE and InvWeight ---------------------------------------------------------------


def _global_dc_ce(x: _Inputs) -> torch.Tensor:
    ones = torch.ones_like(x.valid, dtype=x.p.dtype)
    return _weighted_dc_ce(x, ones)


def _weighted_dc_ce(x: _Inputs, w: torch.Tensor) -> torch.Tensor:
    """Mean over channels of the weighted batch soft Dice loss, plus ``Σ w ce / Σ w``; ``w``: (B, *S)."""
    dice_loss = torch.stack([_dice(x.p[:, k], x.g[:, k], w, x.valid) for k in range(x.p.shape[1])]).mean()
    ce = x.voxel_ce[x.valid]
    ce_loss = (w[x.valid] * ce).sum() / w[x.valid].sum()
    return dice_loss + ce_loss


def _invweight_global(x: _Inputs, clip) -> torch.Tensor:
    w = torch.from_numpy(_global_weight_map(_numpy_labels(x), x.valid.cpu().numpy(), x.maps, clip))
    return _weighted_dc_ce(x, w.to(device=x.p.device, dtype=x.p.dtype))


def _invweight_local(x: _Inputs, clip) -> torch.Tensor:
    w = torch.from_numpy(_local_weight_maps(x.valid.cpu().numpy(), x.maps, clip))
    w = w.to(device=x.p.device, dtype=x.p.dtype)
    losses = []
    for k in range(x.p.shape[1]):
        dice = _dice(x.p[:, k], x.g[:, k], w[:, k], x.valid)
        bce = _bce(x.log_p[:, k], x.log_1mp[:, k], x.g[:, k], w[:, k], x.valid)
        losses.append(dice + bce)
    return torch.stack(losses).mean()


def _numpy_labels(x: _Inputs):
    return None if x.labels is None else x.labels.cpu().numpy()


def _global_weight_map(labels, valid, maps: InstanceMaps, clip) -> np.ndarray:
    """One map per batch element: every component of every channel plus the background."""
    batch, channels = maps.counts.shape
    weights = np.zeros(valid.shape, dtype=np.float64)
    for b in range(batch):
        volume = valid[b].sum()
        segments = maps.counts[b].sum() + 1
        # Size of the segment each voxel belongs to (sigmoid: the smallest containing component).
        segment_size = np.full(valid.shape[1:], np.inf)
        for k in range(channels):
            for n in range(1, maps.counts[b, k] + 1):
                component = maps.components[b, k] == n
                segment_size[component] = np.minimum(segment_size[component], component.sum())
        if labels is None:
            background = ~np.any(maps.components[b] > 0, axis=0)
        else:
            background = (labels[b] == 0) & valid[b]
        segment_size[background] = background.sum()
        w = volume / (segments * segment_size)
        weights[b][valid[b]] = np.clip(w[valid[b]], *clip)
    return weights


def _local_weight_maps(valid, maps: InstanceMaps, clip) -> np.ndarray:
    """One map per (batch element, channel): the channel's components plus its background."""
    batch, channels = maps.counts.shape
    weights = np.zeros((batch, channels, *valid.shape[1:]), dtype=np.float64)
    for b in range(batch):
        volume = valid[b].sum()
        for k in range(channels):
            segments = maps.counts[b, k] + 1
            segment_size = np.zeros(valid.shape[1:], dtype=np.float64)
            background = (maps.components[b, k] == 0) & valid[b]
            segment_size[background] = background.sum()
            for n in range(1, maps.counts[b, k] + 1):
                component = maps.components[b, k] == n
                segment_size[component] = component.sum()
            w = np.zeros(valid.shape[1:], dtype=np.float64)
            w[valid[b]] = np.clip(volume / (segments * segment_size[valid[b]]), *clip)
            weights[b, k] = w
    return weights


# --- instance losses --------------------------------------------------------------------------


def _instance_terms(x: _Inputs, domain_kind: str, iwl: bool, base: str, max_weight: float) -> list[dict]:
    terms = []
    batch, channels = x.maps.counts.shape
    for b in range(batch):
        valid = x.valid[b]
        for k in range(channels):
            comp = torch.from_numpy(x.maps.components[b, k].astype(np.int64)).to(valid.device)
            cell = torch.from_numpy(x.maps.cells[b, k].astype(np.int64)).to(valid.device)
            p, g = x.p[b, k], x.g[b, k]
            log_p, log_1mp = x.log_p[b, k], x.log_1mp[b, k]
            for n in range(1, int(x.maps.counts[b, k]) + 1):
                component = comp == n
                if domain_kind == "blob":
                    domain = ((comp == 0) | component) & valid
                else:
                    domain = (cell == n) & valid
                domain_size = int(domain.sum())
                size = int(component.sum())
                weight = 1.0
                if iwl:
                    weight = min(max(domain_size / size, 1.0), max_weight)
                w = torch.ones_like(p)
                w[component] = weight
                dice = _dice(p, g, w, domain)
                ce = _bce(log_p, log_1mp, g, w, domain)
                terms.append(
                    {
                        "batch": b,
                        "channel": x.channels[k],
                        "id": n,
                        "dice": dice,
                        "ce": ce,
                        "loss": _combine(dice, ce, base),
                        "weight": weight,
                        "domain_size": domain_size,
                        "size": size,
                    }
                )
    return terms


def _aggregate(terms: list[dict], logits: torch.Tensor) -> torch.Tensor:
    """Mean over components, then over classes with components, then over batch elements."""
    if not terms:
        return logits.sum() * 0.0
    per_batch = []
    for b in sorted({t["batch"] for t in terms}):
        per_class = []
        for channel in sorted({t["channel"] for t in terms if t["batch"] == b}):
            losses = [t["loss"] for t in terms if t["batch"] == b and t["channel"] == channel]
            per_class.append(torch.stack(losses).mean())
        per_batch.append(torch.stack(per_class).mean())
    return torch.stack(per_batch).mean()
