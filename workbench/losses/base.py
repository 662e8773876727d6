"""Shared pieces of every loss: input checks, stable log-probabilities, targets, instance tensors.

Shapes, as everywhere in :mod:`workbench.losses`:

* ``logits``: (B, C + 1, *S) in softmax mode (channel 0 background), (B, R, *S) in sigmoid mode;
  ``*S`` is (Y, X) or (Z, Y, X).
* ``target``: (B, *S) or (B, 1, *S) integer class map in softmax mode; (B, R, *S) binary region
  masks in sigmoid mode.
* foreground channels ``k``: classes 1..C (softmax), all R regions (sigmoid); tensors indexed by
  ``k`` below have K = C or K = R channels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from workbench.instances import InstanceMaps, instance_maps
from workbench.labels import LabelSchema

__all__ = [
    "EPS",
    "Activations",
    "InstanceTensors",
    "Mode",
    "Targets",
    "activations",
    "check_inputs",
    "instance_tensors",
    "resolve_instances",
    "targets",
]

Mode = Literal["softmax", "sigmoid"]
Base = Literal["dice_ce", "dice", "ce"]
EPS = 1e-5
"""Smoothing of every soft Dice: ``1 - (2 Σ pg + ε) / (Σ p + Σ g + ε)``."""


@dataclass(frozen=True, eq=False)
class Activations:
    """Probabilities and log-probabilities of the foreground channels, float32 or float64.

    ``p``, ``log_p``, ``log_not_p``: (B, K, *S) (``log_not_p`` None when not asked for).
    ``log_p_all``: (B, C + 1, *S) in softmax mode (for the multi-class cross-entropy of the global
    term), None in sigmoid mode.
    """

    p: Tensor
    log_p: Tensor
    log_not_p: Tensor | None
    log_p_all: Tensor | None


class Targets:
    """The target as the losses use it; the dense float masks are made only when asked for.

    ``labels``: (B, *S) int64 class map with ignored voxels set to 0 (softmax), None in sigmoid
    mode. ``masks``: (B, R, *S) region masks as given (sigmoid), None in softmax mode.
    ``ignored``: (B, *S) bool, or None when no voxel is ignored. ``channels``: K.
    ``y``: (B, K, *S) float 0/1 masks of the foreground channels; ``valid``: (B, 1, *S) float mask
    of the voxels that count. ``dtype``: float64 for float64 logits, else float32.
    """

    def __init__(self, labels: Tensor | None, masks: Tensor | None, ignored: Tensor | None, channels: int, dtype: torch.dtype):
        self.labels, self.masks, self.ignored, self.channels, self.dtype = labels, masks, ignored, channels, dtype

    @property
    def has_ignored(self) -> bool:
        return self.ignored is not None

    @functools.cached_property
    def y(self) -> Tensor:
        if self.masks is not None:
            return self.masks.to(self.dtype)
        classes = torch.arange(1, self.channels + 1, device=self.labels.device)
        return (self.labels.unsqueeze(1) == classes.view(1, -1, *([1] * (self.labels.ndim - 1)))).to(self.dtype)

    @functools.cached_property
    def valid(self) -> Tensor:
        reference = self.labels if self.labels is not None else self.masks[:, 0]
        if self.ignored is None:
            return torch.ones_like(reference.unsqueeze(1), dtype=self.dtype)
        return (~self.ignored).unsqueeze(1).to(self.dtype)


@dataclass(frozen=True, eq=False)
class InstanceTensors:
    """Instance maps on the loss's device, flattened for segment sums.

    ``components`` and ``cells``: (B, K, V) int32 (V = voxels per element). Segment ``j`` (global
    component index) is component ``n`` of ``(b, k)`` with ``j = offsets[b, k] + n - 1``;
    ``segment_bk[j] = b * K + k``; ``sizes[j]`` its voxel count (float, on device).
    """

    components: Tensor
    cells: Tensor | None
    counts: Tensor
    offsets: Tensor
    segment_bk: Tensor
    sizes: Tensor

    @property
    def total(self) -> int:
        return int(self.sizes.numel())


def check_inputs(
    logits: Tensor, target: Tensor, mode: Mode, schema: LabelSchema | None, ignore_index: int | None
) -> None:
    """Raise a clear error for logits or targets the losses cannot use.

    Raises
    ------
    TypeError
        ``logits`` not floating point; ``target`` floating point with non-integer values.
    ValueError
        Zero-size ``logits`` (no batch element, channel or voxel), shapes that do not match, a
        channel count that disagrees with ``schema``, too few channels,
        target values outside ``0..C`` (softmax) or not binary (sigmoid), NaN or inf in ``logits``.
    """
    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"Expected `logits` and `target` to be torch tensors, but got {type(logits).__name__} and {type(target).__name__}."
        )
    if not logits.is_floating_point():
        raise TypeError(f"Expected floating-point `logits`, but got dtype {logits.dtype}.")
    if logits.ndim not in (4, 5):
        raise ValueError(
            f"Expected `logits` of shape (B, K, Y, X) or (B, K, Z, Y, X), but got {tuple(logits.shape)}."
        )
    if logits.numel() == 0:
        raise ValueError(
            f"Expected `logits` with at least one batch element, channel and voxel, but got shape {tuple(logits.shape)}."
        )
    channels = logits.shape[1]
    if schema is not None and channels != schema.num_channels(mode):
        names = schema.foreground_names(mode)
        expected = f"{schema.num_channels(mode)} = " + ("background + " if mode == "softmax" else "") + ", ".join(names)
        raise ValueError(
            f"Expected `logits` with {expected} channels for schema {schema.name!r} in {mode} mode, "
            f"but got {channels} channels (shape {tuple(logits.shape)})."
        )
    spatial = tuple(logits.shape[2:])
    if mode == "softmax":
        if channels < 2:
            raise ValueError(f"Expected at least 2 channels (background + classes) in softmax mode, but got {channels}.")
        shape = tuple(target.shape)
        if not (shape == (logits.shape[0], *spatial) or shape == (logits.shape[0], 1, *spatial)):
            raise ValueError(
                f"Expected `target` of shape (B, *S) = {(logits.shape[0], *spatial)} or (B, 1, *S) in softmax mode "
                f"to match logits {tuple(logits.shape)}, but got {shape}."
            )
        if target.is_floating_point() and not torch.equal(target, target.round()):
            raise TypeError(f"Expected an integer class map as `target` in softmax mode, but got dtype {target.dtype}.")
        values = target.long()
        if ignore_index is not None:
            values = values.masked_fill(values == ignore_index, 0)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > channels - 1:
            bad = torch.unique(values[(values < 0) | (values > channels - 1)]).tolist()
            raise ValueError(
                f"Expected `target` labels in 0..{channels - 1} for {channels} channels"
                + (f" (or ignore_index={ignore_index})" if ignore_index is not None else "")
                + f", but got values {bad}."
            )
    else:
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(
                f"Expected `target` region masks of the same shape as `logits` {tuple(logits.shape)} in sigmoid mode, "
                f"but got {tuple(target.shape)}."
            )
        if target.dtype != torch.bool:
            low, high = target.min(), target.max()
            if low < 0 or high > 1 or not torch.equal(target, target.round()):
                bad = torch.unique(target[(target != 0) & (target != 1)]).tolist()
                raise ValueError(f"Expected binary region masks (0/1) as `target` in sigmoid mode, but got values {bad[:10]}.")
    if not torch.isfinite(logits.sum()) and not torch.isfinite(logits).all():  # a sum is ~10× cheaper
        raise ValueError(
            f"`logits` hold {int((~torch.isfinite(logits)).sum())} NaN or infinite values (shape {tuple(logits.shape)})."
        )


def activations(logits: Tensor, mode: Mode, one_vs_rest: bool = True) -> Activations:
    """Probabilities and log-probabilities, in float32 at least.

    Parameters
    ----------
    logits : Tensor, shape (B, K_out, *S)
    mode : {"softmax", "sigmoid"}
    one_vs_rest : bool
        Also compute ``log(1 - p_k)`` (needed by binary cross-entropies); otherwise
        ``log_not_p`` is None in softmax mode.

    Notes
    -----
    In softmax mode ``log(1 - p_k)`` is ``log1p(-p_k)`` for every channel but the voxel's most
    probable one (there ``p_k ≤ 1/2``, so this is accurate), and for the most probable channel the
    log of the sum of the *other* channels' probabilities — accurate for saturated logits too,
    where ``1 - p`` rounds to 0 and ``log_softmax`` of the top channel to 0.
    """
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if mode == "sigmoid":
        log_p = torch.nn.functional.logsigmoid(x)
        return Activations(torch.sigmoid(x), log_p, log_p - x, None)
    log_p_all = torch.log_softmax(x, dim=1)
    p_all = torch.softmax(x, dim=1)
    log_not_p = _LogOneMinusSoftmax.apply(x, p_all.detach())[:, 1:] if one_vs_rest else None
    return Activations(p_all[:, 1:], log_p_all[:, 1:], log_not_p, log_p_all)


class _LogOneMinusSoftmax(torch.autograd.Function):
    """``log(1 - softmax(x)_k)`` for every channel, with an analytic backward.

    Forward: ``log1p(-p_k)`` off the voxel's top channel (``p_k ≤ 1/2`` there), and the log of the
    other channels' summed probabilities on it (no cancellation; clamped at the smallest normal
    number, reached only when the top logit leads by more than ~87 in float32).

    Backward, with ``l_k = log(1 - p_k)`` and upstream ``g``: ``∂l_k/∂x_j = [j≠k] p_j / (1 - p_k) - p_j``,
    so ``grad_j = p_j (T - g_j e_j - G) + [j≠top] g_top p_j exp(-l_top)`` where
    ``e_k = 1 / (1 - p_k)`` off the top channel (≤ 2, since ``p_k ≤ 1/2`` there) and 0 on it,
    ``T = Σ_k g_k e_k``, ``G = Σ_k g_k``; ``exp(-l_top)`` uses the accurate ``l_top``, so every
    factor stays bounded for saturated logits too.
    """

    @staticmethod
    def forward(ctx, x: Tensor, p: Tensor) -> Tensor:
        top = x.max(dim=1, keepdim=True).indices
        others = p.scatter(1, top, 0.0)
        rest = torch.log(others.sum(dim=1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny))
        out = torch.log1p(-others).scatter_(1, top, rest)
        ctx.save_for_backward(p, out, top)
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
        p, out, top = ctx.saved_tensors
        ge = g / (1.0 - p.scatter(1, top, 0.0))  # g_k e_k, e_k = 1 / (1 - p_k) ≤ 2 off the top channel
        ge.scatter_(1, top, 0.0)
        grad = p * (ge.sum(dim=1, keepdim=True) - g.sum(dim=1, keepdim=True) - ge)
        top_term = p * (g.gather(1, top) * torch.exp(-out.gather(1, top)))  # g_top p_j / (1 - p_top)
        grad += top_term.scatter_(1, top, 0.0)
        return grad, None


def targets(target: Tensor, mode: Mode, logits: Tensor, ignore_index: int | None) -> Targets:
    """The :class:`Targets` of a checked target."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    if mode == "sigmoid":
        return Targets(None, target, None, logits.shape[1], dtype)
    labels = target.long()
    if labels.ndim == logits.ndim:  # (B, 1, *S)
        labels = labels[:, 0]
    ignored = None
    if ignore_index is not None:
        ignored = labels == ignore_index
        if ignored.any():
            labels = labels.masked_fill(ignored, 0)
        else:
            ignored = None
    return Targets(labels, None, ignored, logits.shape[1] - 1, dtype)


