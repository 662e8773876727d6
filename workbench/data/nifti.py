"""NIfTI input and output (nibabel): images, label maps, headers.

Arrays keep nibabel's voxel axis order ``(i, j, k)``, the order the affine maps to world
coordinates, so a prediction saved with the affine of its image lands in the same space. Spacing
is in mm, one value per spatial axis, in the same order.

* :func:`load_image` — one file per modality -> image ``(C, *S)`` float32.
* :func:`load_label` — label map ``(*S)`` in the smallest integer dtype that holds its values.
* :func:`read_header` — shape, affine and spacing without reading voxel data.
* :func:`save_nifti` — atomic write of an image or a label map.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> label = np.zeros((4, 4, 2), dtype=np.int64)
>>> label[1:3, 1:3, 1] = 3
>>> save_nifti(folder / "seg.nii.gz", label, spacing=(0.9, 0.9, 2.5))
>>> loaded, affine, spacing = load_label(folder / "seg.nii.gz")
>>> loaded.dtype, spacing, int(loaded.sum())
(dtype('uint8'), (0.9, 0.9, 2.5), 12)
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError, SpatialImage

from workbench._io import atomic_write

__all__ = [
    "AFFINE_ATOL",
    "SPACING_RTOL",
    "NiftiHeader",
    "grid_mismatch",
    "load_image",
    "load_label",
    "read_header",
    "save_nifti",
]

AFFINE_ATOL = 1e-3
"""Largest absolute difference (mm) between two affines that still counts as the same grid."""

SPACING_RTOL = 1e-3
"""Largest relative difference between a header's voxel sizes (pixdim) and its affine's that still counts as agreeing."""

_LABEL_DTYPES = (np.uint8, np.int16, np.int32)
_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)
_SIGNED = (np.int8, np.int16, np.int32, np.int64)


@dataclass(frozen=True, eq=False)
class NiftiHeader:
    """What a NIfTI header says about the voxel grid of one file.

    Attributes
    ----------
    path : Path
    shape : tuple of int
        Spatial shape ``S`` (2 or 3 axes; trailing singleton axes of the file are dropped).
    affine : ndarray of float64, shape (4, 4)
        Voxel index -> world (mm).
    spacing : tuple of float
        Voxel size in mm per spatial axis, from the header zooms (pixdim), which agree with the
        affine's voxel sizes (column norms) within :data:`SPACING_RTOL`.
    """

    path: Path
    shape: tuple[int, ...]
    affine: np.ndarray
    spacing: tuple[float, ...]


def read_header(path: str | os.PathLike[str]) -> NiftiHeader:
    """Read the grid of a NIfTI file from its header only (no voxel data).

    Parameters
    ----------
    path : str or PathLike
        A ``.nii`` or ``.nii.gz`` file holding one 2D or 3D volume.

    Returns
    -------
    header : NiftiHeader

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable NIfTI file (also: a data type nibabel cannot read, such as
        1-bit masks), holds more than one volume (4D) or no voxel at all, or has non-positive
        voxel sizes or voxel sizes (pixdim) that contradict its affine. The message names the file.

    Notes
    -----
    A header whose pixdim differs from the affine's voxel sizes by more than
    :data:`SPACING_RTOL` is an error rather than a warning: which of the two is right cannot be
    told from the file, and volumes in mm³ computed from the wrong one are off by the cube of
    the ratio.
    """
    return _open(path)[1]


def grid_mismatch(reference: NiftiHeader, other: NiftiHeader) -> str | None:
    """Describe how ``other``'s voxel grid differs from ``reference``'s, or None if it does not.

    Two grids agree when their shapes are equal and their affines differ by at most
    :data:`AFFINE_ATOL` mm in every entry.

    Parameters
    ----------
    reference, other : NiftiHeader

    Returns
    -------
    problem : str or None
        A sentence naming both files and their shapes (or affines), without a final period.
    """
    if reference.shape != other.shape:
        return f"{other.path} has shape {other.shape} but {reference.path} has shape {reference.shape}"
    difference = float(np.max(np.abs(reference.affine - other.affine)))
    if not difference <= AFFINE_ATOL:
        return (
            f"{other.path} has affine {_format_affine(other.affine)} but {reference.path} has affine "
            f"{_format_affine(reference.affine)} (largest difference {difference:.3g} mm > {AFFINE_ATOL} mm)"
        )
    return None


def load_image(paths: Sequence[str | os.PathLike[str]]) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Load one file per modality and stack them into a channel-first image.

    Parameters
    ----------
    paths : sequence of str or PathLike
        One NIfTI file per modality, in channel order. All must share shape and affine.

    Returns
    -------
    image : ndarray of float32, shape (C, *S)
        Intensities with the header's scaling (scl_slope / scl_inter) applied.
    affine : ndarray of float64, shape (4, 4)
        The first file's affine.
    spacing : tuple of float
        Voxel size in mm per spatial axis, from the first file's header.

    Raises
    ------
    TypeError
        If ``paths`` is a single path instead of a sequence.
    FileNotFoundError
        If a file does not exist.
    ValueError
        If ``paths`` is empty, a file is unreadable or 4D, two files disagree in shape or affine
        (both files are named), or a file holds NaN or infinite values.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(
            f"`paths` must be a sequence of files (one per modality), got the single path {str(paths)!r}; "
            "wrap it in a list."
        )
    if len(paths) == 0:
        raise ValueError("`paths` must name at least one file (one per modality), got none.")
    opened = [_open(p) for p in paths]
    reference = opened[0][1]
    for _, header in opened[1:]:
        problem = grid_mismatch(reference, header)
        if problem:
            raise ValueError(f"Modalities do not share one voxel grid: {problem}.")
    image = np.empty((len(opened), *reference.shape), dtype=np.float32)
    for channel, (img, header) in zip(image, opened):
        channel[...] = _read_voxels(img, header, dtype=np.float32)
        n_bad = int(np.count_nonzero(~np.isfinite(channel)))
        if n_bad:
            raise ValueError(f"{header.path} holds {n_bad} non-finite voxel values (NaN or inf).")
    return image, reference.affine, reference.spacing


def load_label(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Load a label map as integers.

    Label maps are often stored as floats; they are accepted when every value is integral.

    Parameters
    ----------
    path : str or PathLike
        One NIfTI file holding a 2D or 3D label map.

    Returns
    -------
    label : ndarray of int, shape (*S)
        In the smallest dtype that holds its values: unsigned (uint8, uint16, ...) when no value
        is negative, else signed (int8, int16, ...).
    affine : ndarray of float64, shape (4, 4)
    spacing : tuple of float
        Voxel size in mm per spatial axis.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable or 4D, or holds non-integral, non-finite or out-of-range values;
        the message names the file and an example bad value.
    """
    img, header = _open(path)
    data = _read_voxels(img, header, dtype=None)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(f"{header.path}: label map must hold numbers, got dtype {data.dtype}.")
        bad = np.round(data) != data  # also True at NaN
        bad |= np.isinf(data)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{header.path}: label map is stored as {data.dtype} and holds non-integer values, "
                f"e.g. {float(data[where])!r} at voxel {where}; labels must be whole numbers."
            )
    low, high = (int(data.min()), int(data.max())) if data.size else (0, 0)
    candidates = _UNSIGNED if low >= 0 else _SIGNED
    fitting = [t for t in candidates if np.iinfo(t).min <= low and high <= np.iinfo(t).max]
    if not fitting:
        raise ValueError(f"{header.path}: label values span [{low}, {high}], beyond the int64 range.")
    return data.astype(fitting[0]), header.affine, header.spacing


