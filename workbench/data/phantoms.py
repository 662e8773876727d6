"""Synthetic BraTS-METS-like cases on a real anatomy, fully determined by a seed.

Real BraTS-METS data cannot be shipped, so the default cohort of the workbench is generated
here (DESIGN §3a). The anatomy is the MNI152 2009a symmetric template that nilearn's wheel
ships (T1 image and grey/white-matter probability maps, 1 mm, read from disk with nibabel; no
download). On it, each case gets

* **metastases** seeded at the grey/white-matter junction: a heavy-tailed number per case
  (most cases 1-5, a tail to 40), log-uniform volumes from a few voxels to tens of cm³, smooth
  random blob shapes, an enhancing rim (ET) around a necrotic core (NETC) for larger lesions,
  solid ET for small ones, and surrounding oedema (SNFH) that spreads along white matter;
  a fraction is placed next to an earlier lesion so that components touch or merge;
* rarely (one case in five, spread evenly over the seeds) one **resection cavity** (RC),
  fluid-filled, usually with a thin oedema rim, sometimes with an enhancing nodule
  (recurrence) on its wall;
* four **MR contrasts** (T1 native, T1 contrast-enhanced, T2, FLAIR) mixed from partial-volume
  tissue and lesion fractions, textured by the template T1, with a smooth multiplicative bias
  field per channel and Rician noise; background (outside the brain, as after skull stripping)
  is exactly 0.

Lesion boundaries are partial-volume soft: every structure is an implicit surface evaluated at
voxel centres, its fraction ramps linearly over about one voxel, and the label is the fraction
thresholded at 0.5, so the image and the label agree.

References
----------
.. [1] V. Fonov et al., "Unbiased average age-appropriate atlases for pediatric studies",
   NeuroImage 54(1), 313-327, 2011. :DOI:`10.1016/j.neuroimage.2010.07.033` (MNI152 2009a)
.. [2] A. W. Moawad et al., "The Brain Tumor Segmentation (BraTS-METS) Challenge 2023: Brain
   Metastasis Segmentation on Pre-treatment MRI", arXiv:2306.00838, 2023.
.. [3] F. Pérez-García et al., "TorchIO", Comput. Methods Programs Biomed. 208, 106236, 2021.
   :DOI:`10.1016/j.cmpb.2021.106236` (the polynomial bias field)

Examples
--------
>>> from workbench.data.phantoms import MODALITIES, make_case
>>> case = make_case(0, shape=(32, 32, 32))
>>> case.image.shape, case.image.dtype, case.label.dtype, len(case.spacing)
((4, 32, 32, 32), dtype('float32'), dtype('uint8'), 3)
>>> MODALITIES
('t1n', 't1c', 't2w', 't2f')
"""

from __future__ import annotations

import functools
import math
import os
from typing import Literal, NamedTuple

import nibabel as nib
import nilearn
import numpy as np
from scipy import ndimage

from workbench.labels import BRATS_METS_2025

__all__ = ["GENERATOR_VERSION", "KINDS", "MODALITIES", "PhantomCase", "PhantomKind", "make_case"]

GENERATOR_VERSION = 1
"""Bump whenever a seed would give different arrays, so cached cohorts are regenerated."""

MODALITIES: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")
"""Image channels, in order: T1 native, T1 contrast-enhanced, T2-weighted, T2-FLAIR."""

PhantomKind = Literal["brats_mets"]
KINDS: tuple[str, ...] = ("brats_mets",)
"""Phantom kinds :func:`make_case` can generate."""

_LABEL = {name: value for value, name in BRATS_METS_2025.labels.items()}
NETC, SNFH, ET, RC = _LABEL["NETC"], _LABEL["SNFH"], _LABEL["ET"], _LABEL["RC"]

# Tissue contrasts, rows (outside, CSF, GM, WM), columns MODALITIES. Arbitrary MR-like units.
_TISSUE_CONTRAST = np.array(
    [
        [0.0, 0.0, 0.0, 0.0],
        [180.0, 200.0, 900.0, 120.0],
        [420.0, 440.0, 480.0, 520.0],
        [600.0, 610.0, 330.0, 400.0],
    ],
    dtype=np.float32,
)
# Lesion contrasts, columns MODALITIES: they replace the tissue in their voxel fraction.
_ET_CONTRAST = np.array([440.0, 1000.0, 520.0, 620.0], dtype=np.float32)
_NETC_CONTRAST = np.array([200.0, 220.0, 760.0, 420.0], dtype=np.float32)
_CAVITY_CONTRAST = np.array([160.0, 180.0, 920.0, 140.0], dtype=np.float32)
# Oedema multiplies the underlying tissue: slightly dark on T1, bright on T2 and FLAIR.
_EDEMA_GAIN = np.array([0.82, 0.82, 1.9, 1.85], dtype=np.float32)
# How the template T1 texture carries to each channel (T2-weighted contrasts invert it).
_TEXTURE_SIGN = np.array([1.0, 1.0, -0.5, -0.5], dtype=np.float32)