def instance_tensors(maps: InstanceMaps, device: torch.device, use_cells: bool) -> InstanceTensors:
    """Move instance maps to ``device`` and index their components as global segments."""
    batch, channels = maps.counts.shape
    counts = torch.as_tensor(maps.counts, dtype=torch.int64)
    flat_counts = counts.reshape(-1)
    offsets = (torch.cumsum(flat_counts, 0) - flat_counts).reshape(batch, channels)
    segment_bk = torch.repeat_interleave(torch.arange(batch * channels), flat_counts)
    sizes = [s for per_b in maps.sizes for s in per_b]
    sizes_np = np.concatenate(sizes).astype(np.float64) if sizes else np.zeros(0)
    components = torch.from_numpy(maps.components).reshape(batch, channels, -1).to(device=device, dtype=torch.int32)
    cells = None
    if use_cells:
        if maps.cells is None:
            raise ValueError("The cc losses need Voronoi cells: pass instance maps computed with voronoi=True.")
        cells = torch.from_numpy(maps.cells).reshape(batch, channels, -1).to(device=device, dtype=torch.int32)
    return InstanceTensors(
        components=components,
        cells=cells,
        counts=counts.to(device),
        offsets=offsets.to(device),
        segment_bk=segment_bk.to(device),
        sizes=torch.from_numpy(sizes_np).to(device),
    )