def save_nifti(
    path: str | os.PathLike[str],
    array: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    spacing: Sequence[float] | None = None,
) -> None:
    """Write one image or label map to a NIfTI file, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination ending in ``.nii`` or ``.nii.gz``; its folder must exist.
    array : ndarray, shape (*S)
        2D or 3D. Integer arrays are label maps, stored as the first of uint8, int16,
        int32 that holds their values, without scaling (scl_slope unset), so they load back
        exactly. Float arrays are stored as float32. To save a multi-channel image (C, *S),
        write one file per channel.
    affine : ndarray of float, shape (4, 4), optional
        Voxel index -> world (mm); pass the source image's affine so a prediction stays in its
        space. Default: ``diag(*spacing, 1)``.
    spacing : sequence of float, optional
        Voxel size in mm per axis of ``array``. With ``affine`` it is only checked against the
        affine's voxel sizes; without, it builds the affine (default 1 mm).

    Raises
    ------
    ValueError
        If ``path`` has another extension, ``array`` is not 2D/3D or holds non-finite floats or
        integers beyond int32, ``affine`` is not a finite 4×4 matrix, or ``spacing`` disagrees
        with ``affine``.
    TypeError
        If ``array`` is bool (a mask has no label value: which label it stands for is the
        caller's choice, e.g. ``mask.astype(np.uint8) * value``), or neither integer nor floating point.

    Notes
    -----
    The header's qform and sform both hold ``affine`` (code 1, scanner) and its zooms equal the
    affine's voxel sizes. NIfTI stores the sform in float32, so an affine comes back exactly
    only if its entries are float32 numbers; otherwise it is rounded to float32.
    """
    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"Expected `path` to end in '.nii' or '.nii.gz', but got {str(path)!r}.")
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"Expected `array` to be 2D or 3D (*S), but got shape {array.shape} for {path}; "
            "write one file per channel."
        )
    data = _on_disk(array, path)
    affine = _checked_affine(affine, spacing, array.ndim, path)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_write(path) as tmp:
        nib.save(img, tmp)


