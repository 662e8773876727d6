"""Imperfect predictions made from reference label maps, for demos and tests of the evaluation.

A trained model is not needed to exercise ``workbench evaluate``: :func:`perturb_labels` turns a
reference label map into a plausible prediction with every kind of error a lesion detector
makes, and :func:`write_perturbed_predictions` does it for every case of a manifest.

Per lesion (a connected component of the foreground, all labels together), one of:

* **drop** — the lesion disappears (a false negative);
* **dilate** — it grows by one voxel; new voxels take the label of the nearest lesion voxel;
* **erode** — it loses its boundary voxels (small lesions may vanish);
* **keep** — unchanged.

Then **false-positive blobs** are added: balls of a few voxels' radius with one of the schema's
label values, placed where they touch no foreground. The output only holds values of the input's
schema, and the same seed gives the same output.

Examples
--------
>>> label = np.zeros((24, 24, 24), dtype=np.uint8)
>>> label[4:10, 4:10, 4:10] = 2
>>> label[6:8, 6:8, 6:8] = 3
>>> pred = perturb_labels(label, seed=0, perturbation=Perturbation(drop=0, dilate=1, erode=0))
>>> int((pred > 0).sum()) > int((label > 0).sum()), set(np.unique(pred)) <= {0, 1, 2, 3, 4}
(True, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cc3d
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from workbench._paths import case_file_name, inside, refuse_existing
from workbench.data.manifest import Manifest, load_manifest
from workbench.data.nifti import load_label, save_nifti
from workbench.labels import LabelSchema, get_schema

__all__ = ["Perturbation", "perturb_labels", "write_perturbed_predictions"]

_FP_PLACEMENT_TRIES = 100


@dataclass(frozen=True)
class Perturbation:
    """How strongly :func:`perturb_labels` corrupts a label map.

    Attributes
    ----------
    drop, dilate, erode : float
        Probability that a lesion is removed, grown by one voxel, or shrunk by one voxel. Each
        lesion gets at most one of them (their sum must be ≤ 1); the rest are kept.
    false_positives : int
        Number of false-positive blobs added per case (fewer if no free place is found).
    fp_radius : tuple of 2 int
        Smallest and largest blob radius in voxels (inclusive).
    fp_values : tuple of int or None
        Label values the blobs take (uniformly); None: every label of the schema.

    Raises
    ------
    ValueError
        If a probability is outside ``[0, 1]`` or they sum to more than 1, ``false_positives``
        is negative, or ``fp_radius`` is not ``(low, high)`` with ``1 <= low <= high``.
    """

    drop: float = 0.2
    dilate: float = 0.2
    erode: float = 0.2
    false_positives: int = 2
    fp_radius: tuple[int, int] = (1, 3)
    fp_values: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        probabilities = {"drop": self.drop, "dilate": self.dilate, "erode": self.erode}
        for name, p in probabilities.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Expected `{name}` to be a probability in [0, 1], but got {p!r}.")
        if sum(probabilities.values()) > 1.0 + 1e-12:
            raise ValueError(
                f"Expected `drop` + `dilate` + `erode` to be at most 1 (one action per lesion), but got "
                f"{self.drop} + {self.dilate} + {self.erode}."
            )
        if not isinstance(self.false_positives, (int, np.integer)) or self.false_positives < 0:
            raise ValueError(f"Expected `false_positives` to be a non-negative int, but got {self.false_positives!r}.")
        low, high = self.fp_radius
        if not 1 <= low <= high:
            raise ValueError(f"Expected `fp_radius` to be (low, high) with 1 <= low <= high, but got {self.fp_radius!r}.")


def perturb_labels(
    label: np.ndarray,
    *,
    seed: int,
    schema: str | LabelSchema = "brats_mets_2025",
    perturbation: Perturbation = Perturbation(),
    connectivity: int | None = None,
) -> np.ndarray:
    """Make an imperfect prediction from a reference label map.

    Parameters
    ----------
    label : ndarray of int, shape (*S)
        2D or 3D reference label map with values of ``schema``.
    seed : int
        Seed of ``np.random.default_rng``; the same seed gives the same output.
    schema : str or LabelSchema, default "brats_mets_2025"
        Checks ``label`` and supplies the false-positive blobs' label values.
    perturbation : Perturbation
        Probabilities of dropping, dilating and eroding each lesion; false-positive blobs.
    connectivity : int, optional
        Lesions are connected components of ``label > 0`` at this connectivity (6, 18, 26 in 3D;
        4, 8 in 2D); default full (26 or 8).

    Returns
    -------
    pred : ndarray, shape (*S), dtype of ``label``
        Values in ``{0} ∪ schema labels``. ``label`` is not modified.

    Raises
    ------
    ValueError
        If ``label`` is not 2D or 3D, or ``perturbation.fp_values`` holds a value the schema
        lacks.
    LabelValueError
        If ``label`` holds values outside the schema.
    """
    label = np.asarray(label)
    if label.ndim not in (2, 3):
        raise ValueError(f"Expected `label` to be a 2D or 3D label map (*S), but got shape {label.shape}.")
    schema = get_schema(schema)
    schema.validate(label)
    values = _fp_values(perturbation, schema)
    rng = np.random.default_rng(seed)
    full = 3 ** label.ndim - 1
    lesions, n = cc3d.connected_components(label > 0, connectivity=connectivity or full, return_N=True)
    pred = label.copy()
    structure = ndimage.generate_binary_structure(label.ndim, label.ndim)
    draws = rng.random(n)
    cuts = np.cumsum([perturbation.drop, perturbation.dilate, perturbation.erode])
    for lesion_id, (draw, box) in enumerate(zip(draws, ndimage.find_objects(lesions)), start=1):
        action = int(np.searchsorted(cuts, draw, side="right"))
        if action == 0:
            pred[box][lesions[box] == lesion_id] = 0
        elif action in (1, 2):
            window = _padded(box, label.shape)
            mine = lesions[window] == lesion_id
            if action == 1:
                _dilate(pred[window], label[window], mine, structure)
            else:
                pred[window][mine & ~ndimage.binary_erosion(mine, structure)] = 0
    for _ in range(perturbation.false_positives):
        _add_blob(pred, rng, perturbation.fp_radius, values)
    return pred


def write_perturbed_predictions(
    reference: Manifest | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    perturbation: Perturbation = Perturbation(),
    overwrite: bool = False,
) -> Path:
    """Write a perturbed prediction ``<out_dir>/<case_id>.nii.gz`` for every labelled case.

    Parameters
    ----------
    reference : Manifest, str or PathLike
        The reference manifest (a path is loaded with
        :func:`workbench.data.manifest.load_manifest`, which regenerates missing phantom files).
    out_dir : str or PathLike
        Created if missing. This is a prediction folder for ``workbench evaluate --pred``.
    seed : int
        Case ``i`` (in manifest order) uses a seed derived from ``(seed, i)``.
    perturbation : Perturbation
    overwrite : bool, default False
        Write into a folder that is not empty (files of the same cases are replaced, others kept).

    Returns
    -------
    out_dir : Path

    Raises
    ------
    FileExistsError
        If ``out_dir`` is not empty (earlier predictions) and ``overwrite`` is off.
    ValueError
        If a case id cannot name a file or its file would lie outside ``out_dir`` (checked for
        every case before anything is written).

    Notes
    -----
    Each file has the reference label's affine, so the grid check of the evaluation passes.
    Cases without a label are skipped.
    """
    out_dir = Path(out_dir)
    refuse_existing(out_dir, overwrite=overwrite, what="set of predictions")
    manifest = reference if isinstance(reference, Manifest) else load_manifest(reference, validate=False)
    labelled = [(i, case) for i, case in enumerate(manifest.cases) if case.label is not None]
    targets = [inside(out_dir, out_dir / case_file_name(case.id)) for _, case in labelled]
    out_dir.mkdir(parents=True, exist_ok=True)
    for (i, case), target in tqdm(list(zip(labelled, targets)), desc="perturbing", unit="case", disable=None):
        label, affine, _ = load_label(case.label)
        case_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        pred = perturb_labels(label, seed=case_seed, schema=manifest.schema, perturbation=perturbation)
        save_nifti(target, pred, affine)
    return out_dir


def _fp_values(perturbation: Perturbation, schema: LabelSchema) -> tuple[int, ...]:
    if perturbation.fp_values is None:
        return schema.label_values
    unknown = sorted(set(perturbation.fp_values) - set(schema.label_values))
    if unknown or not perturbation.fp_values:
        raise ValueError(
            f"Expected `fp_values` to be labels of schema {schema.name!r} {list(schema.label_values)}, "
            f"but got {list(perturbation.fp_values)}."
        )
    return tuple(perturbation.fp_values)


def _padded(box: tuple[slice, ...], shape: Sequence[int], margin: int = 1) -> tuple[slice, ...]:
    """``box`` grown by ``margin`` voxels on every side, clipped to the volume."""
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, shape))


def _dilate(pred: np.ndarray, label: np.ndarray, mine: np.ndarray, structure: np.ndarray) -> None:
    """Grow the lesion ``mine`` by one voxel into background of ``pred`` (views, in place); new
    voxels copy the reference label of the nearest lesion voxel."""
    grown = ndimage.binary_dilation(mine, structure) & ~mine & (pred == 0)
    nearest = ndimage.distance_transform_edt(~mine, return_distances=False, return_indices=True)
    pred[grown] = label[tuple(index[grown] for index in nearest)]


def _add_blob(pred: np.ndarray, rng: np.random.Generator, radius: tuple[int, int], values: Sequence[int]) -> None:
    """Paint one ball that touches no foreground of ``pred`` (in place); give up after a number
    of random placements all touched some."""
    r = int(rng.integers(radius[0], radius[1] + 1))
    value = values[int(rng.integers(len(values)))]
    side = 2 * r + 3  # the ball and a one-voxel margin
    shape = np.asarray(pred.shape)
    if np.any(shape < side):
        return
    offsets = np.indices((side,) * pred.ndim) - (r + 1)
    ball = (offsets**2).sum(axis=0) <= r * r
    for _ in range(_FP_PLACEMENT_TRIES):
        corner = rng.integers(0, shape - side + 1)
        window = tuple(slice(c, c + side) for c in corner)
        if not pred[window].any():
            pred[window][ball] = value
            return