def resolve_instances(
    instances: InstanceMaps | None,
    logits: Tensor,
    target: Tensor,
    mode: Mode,
    *,
    connectivity: int | None,
    spacing: tuple[float, ...] | None,
    ignore_index: int | None,
    use_cells: bool,
) -> InstanceTensors:
    """Instance tensors of ``target`` on the logits' device.

    Precomputed ``instances`` (from the data loader) are checked against the logits; without them
    the maps are computed on the fly (numpy, CPU: the slow path outside training), with Voronoi
    cells only when ``use_cells``.
    """
    if instances is None:
        array = target.detach().cpu().numpy()
        if mode == "softmax":
            instances = instance_maps(
                array, "softmax", connectivity, spacing, use_cells,
                num_classes=logits.shape[1] - 1, ignore_index=ignore_index,
            )
        else:
            instances = instance_maps(array, "sigmoid", connectivity, spacing, use_cells)
    else:
        _check_instance_maps(instances, logits, mode)
    return instance_tensors(instances, logits.device, use_cells=use_cells)


def _check_instance_maps(maps: InstanceMaps, logits: Tensor, mode: Mode) -> None:
    """Raise if precomputed instance maps do not belong to these logits."""
    channels = logits.shape[1] - (1 if mode == "softmax" else 0)
    expected = (logits.shape[0], channels, *logits.shape[2:])
    if tuple(maps.components.shape) != expected:
        raise ValueError(
            f"Expected `instances` for {channels} foreground channels with components of shape {expected}, "
            f"but got {tuple(maps.components.shape)}."
        )
    if maps.mode != mode:
        raise ValueError(f"`instances` were computed in {maps.mode!r} mode but the loss runs in {mode!r} mode.")