_BRAIN_MARGIN_MM = 4.0
_MAX_LESIONS = 40
_LESION_COUNT_ZIPF_A = 1.6
_MIN_LESION_VOXELS = 8.0
_MAX_LESION_MM3 = 30_000.0
_MAX_EDEMA_THICKNESS_MM = 20.0
_CLUSTER_PROBABILITY = 0.25
_RC_FRACTION = 0.2
_WEYL_STEP = 0x9E3779B97F4A7C15  # round(2**64 / golden ratio): a Weyl sequence over the seeds
_RC_VOLUME_MM3 = (2_000.0, 15_000.0)
_JUNCTION_PROBABILITY = 0.3  # GM and WM fractions both above this at the junction
_PERTURBATION_TERMS = 4


class PhantomCase(NamedTuple):
    """One synthetic case.

    Attributes
    ----------
    image : ndarray of float32, shape (4, X, Y, Z)
        Channels in :data:`MODALITIES` order, values roughly in ``[0, 1200]``, 0 outside the brain.
    label : ndarray of uint8, shape (X, Y, Z)
        BraTS-METS 2025 labels: 0 background, 1 NETC, 2 SNFH, 3 ET, 4 RC.
    spacing : tuple of float
        Voxel size in mm, one per spatial axis.
    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]


class _Template(NamedTuple):
    """The MNI152 2009a template at 1 mm, cropped to the brain's bounding box plus one voxel."""

    volumes: np.ndarray  # (4, X, Y, Z) float32 in [0, 1]: brain mask, GM, WM, T1; 0 outside the brain
    origin: np.ndarray  # (3,) template voxel of volumes[:, 0, 0, 0]
    brain_lo: np.ndarray  # (3,) first template voxel of the brain bounding box
    brain_hi: np.ndarray  # (3,) last template voxel of the brain bounding box
    tissue_t1: np.ndarray  # (3,) template T1 of pure CSF, GM, WM (least squares)


class _Anatomy(NamedTuple):
    """The template resampled to one output geometry (read-only arrays of shape (*S))."""

    fractions: np.ndarray  # (4, *S) float32: outside, CSF, GM, WM; sums to 1
    texture: np.ndarray  # template T1 relative to its tissue-mixture prediction, minus 1
    brain: np.ndarray  # bool, voxel centre inside the brain mask
    depth_mm: np.ndarray  # distance to the brain surface or the field of view's edge, 0 outside
    junction: np.ndarray  # (N, 3) int, voxel indices of the grey/white-matter junction


class _Blob(NamedTuple):
    """A smooth random blob: a rotated ellipsoid whose radius is modulated by direction."""

    centre: np.ndarray  # (3,) int voxel index
    radius_mm: float  # radius of the sphere of equal volume
    axes_mm: np.ndarray  # (3,) semi-axes, product radius_mm**3
    rotation: np.ndarray  # (3, 3) orthonormal, columns are the blob's axes
    directions: np.ndarray  # (J, 3) unit vectors of the radius perturbation terms
    frequencies: np.ndarray  # (J,)
    phases: np.ndarray  # (J,)
    amplitudes: np.ndarray  # (J,)


class _Metastasis(NamedTuple):
    """One metastasis: tumour blob, necrotic core, oedema and enhancement strength."""

    blob: _Blob
    core_level: float  # normalised radius of the necrotic core, 0 for a solid lesion
    core_blob: _Blob  # same centre and size as ``blob``, its own shape
    edema_factor: float  # normalised radius of the oedema in pure white matter, 1 for none
    edema_blob: _Blob
    enhancement: float  # multiplier of the ET contrast


class _Cavity(NamedTuple):
    """A resection cavity with an optional oedema rim and enhancing nodule on its wall."""

    blob: _Blob
    edema_level: float  # normalised radius of the oedema rim, 0 for none
    nodule: _Metastasis | None  # solid enhancing recurrence straddling the wall