def _open(path: str | os.PathLike[str]) -> tuple[SpatialImage, NiftiHeader]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file {path} does not exist.")
    try:
        img = nib.load(path)
    except (ImageFileError, HeaderDataError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"Cannot read NIfTI file {path}: {exc}") from exc
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{path}: expected one 2D or 3D volume per file, got shape {tuple(img.shape)}; "
            "split 4D files into one file per modality."
        )
    if 0 in shape:
        raise ValueError(f"{path}: the volume holds no voxels (shape {shape}).")
    zooms = img.header.get_zooms()[: len(shape)]
    if not all(z > 0 for z in zooms):
        raise ValueError(f"{path}: header voxel sizes {tuple(float(z) for z in zooms)} must be positive.")
    # Zooms are float32 in the header; the shortest decimal that rounds to each gives back the
    # value that was written (0.9, not 0.8999999761581421).
    spacing = tuple(float(np.format_float_positional(np.float32(z), unique=True)) for z in zooms)
    affine = np.asarray(img.affine, dtype=np.float64)
    _check_spacing(path, spacing, affine)
    return img, NiftiHeader(path=path, shape=shape, affine=affine, spacing=spacing)


def _check_spacing(path: Path, spacing: tuple[float, ...], affine: np.ndarray) -> None:
    """Raise if the header's voxel sizes (pixdim) and the affine's (column norms) disagree."""
    from_affine = np.linalg.norm(affine[:3, : len(spacing)], axis=0)
    if not np.allclose(spacing, from_affine, rtol=SPACING_RTOL, atol=0):
        affine_sizes = tuple(round(float(v), 6) for v in from_affine)
        raise ValueError(
            f"{path}: the header's voxel sizes (pixdim) {spacing} mm contradict its affine's voxel sizes "
            f"{affine_sizes} mm, so volumes in mm³ are ambiguous; fix the header so both agree "
            "(e.g. with nibabel: img.header.set_zooms(...) or img.set_sform(...))."
        )


def _read_voxels(img: SpatialImage, header: NiftiHeader, *, dtype: type | None) -> np.ndarray:
    try:
        data = img.get_fdata(dtype=dtype) if dtype is not None else np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise ValueError(f"Cannot read the voxel data of {header.path}: {exc}") from exc
    return data.reshape(header.shape)


def _on_disk(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.bool_:
        raise TypeError(
            f"`array` for {path} is a boolean mask, not a label map; give it the label value it stands for, "
            "e.g. mask.astype(np.uint8) * value."
        )
    if np.issubdtype(array.dtype, np.integer):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for dtype in _LABEL_DTYPES:
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return array.astype(dtype)
        raise ValueError(f"`array` for {path} holds values in [{low}, {high}], beyond the int32 range.")
    if np.issubdtype(array.dtype, np.floating):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        if n_bad:
            raise ValueError(f"`array` for {path} holds {n_bad} non-finite values (NaN or inf).")
        return array.astype(np.float32)
    raise TypeError(f"Expected `array` to be integer or floating point, but got dtype {array.dtype}.")


def _checked_affine(
    affine: np.ndarray | None, spacing: Sequence[float] | None, ndim: int, path: Path
) -> np.ndarray:
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != ndim or not all(s > 0 for s in spacing):
            raise ValueError(
                f"Expected `spacing` to hold {ndim} positive voxel sizes (mm) for {path}, but got {spacing}."
            )
    if affine is None:
        sizes = (*(spacing or (1.0,) * ndim), *(1.0,) * (3 - ndim))
        return np.diag([*sizes, 1.0])
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError(f"Expected `affine` to be a finite 4x4 matrix for {path}, but got shape {affine.shape}.")
    voxel_sizes = tuple(float(v) for v in np.linalg.norm(affine[:3, :ndim], axis=0))
    if spacing is not None and not np.allclose(voxel_sizes, spacing, rtol=1e-5, atol=0):
        raise ValueError(
            f"`spacing` {spacing} for {path} disagrees with the voxel sizes {voxel_sizes} of `affine`."
        )
    return affine


def _format_affine(affine: np.ndarray) -> str:
    rows = ("[" + ", ".join(f"{v:.4g}" for v in row) + "]" for row in affine[:3])
    return "[" + ", ".join(rows) + "]"
