"""Instance maps: :class:`InstanceMaps` and the functions that compute, rebuild, stack and cache them.

The implementation behind :mod:`workbench.instances`, which re-exports every public name here and
documents the definitions (components, Voronoi cells, maps per training patch). Labelling is cc3d's;
the Voronoi cells and the per-component sizes and boxes come from the numba kernels of
:mod:`workbench.instances._voronoi`; connectivity, spacing and mode are checked by
:mod:`workbench._validate`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cc3d
import numpy as np
import pandas as pd

from workbench._io import atomic_write
from workbench._validate import check_choice, check_connectivity, check_spacing
from workbench.instances._voronoi import nearest_seed_labels, segment_sizes_and_boxes

__all__ = ["InstanceMaps", "cached_instance_maps", "concat_instance_maps", "instance_maps", "instance_maps_from_ids"]

Mode = Literal["softmax", "sigmoid"]

_MODES = ("softmax", "sigmoid")
_CACHE_FORMAT = 1


@dataclass(frozen=True, eq=False)
class InstanceMaps:
    """Connected components and Voronoi cells of every (batch element, foreground channel).

    Attributes
    ----------
    components : ndarray of int32, shape (B, K, *S)
        Component id ``1..N[b, k]`` of each voxel of channel ``k``; 0 outside the channel.
    cells : ndarray of int32, shape (B, K, *S), or None
        Voronoi cell id ``1..N[b, k]`` of each voxel; all 0 where ``N[b, k] == 0``. ``None``
        when computed with ``voronoi=False``.
    counts : ndarray of int64, shape (B, K)
        Number of components ``N[b, k]``.
    sizes : tuple of tuple of ndarray of int64
        ``sizes[b][k][n - 1]`` is the voxel count of component ``n``.
    bboxes : tuple of tuple of ndarray of int64
        ``bboxes[b][k][n - 1]`` has shape (2, D): first voxel and one past the last, per axis.
    spacing : tuple of float
        Voxel size in mm per spatial axis.
    connectivity : int
    mode : {"softmax", "sigmoid"}
    """

    components: np.ndarray
    cells: np.ndarray | None
    counts: np.ndarray
    sizes: tuple[tuple[np.ndarray, ...], ...]
    bboxes: tuple[tuple[np.ndarray, ...], ...]
    spacing: tuple[float, ...]
    connectivity: int
    mode: Mode

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm³ (mm² in 2D)."""
        return float(np.prod(self.spacing))

    def volumes_mm3(self, b: int, k: int) -> np.ndarray:
        """Component volumes of ``(b, k)`` in mm³, shape (N,) float64."""
        return self.sizes[b][k] * self.voxel_volume

    def table(self, channel_names: tuple[str, ...] | None = None) -> pd.DataFrame:
        """One row per component: batch, channel, id, voxels, volume_mm3, bbox_start, bbox_stop."""
        rows = []
        for b, per_channel in enumerate(self.sizes):
            for k, sizes in enumerate(per_channel):
                for n, size in enumerate(sizes, start=1):
                    box = self.bboxes[b][k][n - 1]
                    rows.append(
                        {
                            "batch": b,
                            "channel": channel_names[k] if channel_names else k,
                            "id": n,
                            "voxels": int(size),
                            "volume_mm3": float(size) * self.voxel_volume,
                            "bbox_start": tuple(int(v) for v in box[0]),
                            "bbox_stop": tuple(int(v) for v in box[1]),
                        }
                    )
        columns = ["batch", "channel", "id", "voxels", "volume_mm3", "bbox_start", "bbox_stop"]
        return pd.DataFrame(rows, columns=columns)