class _LesionMaps(NamedTuple):
    """Voxel fractions of the lesion structures of a case, (*S) float32 in [0, 1] each."""

    edema: np.ndarray
    tumour: np.ndarray  # ET and NETC together
    core: np.ndarray  # NETC, <= tumour
    cavity: np.ndarray
    enhancement: np.ndarray  # per-lesion multiplier of the ET contrast, 1 elsewhere


def make_case(
    seed: int,
    kind: PhantomKind = "brats_mets",
    shape: tuple[int, int, int] = (96, 96, 96),
    spacing: tuple[float, float, float] | None = None,
    *,
    min_lesions: int = 1,
    smallest_mm3: float | None = None,
) -> PhantomCase:
    """Generate one synthetic BraTS-METS-like case.

    Parameters
    ----------
    seed : int
        Non-negative; the only source of randomness (``np.random.default_rng(seed)``). The same
        seed, shape and spacing give bit-identical arrays.
    kind : {"brats_mets"}
        Phantom kind (see :data:`KINDS`).
    shape : tuple of 3 int
        Output grid (X, Y, Z), the template's voxel axes (left-right, posterior-anterior,
        inferior-superior).
    spacing : tuple of 3 float, optional
        Voxel size in mm. ``None`` chooses the isotropic spacing at which the brain's bounding
        box plus a 4 mm margin just fits ``shape``. Given, the field of view is
        ``shape * spacing`` mm centred on the brain, cropping or padding as needed.
    min_lesions : int
        Fewest metastases per case (≥ 1): ``min_lesions - 1`` plus a Zipf draw, capped at 40.
    smallest_mm3 : float, optional
        Smallest drawn lesion volume (mm³); default 8 voxels. Smaller lesions can vanish from the
        label at the partial-volume threshold (the image keeps them).

    Returns
    -------
    PhantomCase
        ``image`` (4, X, Y, Z) float32 in :data:`MODALITIES` order, ``label`` (X, Y, Z) uint8
        with values in {0, 1, 2, 3, 4}, ``spacing`` (3 floats, mm).

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer, ``kind`` is unknown, ``shape`` is not three
        positive integers, ``spacing`` is not three positive finite numbers, ``min_lesions`` is
        not an integer in [1, 40] or ``smallest_mm3`` is not a positive finite number.

    Notes
    -----
    Lesion volumes are drawn log-uniformly in mm³ from 8 voxels to ``30 cm³ / sqrt(count)``
    (cases with many lesions have smaller ones), so the smallest lesions are a few voxels at any
    resolution, and the same seed at another shape or spacing gives a related but not identical
    case. Whether a case has a resection cavity follows a golden-ratio sequence over the seeds,
    so any 5-10 consecutive seeds hold about one fifth of cavity cases. All cases share the
    template's anatomy; the template and its resampling to each geometry are cached per process.

    Examples
    --------
    >>> case = make_case(7, shape=(48, 48, 48), spacing=(3.0, 3.0, 4.0))
    >>> case.image.shape, case.spacing
    ((4, 48, 48, 48), (3.0, 3.0, 4.0))
    """
    seed, shape, spacing = _validate_args(seed, kind, shape, spacing)
    _validate_lesion_args(min_lesions, smallest_mm3)
    spacing = spacing if spacing is not None else _fitting_spacing(shape)
    anatomy = _anatomy(shape, spacing)
    rng = np.random.default_rng(seed)
    spacing_mm = np.asarray(spacing)

    lesions = _empty_lesion_maps(shape)
    for metastasis in _draw_metastases(rng, anatomy, spacing_mm, min_lesions, smallest_mm3):
        _paint_metastasis(lesions, anatomy, spacing_mm, metastasis)
    if _has_resection_cavity(seed):
        cavity = _draw_resection_cavity(rng, anatomy, spacing_mm)
        _paint_resection_cavity(lesions, anatomy, spacing_mm, cavity)
    _restrict_to_brain(lesions, anatomy)

    label = _label_from_fractions(lesions)
    image = _mr_contrasts(rng, anatomy, lesions)
    image *= _bias_field(rng, shape)
    image = _add_rician_noise(rng, image)
    image *= anatomy.brain
    return PhantomCase(image=image, label=label, spacing=spacing)


# --------------------------------------------------------------------------- arguments, geometry


