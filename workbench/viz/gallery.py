"""Small inline image tiles of single lesions for the sweep report: PNG bytes and ``<img>`` tags.

A tile is the slice of an image through a lesion's centroid along the last array axis (axial for
RAS-oriented volumes; the lesion table's ``centroid_x``), cropped to ``crop`` voxels around the
centroid, grey levels from the 1st–99th percentile of the crop, enlarged ``scale`` times, with the
reference outline in green and the prediction outline in magenta.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np
import pandas as pd

__all__ = ["PRED_COLOUR", "REF_COLOUR", "centre_of", "lesion_tile", "pick_lesions", "png_bytes", "tile_html"]

REF_COLOUR = (0, 220, 0)
"""Reference outline: green."""
PRED_COLOUR = (255, 0, 255)
"""Prediction outline: magenta."""


def lesion_tile(
    image: np.ndarray,
    ref: np.ndarray,
    pred: np.ndarray,
    centre: tuple[float, float, float],
    *,
    crop: int = 32,
    scale: int = 3,
) -> np.ndarray:
    """An RGB tile (uint8, ``(crop · scale, crop · scale, 3)``) of one lesion.

    Parameters
    ----------
    image : ndarray, (X, Y, Z)
        One image channel.
    ref, pred : ndarray of bool, (X, Y, Z)
        The region's reference and predicted masks.
    centre : tuple of float
        Voxel coordinates along axes 0, 1, 2 (the lesion table's ``centroid_z, centroid_y, centroid_x``).
    crop, scale : int
        Crop size in voxels (zero-padded at the volume's border) and the enlargement.

    Returns
    -------
    ndarray of uint8
        Rows run along axis 1 (decreasing, so anterior is up for RAS), columns along axis 0.
    """
    shape = image.shape
    k = int(np.clip(round(centre[2]), 0, shape[2] - 1))
    starts = [int(round(c)) - crop // 2 for c in centre[:2]]
    planes = [_crop(volume[:, :, k], starts, crop) for volume in (image, ref, pred)]
    grey, ref2, pred2 = (np.flipud(plane.T) for plane in planes)
    finite = grey[np.isfinite(grey)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    grey = np.clip((grey - low) / (high - low if high > low else 1.0), 0, 1)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    for mask, colour in ((ref2, REF_COLOUR), (pred2, PRED_COLOUR)):
        rgb[_outline(mask.astype(bool).repeat(scale, axis=0).repeat(scale, axis=1))] = colour
    return rgb


def _crop(plane: np.ndarray, starts: list[int], size: int) -> np.ndarray:
    """``plane[starts[0]:+size, starts[1]:+size]``, zero where it leaves the plane."""
    out = np.zeros((size, size), dtype=np.float32 if plane.dtype.kind == "f" else plane.dtype)
    src = [slice(max(s, 0), min(s + size, n)) for s, n in zip(starts, plane.shape)]
    dst = [slice(sl.start - s, sl.stop - s) for sl, s in zip(src, starts)]
    if all(sl.stop > sl.start for sl in src):
        out[dst[0], dst[1]] = plane[src[0], src[1]]
    return out


def _outline(mask: np.ndarray) -> np.ndarray:
    """The mask's voxels with a 4-neighbour outside it (or on the border)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG of an RGB uint8 array (Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def tile_html(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG inline (base64) and a caption."""
    data = base64.b64encode(png).decode("ascii")
    text = html.escape(caption)
    return (f"<figure class='tile'><img src='data:image/png;base64,{data}' alt='{text}' title='{text}'>"
            f"<figcaption>{text}</figcaption></figure>")


def pick_lesions(lesions: pd.DataFrame, *, per_kind: int = 6) -> pd.DataFrame:
    """The largest missed (FN, by reference volume) and largest false-positive (FP, by predicted
    volume) lesions of a set of runs' lesion tables, ``per_kind`` of each.

    A lesion shows once however many regions and runs (seeds) list it: rows at the lowest matching
    threshold, one per (case, rounded centroid), the first region in WT, TC, ET, RC order kept.

    Parameters
    ----------
    lesions : DataFrame
        ``lesions.parquet`` rows tagged with ``run_id``.

    Returns
    -------
    DataFrame
        The picked rows, FN first, plus ``kind`` (``"missed"`` / ``"false positive"``) and ``volume``.
    """
    if not len(lesions):
        return lesions.assign(kind=[], volume=[])
    rows = lesions
    if "threshold" in rows and rows["threshold"].nunique() > 1:
        rows = rows[rows["threshold"] == rows["threshold"].min()]
    rank = {r: i for i, r in enumerate(("WT", "TC", "ET", "RC"))}
    frames = []
    for status, kind, column in (("FN", "missed", "ref_mm3"), ("FP", "false positive", "pred_mm3")):
        part = rows[rows["status"].eq(status)]
        if not len(part):
            continue
        part = part.assign(kind=kind, volume=part[column].astype(float), _rank=part["region"].map(rank).fillna(9))
        key = [part[c].round().astype("Int64").astype(str) for c in ("centroid_z", "centroid_y", "centroid_x")]
        part = part.assign(_key=part["case_id"].astype(str) + "/" + key[0] + "," + key[1] + "," + key[2])
        part = part.sort_values(["_rank"], kind="stable").drop_duplicates("_key")
        frames.append(part.sort_values("volume", ascending=False, kind="stable").head(per_kind))
    if not frames:
        return rows.iloc[:0].assign(kind=[], volume=[])
    return pd.concat(frames, ignore_index=True).drop(columns=["_rank", "_key"])


def centre_of(row: pd.Series | dict) -> tuple[float, float, float] | None:
    """The lesion's centroid (axes 0, 1, 2) or None when one is missing (2-D maps)."""
    values = tuple(float(row[c]) for c in ("centroid_z", "centroid_y", "centroid_x"))
    return None if not all(math.isfinite(v) for v in values) else values