def instance_maps(
    target: np.ndarray,
    mode: Mode = "softmax",
    connectivity: int | None = None,
    spacing: tuple[float, ...] | None = None,
    voronoi: bool = True,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
) -> InstanceMaps:
    """Connected components, sizes, bounding boxes and Voronoi cells of a batch of targets.

    Parameters
    ----------
    target : ndarray
        softmax mode: class map of int, shape (B, *S) or (B, 1, *S), values ``0..C``
        (0 = background). sigmoid mode: region masks of bool or 0/1, shape (B, R, *S).
        ``*S`` is 2D (Y, X) or 3D (Z, Y, X).
    mode : {"softmax", "sigmoid"}
        Channels are the foreground classes ``1..C`` (softmax) or the ``R`` regions (sigmoid).
    connectivity : int, optional
        6, 18 or 26 in 3D; 4 or 8 in 2D. Default: 26 in 3D, 8 in 2D (full connectivity).
    spacing : tuple of float, optional
        Voxel size in mm per spatial axis; default 1.
    voronoi : bool
        Compute Voronoi cells (the costly part); ``False`` leaves ``cells`` as None.
    num_classes : int, optional
        softmax mode: number of foreground classes C. Default: the largest value present,
        so pass it whenever a batch may lack the highest class (e.g. training patches).
    ignore_index : int, optional
        softmax mode: voxels with this value belong to no class (they still get a cell).

    Returns
    -------
    InstanceMaps

    Raises
    ------
    ValueError
        On a bad shape, dtype, mode, connectivity, spacing, or values outside ``0..C``.
    """
    masks = _channel_masks(np.asarray(target), mode, num_classes, ignore_index)
    ndim = masks.ndim - 2
    connectivity = check_connectivity(connectivity, ndim)
    spacing = check_spacing(spacing, ndim)
    components = np.zeros(masks.shape, dtype=np.int32)
    cells = np.zeros(masks.shape, dtype=np.int32) if voronoi else None
    counts = np.zeros(masks.shape[:2], dtype=np.int64)
    sizes: list[tuple[np.ndarray, ...]] = []
    bboxes: list[tuple[np.ndarray, ...]] = []
    for b in range(masks.shape[0]):
        channels = [
            _label_channel(masks[b, k], connectivity, spacing, components[b, k], None if cells is None else cells[b, k])
            for k in range(masks.shape[1])
        ]
        counts[b] = [n for n, _, _ in channels]
        sizes.append(tuple(size for _, size, _ in channels))
        bboxes.append(tuple(box for _, _, box in channels))
    return InstanceMaps(
        components=components,
        cells=cells,
        counts=counts,
        sizes=tuple(sizes),
        bboxes=tuple(bboxes),
        spacing=spacing,
        connectivity=connectivity,
        mode=mode,
    )