def _validate_args(
    seed: int, kind: str, shape: tuple[int, int, int], spacing: tuple[float, float, float] | None
) -> tuple[int, tuple[int, int, int], tuple[float, float, float] | None]:
    """Check the arguments of :func:`make_case`; return them as plain ints and floats."""
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f"Expected `seed` to be a non-negative integer, but got {seed!r}.")
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` to be one of {KINDS}, but got {kind!r}.")
    if not _is_triple(shape) or not all(_is_integer(n) and n > 0 for n in shape):
        raise ValueError(f"Expected `shape` to be 3 positive integers, but got {shape!r}.")
    if spacing is not None and (
        not _is_triple(spacing) or not all(_is_real(s) and math.isfinite(s) and s > 0 for s in spacing)
    ):
        raise ValueError(f"Expected `spacing` to be None or 3 positive numbers (mm), but got {spacing!r}.")
    x, y, z = (int(n) for n in shape)
    if spacing is None:
        return int(seed), (x, y, z), None
    sx, sy, sz = (float(s) for s in spacing)
    return int(seed), (x, y, z), (sx, sy, sz)


def _validate_lesion_args(min_lesions: int, smallest_mm3: float | None) -> None:
    if not _is_integer(min_lesions) or not 1 <= min_lesions <= _MAX_LESIONS:
        raise ValueError(f"Expected `min_lesions` to be an integer in [1, {_MAX_LESIONS}], but got {min_lesions!r}.")
    if smallest_mm3 is not None and not (_is_real(smallest_mm3) and math.isfinite(smallest_mm3) and smallest_mm3 > 0):
        raise ValueError(f"Expected `smallest_mm3` to be None or a positive number (mm³), but got {smallest_mm3!r}.")


def _is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_triple(value: object) -> bool:
    return isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3


def _fitting_spacing(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """Isotropic spacing (mm) at which the brain bounding box plus margin fits ``shape``."""
    template = _load_template()
    extent_mm = template.brain_hi - template.brain_lo + 1 + 2 * _BRAIN_MARGIN_MM
    step = float(np.max(extent_mm / np.asarray(shape)))
    return (step, step, step)


@functools.lru_cache(maxsize=1)
def _load_template() -> _Template:
    """Read the MNI152 2009a T1 and GM/WM maps that ship inside nilearn's wheel (no network)."""
    folder = os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data")

    def read(name: str) -> np.ndarray:
        path = os.path.join(folder, f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
        return np.asarray(nib.load(path).dataobj)  # uint8, 0..255

    t1 = read("t1")
    inside = t1 > 0  # the template T1 is skull-stripped: its support is the brain mask
    brain_lo, brain_hi = _bounding_box(inside)
    crop = tuple(slice(lo, hi + 1) for lo, hi in zip(brain_lo, brain_hi, strict=True))
    # A zero border keeps constant-mode filtering and interpolation exact at the crop.
    volumes = np.zeros((4, *(brain_hi - brain_lo + 3)), dtype=np.float32)
    interior = volumes[:, 1:-1, 1:-1, 1:-1]
    interior[...] = [inside[crop], read("gm")[crop], read("wm")[crop], t1[crop]]
    interior[1:] *= interior[0] / np.float32(255.0)
    origin = brain_lo - 1

    gm, wm, t1_brain = (volume[volumes[0] > 0] for volume in volumes[1:])
    mixture = np.stack([np.clip(1.0 - gm - wm, 0.0, 1.0), gm, wm], axis=1)
    tissue_t1 = np.linalg.solve(mixture.T @ mixture, mixture.T @ t1_brain).astype(np.float32)
    return _Template(volumes, origin, brain_lo, brain_hi, tissue_t1)


def _bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of ``mask``'s true voxels along every axis."""
    lo, hi = [], []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        lo.append(hit[0])
        hi.append(hit[-1])
    return np.array(lo), np.array(hi)


@functools.lru_cache(maxsize=4)
def _anatomy(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> _Anatomy:
    """Resample the template onto a field of view of ``shape * spacing`` mm centred on the brain."""
    template = _load_template()
    step = np.asarray(spacing)
    centre = (template.brain_lo + template.brain_hi) / 2.0
    start = centre - (np.asarray(shape) - 1) / 2.0 * step - template.origin  # cropped voxel of output 0

    sigma = np.maximum(step - 1.0, 0.0) / 2.0  # anti-aliasing before downsampling
    volumes = template.volumes
    if np.any(sigma > 0):
        volumes = ndimage.gaussian_filter(volumes, (0.0, *sigma), mode="constant", truncate=3.0)
    brain_fraction, gm, wm, t1 = (
        np.clip(ndimage.affine_transform(volume, step, offset=start, output_shape=shape, order=1), 0.0, 1.0)
        for volume in volumes
    )
    csf = np.clip(brain_fraction - gm - wm, 0.0, 1.0)
    fractions = np.stack([1.0 - gm - wm - csf, csf, gm, wm])

    predicted_t1 = np.tensordot(template.tissue_t1, fractions[1:], axes=1)
    texture = np.where(predicted_t1 > 0.05, t1 / np.maximum(predicted_t1, 1e-3) - 1.0, 0.0)
    texture = np.clip(texture, -0.3, 0.3).astype(np.float32)

    brain = brain_fraction >= 0.5
    # Distance to the brain surface or the edge of the field of view, whichever is nearer.
    depth_mm = ndimage.distance_transform_edt(np.pad(brain, 1), sampling=step)[1:-1, 1:-1, 1:-1]
    depth_mm = depth_mm.astype(np.float32)
    junction = np.argwhere(brain & (gm > _JUNCTION_PROBABILITY) & (wm > _JUNCTION_PROBABILITY))
    for array in (fractions, texture, brain, depth_mm, junction):
        array.flags.writeable = False
    return _Anatomy(fractions, texture, brain, depth_mm, junction)


# --------------------------------------------------------------------------- lesion geometry


def _draw_blob(
    rng: np.random.Generator, centre: np.ndarray, radius_mm: float, roughness: float, elongation: float
) -> _Blob:
    """Random ellipsoid of equal-volume radius ``radius_mm`` with a smooth radial perturbation.

    ``elongation`` is the standard deviation of the log semi-axes, ``roughness`` the typical
    relative amplitude of the radius perturbation.
    """
    axes = np.exp(rng.normal(0.0, elongation, 3))
    axes *= radius_mm / np.prod(axes) ** (1.0 / 3.0)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    directions = rng.normal(size=(_PERTURBATION_TERMS, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    frequencies = rng.uniform(1.0, 3.0, _PERTURBATION_TERMS)
    phases = rng.uniform(0.0, 2 * np.pi, _PERTURBATION_TERMS)
    amplitudes = rng.normal(0.0, roughness / math.sqrt(_PERTURBATION_TERMS), _PERTURBATION_TERMS)
    return _Blob(
        np.asarray(centre), float(radius_mm), axes, rotation, directions, frequencies, phases, amplitudes
    )


def _blob_reach_mm(blob: _Blob, level: float) -> float:
    """Upper bound on the distance from the centre of the blob's ``level`` surface."""
    return level * float(np.max(blob.axes_mm)) * (1.0 + float(np.sum(np.abs(blob.amplitudes))))


class _BlobCoordinates(NamedTuple):
    """Ellipsoid-normalised radius and unit direction of every voxel of a box around a blob."""

    box: tuple[slice, slice, slice]
    rho: np.ndarray  # 1 on the unperturbed ellipsoid surface
    unit: tuple[np.ndarray, np.ndarray, np.ndarray]


def _blob_coordinates(
    blob: _Blob, reach_mm: float, spacing: np.ndarray, shape: tuple[int, ...]
) -> _BlobCoordinates:
    """Coordinates in the blob's frame, on the voxels within ``reach_mm`` of its centre (box)."""
    half = np.ceil(reach_mm / spacing).astype(int) + 1
    lo = np.maximum(blob.centre - half, 0)
    hi = np.minimum(blob.centre + half + 1, shape)
    offsets_mm = [
        ((np.arange(lo[a], hi[a]) - blob.centre[a]) * spacing[a]).astype(np.float32) for a in range(3)
    ]
    grids = np.meshgrid(*offsets_mm, indexing="ij", sparse=True)
    frame = (blob.rotation / blob.axes_mm).astype(np.float32)  # column k: axis k over its length
    scaled = [grids[0] * frame[0, k] + grids[1] * frame[1, k] + grids[2] * frame[2, k] for k in range(3)]
    rho = np.sqrt(scaled[0] ** 2 + scaled[1] ** 2 + scaled[2] ** 2)
    inverse = 1.0 / np.maximum(rho, np.float32(1e-6))
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    return _BlobCoordinates(box, rho, (scaled[0] * inverse, scaled[1] * inverse, scaled[2] * inverse))


def _blob_radius(blob: _Blob, coords: _BlobCoordinates) -> np.ndarray:
    """Normalised radius: ``<= level`` inside the blob's ``level`` surface (1 = the blob)."""
    perturbation = np.zeros_like(coords.rho)
    terms = (blob.directions, blob.frequencies, blob.phases, blob.amplitudes)
    for direction, frequency, phase, amplitude in zip(*(t.astype(np.float32) for t in terms), strict=True):
        cosine = sum(coords.unit[k] * direction[k] for k in range(3))
        perturbation += amplitude * np.sin(frequency * cosine + phase)
    return coords.rho / np.maximum(1.0 + perturbation, np.float32(0.4))


def _fraction_inside(
    radius: np.ndarray, level: np.ndarray | float, blob: _Blob, ramp_mm: float
) -> np.ndarray:
    """Partial-volume fraction inside the ``level`` surface: a linear ramp about one voxel wide."""
    distance_mm = (level - radius) * np.float32(blob.radius_mm)
    return np.clip(0.5 + distance_mm / np.float32(ramp_mm), 0.0, 1.0)


# --------------------------------------------------------------------------- metastases


def _draw_metastases(
    rng: np.random.Generator, anatomy: _Anatomy, spacing: np.ndarray, min_lesions: int, smallest_mm3: float | None
) -> list[_Metastasis]:
    """Draw the metastases of a case: ``min_lesions - 1`` plus a Zipf-distributed count, log-uniform volumes."""
    count = int(min(min_lesions - 1 + rng.zipf(_LESION_COUNT_ZIPF_A), _MAX_LESIONS))
    voxel_mm3 = float(np.prod(spacing))
    max_depth = float(anatomy.depth_mm.max())
    smallest = _MIN_LESION_VOXELS * voxel_mm3 if smallest_mm3 is None else float(smallest_mm3)
    # Many lesions come with smaller ones: the largest volume shrinks as 1/sqrt(count).
    largest = min(_MAX_LESION_MM3 / math.sqrt(count), 4.0 / 3.0 * np.pi * (0.6 * max_depth) ** 3)
    largest = max(largest, smallest)
    lesions: list[_Metastasis] = []
    for _ in range(count):
        volume = math.exp(rng.uniform(math.log(smallest), math.log(largest)))
        radius = (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0)
        centre = _lesion_centre(rng, anatomy, spacing, radius, [lesion.blob for lesion in lesions])
        blob = _draw_blob(rng, centre, radius, roughness=rng.uniform(0.08, 0.25), elongation=0.2)
        rim_mm = max(rng.uniform(1.5, 4.0), 1.2 * float(np.mean(spacing)))
        has_core = rng.random() < np.clip((radius - 3.0) / 5.0, 0.0, 0.9)
        core_level = max(1.0 - rim_mm / radius, 0.0) if has_core else 0.0
        core_blob = _draw_blob(rng, centre, radius, roughness=0.15, elongation=0.15)
        has_edema = radius >= max(3.0, 1.5 * float(np.mean(spacing))) or rng.random() < 0.25
        edema_factor = 1.0 + 3.0 * rng.random() ** 1.5 if has_edema else 1.0
        edema_factor = min(edema_factor, 1.0 + _MAX_EDEMA_THICKNESS_MM / radius)
        edema_blob = _draw_blob(rng, centre, radius, roughness=0.3, elongation=0.25)
        enhancement = rng.uniform(0.85, 1.15)
        lesions.append(_Metastasis(blob, core_level, core_blob, edema_factor, edema_blob, enhancement))
    return lesions


def _lesion_centre(
    rng: np.random.Generator, anatomy: _Anatomy, spacing: np.ndarray, radius_mm: float, earlier: list[_Blob]
) -> np.ndarray:
    """A voxel for a new lesion: next to an earlier lesion (a cluster) or on the GM/WM junction.

    Junction voxels at least 0.6 lesion radii deep are preferred, so that large lesions stay
    mostly inside the brain; lacking junction voxels in the field of view, any brain voxel,
    then any voxel.
    """
    shape = np.asarray(anatomy.brain.shape)
    if earlier and rng.random() < _CLUSTER_PROBABILITY:
        neighbour = earlier[rng.integers(len(earlier))]
        direction = rng.normal(size=3)
        distance_mm = (neighbour.radius_mm + radius_mm) * rng.uniform(0.5, 1.1)
        offset = direction / np.linalg.norm(direction) * distance_mm / spacing
        centre = np.rint(neighbour.centre + offset).astype(int)
        if np.all((centre >= 0) & (centre < shape)) and anatomy.brain[tuple(centre)]:
            return centre
    candidates = anatomy.junction if len(anatomy.junction) else np.argwhere(anatomy.brain)
    if not len(candidates):
        return rng.integers(0, shape)
    depth = anatomy.depth_mm[tuple(candidates.T)]
    deep_enough = candidates[depth >= min(0.6 * radius_mm, float(depth.max()))]
    return deep_enough[rng.integers(len(deep_enough))]


def _empty_lesion_maps(shape: tuple[int, int, int]) -> _LesionMaps:
    zeros = [np.zeros(shape, dtype=np.float32) for _ in range(4)]
    return _LesionMaps(*zeros, enhancement=np.ones(shape, dtype=np.float32))


def _paint_metastasis(
    lesions: _LesionMaps, anatomy: _Anatomy, spacing: np.ndarray, metastasis: _Metastasis
) -> None:
    """Add one metastasis to ``lesions`` (in place), each structure inside its own bounding box.

    Oedema reaches ``edema_factor`` times the lesion radius in pure white matter and about a
    third of that extension in grey matter, so it spreads along white matter.
    """
    blob, core_level, core_blob, edema_factor, edema_blob, enhancement = metastasis
    ramp_mm = float(np.mean(spacing))
    coords = _blob_coordinates(blob, _blob_reach_mm(blob, 1.0) + ramp_mm, spacing, anatomy.brain.shape)
    box = coords.box
    tumour = _fraction_inside(_blob_radius(blob, coords), 1.0, blob, ramp_mm)
    if core_level > 0:
        core = _fraction_inside(_blob_radius(core_blob, coords), core_level, blob, ramp_mm)
        np.minimum(core, tumour, out=core)
        np.maximum(lesions.core[box], core, out=lesions.core[box])
    lesions.enhancement[box][tumour > lesions.tumour[box]] = enhancement
    np.maximum(lesions.tumour[box], tumour, out=lesions.tumour[box])

    if edema_factor > 1:
        reach = _blob_reach_mm(edema_blob, edema_factor) + ramp_mm
        coords = _blob_coordinates(edema_blob, reach, spacing, anatomy.brain.shape)
        box = coords.box
        wm, gm = anatomy.fractions[3][box], anatomy.fractions[2][box]
        white_share = wm / np.maximum(wm + gm, np.float32(1e-3))
        level = 1.0 + np.float32(edema_factor - 1.0) * (0.3 + 0.7 * white_share)
        edema = _fraction_inside(_blob_radius(edema_blob, coords), level, blob, ramp_mm)
        np.maximum(lesions.edema[box], edema, out=lesions.edema[box])


def _has_resection_cavity(seed: int) -> bool:
    """Whether case ``seed`` has a cavity: a golden-ratio (Weyl) sequence, not a coin flip.

    Every run of consecutive seeds then holds close to :data:`_RC_FRACTION` cavity cases (3 of
    seeds 0-15, 4 of 0-23), so that even small cohorts contain the rare class. The fractional
    part is computed in 64-bit integer arithmetic, exact for any seed (a float product loses
    the fraction for seeds beyond 2**52).
    """
    weyl = ((seed + 1) * _WEYL_STEP) % 2**64
    return weyl < _RC_FRACTION * 2**64


def _draw_resection_cavity(
    rng: np.random.Generator, anatomy: _Anatomy, spacing: np.ndarray
) -> _Cavity:
    """Draw a cavity of 2-15 cm³: oedema rim in 85 % of cases, an enhancing nodule in 35 %."""
    volume = math.exp(rng.uniform(*np.log(_RC_VOLUME_MM3)))
    radius = (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0)
    centre = _lesion_centre(rng, anatomy, spacing, radius, [])
    blob = _draw_blob(rng, centre, radius, roughness=rng.uniform(0.15, 0.35), elongation=0.3)
    edema_level = 1.0 + rng.uniform(1.5, 5.0) / radius if rng.random() < 0.85 else 0.0
    if rng.random() >= 0.35:
        return _Cavity(blob, edema_level, None)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    wall_mm = 1.0 / np.linalg.norm(blob.rotation.T @ direction / blob.axes_mm)  # unperturbed ellipsoid
    nodule_centre = np.rint(centre + direction * wall_mm / spacing).astype(int)
    nodule_centre = np.clip(nodule_centre, 0, np.asarray(anatomy.brain.shape) - 1)
    nodule_radius = max(rng.uniform(2.5, 6.0), 1.5 * float(np.mean(spacing)))
    nodule = _draw_blob(rng, nodule_centre, nodule_radius, roughness=0.2, elongation=0.3)
    return _Cavity(blob, edema_level, _Metastasis(nodule, 0.0, nodule, 1.0, nodule, 1.0))


def _paint_resection_cavity(
    lesions: _LesionMaps, anatomy: _Anatomy, spacing: np.ndarray, cavity: _Cavity
) -> None:
    """Add the cavity, its oedema rim and its enhancing nodule to ``lesions`` (in place)."""
    blob, edema_level, nodule = cavity
    ramp_mm = float(np.mean(spacing))
    reach = _blob_reach_mm(blob, max(edema_level, 1.0)) + ramp_mm
    coords = _blob_coordinates(blob, reach, spacing, anatomy.brain.shape)
    box = coords.box
    radius = _blob_radius(blob, coords)
    cavity_fraction = _fraction_inside(radius, 1.0, blob, ramp_mm)
    np.maximum(lesions.cavity[box], cavity_fraction, out=lesions.cavity[box])
    if edema_level:
        edema = _fraction_inside(radius, edema_level, blob, ramp_mm)
        np.maximum(lesions.edema[box], edema, out=lesions.edema[box])
    if nodule is not None:
        _paint_metastasis(lesions, anatomy, spacing, nodule)


def _restrict_to_brain(lesions: _LesionMaps, anatomy: _Anatomy) -> None:
    """Clip lesions to the brain mask (in place); oedema only where there is parenchyma."""
    parenchyma = anatomy.fractions[2] + anatomy.fractions[3]
    lesions.edema[...] = np.maximum(lesions.edema * parenchyma, lesions.tumour)
    for fraction in lesions[:4]:
        fraction *= anatomy.brain


def _label_from_fractions(lesions: _LesionMaps) -> np.ndarray:
    """Label map (uint8): fractions >= 0.5; NETC/ET over oedema, cavity over everything."""
    label = np.zeros(lesions.tumour.shape, dtype=np.uint8)
    label[lesions.edema >= 0.5] = SNFH
    tumour = lesions.tumour >= 0.5
    label[tumour] = ET
    label[tumour & (lesions.core >= 0.5)] = NETC
    label[lesions.cavity >= 0.5] = RC
    return label


# --------------------------------------------------------------------------- image formation


def _mr_contrasts(rng: np.random.Generator, anatomy: _Anatomy, lesions: _LesionMaps) -> np.ndarray:
    """Noise-free image (4, *S) float32: tissue mixture, oedema gain, lesion replacement.

    Every contrast is jittered per case by a few percent (scanner and patient variation).
    """
    tissue = _TISSUE_CONTRAST * np.exp(rng.normal(0.0, 0.04, _TISSUE_CONTRAST.shape)).astype(np.float32)
    et, netc, cavity = (
        contrast * np.exp(rng.normal(0.0, 0.06, 4)).astype(np.float32)
        for contrast in (_ET_CONTRAST, _NETC_CONTRAST, _CAVITY_CONTRAST)
    )
    image = np.tensordot(tissue.T, anatomy.fractions, axes=1)
    image *= 1.0 + _TEXTURE_SIGN[:, None, None, None] * anatomy.texture
    image *= 1.0 + lesions.edema * (_EDEMA_GAIN[:, None, None, None] - 1.0)
    enhancing = (lesions.tumour - lesions.core) * lesions.enhancement
    image *= 1.0 - lesions.tumour
    image += et[:, None, None, None] * enhancing + netc[:, None, None, None] * lesions.core
    image *= 1.0 - lesions.cavity
    image += cavity[:, None, None, None] * lesions.cavity
    return image


def _bias_field(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Smooth multiplicative bias field (4, *S) float32, one per channel.

    ``exp`` of a random polynomial of degree 3 in normalised coordinates (as TorchIO's
    ``RandomBiasField``), scaled so the field spans a random 3-20 % around 1.
    """
    degree = 3
    powers = np.arange(degree + 1)
    coefficients = rng.uniform(-1.0, 1.0, (4, degree + 1, degree + 1, degree + 1))
    coefficients *= np.add.outer(np.add.outer(powers, powers), powers) <= degree
    bases = [np.linspace(-1.0, 1.0, n)[:, None] ** powers for n in shape]
    log_field = np.einsum("cijk,xi,yj,zk->cxyz", coefficients, *bases, optimize=True)
    span = np.abs(log_field).reshape(4, -1).max(axis=1)
    strength = np.log1p(rng.uniform(0.03, 0.2, 4)) / np.maximum(span, 1e-6)
    return np.exp(log_field * strength[:, None, None, None]).astype(np.float32)


def _add_rician_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise, 1.5-4 % of white matter per channel."""
    sigma = (_TISSUE_CONTRAST[3] * rng.uniform(0.015, 0.04, 4)).astype(np.float32)[:, None, None, None]
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary)
