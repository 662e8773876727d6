"""Per-voxel inverse-size weight maps of instance maps, as the weighted losses use them (DESIGN §4a).

Part of :mod:`workbench.instances`: the weights are read off an
:class:`~workbench.instances.InstanceMaps` (component sizes, Voronoi cells). The losses never build
these maps: a weight is constant on each segment, so they scale segment sums instead. The maps are
for looking at — the audit view's weight layers and the loss explorer — and follow the same
definitions:

- :func:`global_inverse_weights` (InvWeight-global): ``|V| / ((K + 1) · |segment(v)|)``, the
  segments being every component of every channel plus the background, clipped to ``clip``;
  a voxel in components of several channels (overlapping regions) takes the smallest.
- :func:`local_inverse_weights` (InvWeight-local): the same per channel, its components and its
  background as segments.
- :func:`iwl_weights` (IWL): ``|D_n| / |C_n|`` on component ``n``, clipped to ``[1, max_weight]``,
  and 1 on the background of its domain ``D_n`` (blob: the volume without the other components;
  cc: the component's Voronoi cell).

``|V|`` and the domains count valid voxels only; invalid (ignored) voxels get weight 0.

Examples
--------
>>> import numpy as np
>>> from workbench.instances import instance_maps
>>> target = np.zeros((1, 1, 1, 10), dtype=bool); target[0, 0, 0, :2] = target[0, 0, 0, 8] = True
>>> maps = instance_maps(target, mode="sigmoid", connectivity=4)
>>> iwl_weights(maps, domain="blob")[0, 0, 0].tolist()      # 9/2 and 8/1
[4.5, 4.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 8.0, 1.0]
>>> local_inverse_weights(maps)[0, 0, 0].round(3).tolist()   # 10 / (3 · size): sizes 2, 7, 1
[1.667, 1.667, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.333, 1.0]
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from workbench._validate import check_choice, check_finite
from workbench.instances.maps import InstanceMaps

__all__ = ["global_inverse_weights", "iwl_weights", "local_inverse_weights"]


def global_inverse_weights(
    maps: InstanceMaps, valid: np.ndarray | None = None, *, clip: tuple[float, float] = (1.0, 2e5)
) -> np.ndarray:
    """InvWeight-global weight map, one per batch element.

    Parameters
    ----------
    maps : InstanceMaps
        Components of shape (B, K, *S).
    valid : ndarray of bool, shape (B, *S), optional
        Voxels that count (default all).
    clip : (float, float)
        Bounds ``(w_min, w_max)`` of the weights.

    Returns
    -------
    ndarray of float64, shape (B, *S)
    """
    valid = _check_valid(maps, valid)
    low, high = _check_clip(clip)
    weights = np.zeros(valid.shape, dtype=np.float64)
    for b in range(maps.counts.shape[0]):
        segment_size = np.full(valid.shape[1:], np.inf)
        for k in range(maps.counts.shape[1]):
            np.minimum(segment_size, _size_lookup(maps, b, k)[maps.components[b, k]], out=segment_size)
        background = np.isinf(segment_size) & valid[b]
        segment_size[background] = background.sum()
        segments = int(maps.counts[b].sum()) + 1
        w = valid[b].sum() / (segments * segment_size[valid[b]])
        weights[b][valid[b]] = np.clip(w, low, high)
    return weights


def local_inverse_weights(
    maps: InstanceMaps, valid: np.ndarray | None = None, *, clip: tuple[float, float] = (1.0, 2e5)
) -> np.ndarray:
    """InvWeight-local weight maps, one per (batch element, channel).

    Parameters and bounds as :func:`global_inverse_weights`.

    Returns
    -------
    ndarray of float64, shape (B, K, *S)
    """
    valid = _check_valid(maps, valid)
    low, high = _check_clip(clip)
    weights = np.zeros(maps.components.shape, dtype=np.float64)
    for b in range(maps.counts.shape[0]):
        volume = valid[b].sum()
        for k in range(maps.counts.shape[1]):
            segment_size = _size_lookup(maps, b, k)[maps.components[b, k]]
            background = np.isinf(segment_size) & valid[b]
            segment_size[background] = background.sum()
            w = volume / ((maps.counts[b, k] + 1) * segment_size[valid[b]])
            weights[b, k][valid[b]] = np.clip(w, low, high)
    return weights


def iwl_weights(
    maps: InstanceMaps,
    valid: np.ndarray | None = None,
    *,
    domain: Literal["blob", "cc"] = "blob",
    max_weight: float = 100.0,
) -> np.ndarray:
    """IWL weights: each component's voxels weighted by its domain's size over its own.

    Parameters
    ----------
    maps : InstanceMaps
        Components (and, for ``domain="cc"``, Voronoi cells) of shape (B, K, *S).
    valid : ndarray of bool, shape (B, *S), optional
        Voxels that count (default all).
    domain : {"blob", "cc"}
        The component's domain: the volume without the other components (blob loss), or its
        Voronoi cell (CC loss).
    max_weight : float
        Upper bound ``w_max >= 1``.

    Returns
    -------
    ndarray of float64, shape (B, K, *S)
        ``clip(|D_n| / |C_n|, 1, max_weight)`` on component ``n``, 1 elsewhere on valid voxels, 0
        on invalid ones.
    """
    valid = _check_valid(maps, valid)
    check_choice("domain", domain, ("blob", "cc"))
    if domain == "cc" and maps.cells is None:
        raise ValueError("IWL weights of the cc domain need Voronoi cells: compute the maps with voronoi=True.")
    max_weight = check_finite("max_weight", max_weight, minimum=1.0)
    weights = np.zeros(maps.components.shape, dtype=np.float64)
    for b in range(maps.counts.shape[0]):
        for k in range(maps.counts.shape[1]):
            count = int(maps.counts[b, k])
            sizes = maps.sizes[b][k].astype(np.float64)
            if domain == "blob":
                domain_sizes = valid[b].sum() - (sizes.sum() - sizes)
            else:
                domain_sizes = np.bincount(maps.cells[b, k][valid[b]], minlength=count + 1)[1:].astype(np.float64)
            per_component = np.concatenate([[1.0], np.clip(domain_sizes / np.maximum(sizes, 1), 1.0, max_weight)])
            weights[b, k] = np.where(valid[b], per_component[maps.components[b, k]], 0.0)
    return weights


def _size_lookup(maps: InstanceMaps, b: int, k: int) -> np.ndarray:
    """Component size by id, ``inf`` at id 0 (no component), shape (N + 1,) float64."""
    return np.concatenate([[np.inf], maps.sizes[b][k].astype(np.float64)])


def _check_valid(maps: InstanceMaps, valid: np.ndarray | None) -> np.ndarray:
    shape = (maps.components.shape[0], *maps.components.shape[2:])
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid)
    if valid.dtype != bool or valid.shape != shape:
        raise ValueError(f"Expected valid to be a bool array of shape {shape}, but got {valid.dtype} {valid.shape}.")
    return valid


def _check_clip(clip: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in clip)
    if not (0 < low <= high < np.inf):
        raise ValueError(f"Expected clip = (w_min, w_max) with 0 < w_min <= w_max < inf, but got {clip!r}.")
    return low, high