def _label_channel(
    mask: np.ndarray,
    connectivity: int,
    spacing: tuple[float, ...],
    components: np.ndarray,
    cells: np.ndarray | None,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Components of one binary mask, and their Voronoi cells, written in place.

    Parameters
    ----------
    mask : ndarray of bool, shape (*S)
    connectivity : int
        Checked connectivity for ``mask.ndim``.
    spacing : tuple of float
        Voxel size in mm per axis.
    components : ndarray of int32, shape (*S), C-contiguous
        Receives the component ids ``1..N`` (0 outside the mask).
    cells : ndarray of int32, shape (*S), C-contiguous, or None
        Receives the Voronoi cell ids unless None: all 1 when ``N == 1``, left as they are (0)
        when ``N == 0``.

    Returns
    -------
    n : int
        Number of components ``N``.
    sizes : ndarray of int64, shape (N,)
    boxes : ndarray of int64, shape (N, 2, D)
        As :attr:`InstanceMaps.bboxes`.
    """
    # A uint8 view, not bool: cc3d 4.1.1's bool fast path mislabels some 2D 8-connected
    # images and fails on some 3D ones (tests/instances pins this against scipy).
    components[...], n = cc3d.connected_components(
        mask.view(np.uint8), connectivity=connectivity, return_N=True, out_dtype=np.uint32
    )
    sizes, boxes = segment_sizes_and_boxes(components, n)
    if cells is not None and n == 1:
        cells[...] = 1
    elif cells is not None and n > 1:
        nearest_seed_labels(components, spacing, out=cells)
    return int(n), sizes, boxes


def instance_maps_from_ids(
    components: np.ndarray,
    cells: np.ndarray | None,
    *,
    mode: Mode,
    connectivity: int,
    spacing: tuple[float, ...],
) -> InstanceMaps:
    """Rebuild :class:`InstanceMaps` from id arrays that :func:`instance_maps` computed.

    For maps that travelled through a pipeline that carries only fixed-shape arrays (nnU-Net's
    data loader): counts, sizes and bounding boxes are recounted from the ids in one pass per
    (b, k), without labelling anything again.

    Parameters
    ----------
    components : ndarray of int, shape (B, K, *S)
        Component ids ``1..N[b, k]`` (every id present), 0 elsewhere.
    cells : ndarray of int, shape (B, K, *S), or None
        Voronoi cell ids as :attr:`InstanceMaps.cells`.
    mode, connectivity, spacing
        As the maps were computed with.

    Raises
    ------
    ValueError
        Shapes that differ, negative ids, or ids that skip a number (not a labelling).

    Examples
    --------
    >>> maps = instance_maps(np.array([[[1, 0, 1, 1]]]), connectivity=8)
    >>> again = instance_maps_from_ids(maps.components, maps.cells, mode="softmax", connectivity=8, spacing=(1.0, 1.0))
    >>> again.counts.tolist(), [s.tolist() for s in again.sizes[0]]
    ([[2]], [[1, 2]])
    """
    components = np.asarray(components)
    if components.ndim not in (4, 5) or not np.issubdtype(components.dtype, np.integer):
        raise ValueError(
            f"Expected integer `components` of shape (B, K, *S) with 2 or 3 spatial axes, "
            f"but got dtype {components.dtype} and shape {components.shape}."
        )
    if cells is not None and np.shape(cells) != components.shape:
        raise ValueError(f"Expected `cells` of shape {components.shape} like `components`, but got {np.shape(cells)}.")
    ndim = components.ndim - 2
    connectivity = check_connectivity(connectivity, ndim)
    spacing = check_spacing(spacing, ndim)
    components = components.astype(np.int32, copy=False)
    batch, channels = components.shape[:2]
    counts = components.reshape(batch, channels, -1).max(axis=2, initial=0).astype(np.int64)
    if components.min(initial=0) < 0:
        raise ValueError("Expected component ids ≥ 0, but `components` holds negative values.")
    sizes, bboxes = [], []
    for b in range(batch):
        pairs = [segment_sizes_and_boxes(components[b, k], int(counts[b, k])) for k in range(channels)]
        gaps = [k for k, (size, _) in enumerate(pairs) if np.any(size == 0)]
        if gaps:
            raise ValueError(f"Component ids of batch element {b}, channels {gaps} skip numbers: not a labelling 1..N.")
        sizes.append(tuple(size for size, _ in pairs))
        bboxes.append(tuple(box for _, box in pairs))
    return InstanceMaps(
        components=components,
        cells=None if cells is None else np.asarray(cells).astype(np.int32, copy=False),
        counts=counts,
        sizes=tuple(sizes),
        bboxes=tuple(bboxes),
        spacing=spacing,
        connectivity=connectivity,
        mode=mode,
    )


def concat_instance_maps(maps: Sequence[InstanceMaps]) -> InstanceMaps:
    """Stack instance maps along the batch axis, e.g. the per-patch maps of a training batch.

    Parameters
    ----------
    maps : sequence of InstanceMaps
        Non-empty; all with the same channel count K and spatial shape, ``mode``,
        ``connectivity`` and ``spacing`` (compared with a relative tolerance of 1e-6), and
        either all with Voronoi cells or all without.

    Returns
    -------
    InstanceMaps
        ``components`` (and ``cells``) of shape (sum of B, K, *S), ``counts``, ``sizes`` and
        ``bboxes`` concatenated in order; ``spacing`` of the first.

    Raises
    ------
    TypeError
        If ``maps`` holds something that is not an :class:`InstanceMaps`.
    ValueError
        If ``maps`` is empty or the maps disagree in any of the fields above.

    Examples
    --------
    >>> a = instance_maps(np.array([[[0, 1, 0, 1]]]), connectivity=8)     # (B, Y, X) = (1, 1, 4)
    >>> b = instance_maps(np.array([[[1, 1, 0, 0]]]), connectivity=8)
    >>> concat_instance_maps([a, b]).counts.tolist()
    [[2], [1]]
    """
    maps = list(maps)
    if not maps:
        raise ValueError("Expected `maps` to hold at least one InstanceMaps, but got an empty sequence.")
    for i, item in enumerate(maps):
        if not isinstance(item, InstanceMaps):
            raise TypeError(f"Expected `maps` to hold InstanceMaps, but item {i} is {type(item).__name__}.")
    first = maps[0]
    for i, item in enumerate(maps[1:], start=1):
        if item.components.shape[1:] != first.components.shape[1:]:
            raise ValueError(
                "Expected every InstanceMaps to have the same (K, *S), but item 0 has "
                f"{tuple(first.components.shape[1:])} and item {i} has {tuple(item.components.shape[1:])}."
            )
        for name in ("mode", "connectivity"):
            if getattr(item, name) != getattr(first, name):
                raise ValueError(
                    f"Expected every InstanceMaps to have the same `{name}`, but item 0 has "
                    f"{getattr(first, name)!r} and item {i} has {getattr(item, name)!r}."
                )
        if len(item.spacing) != len(first.spacing) or not np.allclose(item.spacing, first.spacing, rtol=1e-6, atol=0):
            raise ValueError(
                f"Expected every InstanceMaps to have the same `spacing`, but item 0 has {first.spacing} "
                f"and item {i} has {item.spacing}."
            )
        if (item.cells is None) != (first.cells is None):
            raise ValueError(
                "Expected Voronoi cells in all InstanceMaps or in none, but item 0 "
                f"{'lacks' if first.cells is None else 'has'} them and item {i} "
                f"{'lacks' if item.cells is None else 'has'} them."
            )
    return InstanceMaps(
        components=np.concatenate([m.components for m in maps]),
        cells=None if first.cells is None else np.concatenate([m.cells for m in maps]),
        counts=np.concatenate([m.counts for m in maps]),
        sizes=tuple(s for m in maps for s in m.sizes),
        bboxes=tuple(s for m in maps for s in m.bboxes),
        spacing=first.spacing,
        connectivity=first.connectivity,
        mode=first.mode,
    )


def cached_instance_maps(
    target: np.ndarray,
    cache_dir: str | Path,
    mode: Mode = "softmax",
    connectivity: int | None = None,
    spacing: tuple[float, ...] | None = None,
    voronoi: bool = True,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
) -> InstanceMaps:
    """:func:`instance_maps`, memoised on disk.

    The key is a SHA-256 of the target's bytes, shape and dtype and of every option, so a
    changed label map or option never hits a stale entry. Entries are ``.npz`` files written
    atomically and read without pickle.

    Warns
    -----
    UserWarning
        When an entry cannot be read (truncated, empty, not an ``.npz``, arrays that do not fit
        each other or the target): the message names the file; the maps are recomputed and the
        entry is rewritten, so a damaged entry is never read twice.
    """
    target = np.asarray(target)
    options = {
        "format": _CACHE_FORMAT,
        "mode": mode,
        "connectivity": connectivity,
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "voronoi": voronoi,
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "shape": list(target.shape),
        "dtype": target.dtype.str,
    }
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(target).tobytes())
    path = Path(cache_dir) / f"instances-{digest.hexdigest()[:32]}.npz"
    if path.exists():
        cached = _read_entry(path, target, voronoi)
        if cached is not None:
            return cached
    maps = instance_maps(
        target, mode, connectivity, spacing, voronoi, num_classes=num_classes, ignore_index=ignore_index
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_maps(maps, path)
    return maps


def _channel_masks(target: np.ndarray, mode: str, num_classes: int | None, ignore_index: int | None) -> np.ndarray:
    """Binary (B, K, *S) masks of the foreground channels."""
    check_choice("mode", mode, _MODES)
    if target.dtype == np.bool_:
        values_ok = True
    elif np.issubdtype(target.dtype, np.integer):
        values_ok = True
    elif np.issubdtype(target.dtype, np.floating):
        values_ok = bool(np.all(np.mod(target, 1) == 0))
    else:
        values_ok = False
    if not values_ok:
        raise ValueError(f"Expected `target` to hold integer labels, but got dtype {target.dtype} with non-integer values.")

    if mode == "sigmoid":
        if target.ndim not in (4, 5):
            raise ValueError(
                f"Expected `target` of shape (B, R, Y, X) or (B, R, Z, Y, X) in sigmoid mode, but got {target.shape}."
            )
        if target.dtype != np.bool_:
            bad = _values_outside(target, 0, 1)
            if bad:
                raise ValueError(f"Expected binary region masks (0/1) in sigmoid mode, but got values {bad}.")
        return target.astype(bool, copy=False)

    if target.ndim in (4, 5) and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim not in (3, 4):
        raise ValueError(
            f"Expected `target` of shape (B, *S) or (B, 1, *S) with 2D or 3D S in softmax mode, but got {target.shape}."
        )
    labels = target.astype(np.int64, copy=False)
    if ignore_index is not None:
        labels = np.where(labels == ignore_index, 0, labels)
    if num_classes is None:
        num_classes = max(int(labels.max()), 0) if labels.size else 0
    elif not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
        raise ValueError(f"Expected `num_classes` to be a non-negative integer, but got {num_classes!r}.")
    bad = _values_outside(labels, 0, num_classes)
    if bad:
        raise ValueError(
            f"Expected class labels in 0..{num_classes} (num_classes={num_classes}), but got values {bad}"
            + (f" (ignore_index={ignore_index})." if ignore_index is not None else ".")
        )
    classes = np.arange(1, num_classes + 1).reshape((1, -1) + (1,) * (labels.ndim - 1))
    return labels[:, None] == classes


def _values_outside(values: np.ndarray, low: int, high: int) -> list[int]:
    """The distinct values outside ``[low, high]`` (sorted); cheap when there are none."""
    if values.size == 0 or (values.min() >= low and values.max() <= high):
        return []
    return np.unique(values[(values < low) | (values > high)]).tolist()


def _write_maps(maps: InstanceMaps, path: Path) -> None:
    flat_sizes = [s for per_b in maps.sizes for s in per_b]
    flat_boxes = [s for per_b in maps.bboxes for s in per_b]
    ndim = maps.components.ndim - 2
    arrays = {
        "components": maps.components,
        "counts": maps.counts,
        "sizes": np.concatenate(flat_sizes) if flat_sizes else np.zeros(0, np.int64),
        "bboxes": np.concatenate(flat_boxes) if flat_boxes else np.zeros((0, 2, ndim), np.int64),
        "spacing": np.asarray(maps.spacing, dtype=np.float64),
        "connectivity": np.asarray(maps.connectivity),
        "mode": np.asarray(maps.mode),
    }
    if maps.cells is not None:
        arrays["cells"] = maps.cells
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _read_entry(path: Path, target: np.ndarray, voronoi: bool) -> InstanceMaps | None:
    """The maps of a cache entry, or None (with a warning naming the file) when it is damaged."""
    try:
        maps = _read_maps(path)
    except (EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        reason = f"not a readable .npz of instance maps: {type(error).__name__}"
    else:
        spatial = maps.components.shape[2:]
        fits = maps.components.shape[0] == target.shape[0] and target.shape[target.ndim - len(spatial):] == spatial
        if fits and (maps.cells is not None) == bool(voronoi):
            return maps
        reason = f"maps of shape {maps.components.shape} do not fit the target of shape {target.shape}"
    warnings.warn(f"Instance-map cache entry {path} is damaged ({reason}); recomputing it.", stacklevel=3)
    return None


def _read_maps(path: Path) -> InstanceMaps:
    """The maps of an entry :func:`_write_maps` wrote; ValueError when its arrays do not fit each other."""
    with open(path, "rb") as handle:  # np.load leaves its own handle open when the archive is damaged
        archive = np.load(handle, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with archive:
            data = {name: archive[name] for name in archive.files}
    counts, flat_sizes, flat_boxes, components = data["counts"], data["sizes"], data["bboxes"], data["components"]
    if counts.shape != components.shape[:2] or len(flat_sizes) != counts.sum() or len(flat_boxes) != counts.sum():
        raise ValueError(
            f"component counts {counts.shape}, {len(flat_sizes)} sizes and {len(flat_boxes)} boxes "
            f"do not fit components of shape {components.shape}"
        )
    offsets = np.concatenate([[0], np.cumsum(counts.ravel())])
    sizes, bboxes = [], []
    for b in range(counts.shape[0]):
        start = b * counts.shape[1]
        sizes.append(tuple(flat_sizes[offsets[i] : offsets[i + 1]] for i in range(start, start + counts.shape[1])))
        bboxes.append(tuple(flat_boxes[offsets[i] : offsets[i + 1]] for i in range(start, start + counts.shape[1])))
    return InstanceMaps(
        components=components,
        cells=data.get("cells"),
        counts=counts,
        sizes=tuple(sizes),
        bboxes=tuple(bboxes),
        spacing=tuple(float(s) for s in data["spacing"]),
        connectivity=int(data["connectivity"]),
        mode=str(data["mode"]),
    )
