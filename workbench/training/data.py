"""Training data: cases in memory, z-scored, cut into augmented patches with their instance maps.

The pipeline (issue 6, DESIGN §1):

1. :func:`load_training_cases` reads cases of a manifest and z-scores every channel inside the
   brain (the voxels where any channel is non-zero), :func:`zscore`.
2. :class:`PatchDataset` draws ``samples_per_epoch`` patches per epoch. A share
   ``foreground_fraction`` of them is centred on a foreground voxel (nnU-Net forces 1/3 of its
   patches onto foreground); with ``class_balanced`` that voxel is drawn class first, so rare
   labels such as RC are seen as often as common ones. Patches are flipped and intensity-jittered,
   turned into the target of the chosen mode, and their instance maps (components, optional
   Voronoi cells) are computed in ``__getitem__``, i.e. in the DataLoader workers, never in the
   loss.
3. :func:`patch_loader` batches them with :func:`collate_patches`.

Determinism
-----------
Every random draw of sample ``index`` in epoch ``epoch`` comes from
``np.random.default_rng([seed, epoch, index])`` and from nothing else, so a sample is a pure
function of ``(seed, epoch, index)``: independent of the worker count, of worker scheduling and of
how many samples were drawn before. A run resumed at epoch ``e`` sees exactly the batches of an
uninterrupted run. The loader's own torch generator is seeded too, so creating its iterators
never consumes the global torch RNG that model initialisation and dropout use.

Examples
--------
>>> from workbench.data.phantoms import make_case
>>> case = make_case(0, shape=(32, 32, 32))
>>> arrays = CaseArrays("c0", zscore(case.image), case.label, case.spacing, np.eye(4))
>>> dataset = PatchDataset([arrays], schema="brats_mets_2025", mode="sigmoid",
...                        sampling=PatchSampling((16, 16, 16)), samples_per_epoch=4, seed=0)
>>> sample = dataset[0]
>>> tuple(sample["image"].shape), tuple(sample["target"].shape), sample["instances"].mode
((4, 16, 16, 16), (4, 16, 16, 16), 'sigmoid')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from workbench._validate import check_connectivity
from workbench.data.manifest import Manifest, load_case
from workbench.instances import concat_instance_maps, instance_maps
from workbench.labels import LabelSchema, get_schema

__all__ = [
    "CaseArrays",
    "PatchDataset",
    "PatchSampling",
    "collate_patches",
    "load_training_cases",
    "patch_loader",
    "zscore",
]

Mode = Literal["softmax", "sigmoid"]

_INTENSITY_SCALE = (0.9, 1.1)
_INTENSITY_SHIFT = (-0.1, 0.1)


@dataclass(frozen=True, eq=False)
class CaseArrays:
    """One training case in memory.

    Attributes
    ----------
    case_id : str
    image : ndarray of float32, shape (C, *S)
        z-scored channels (:func:`zscore`).
    label : ndarray of uint8, shape (*S)
        Label map with the schema's label values (not class indices).
    spacing : tuple of float
        Voxel size in mm per spatial axis.
    affine : ndarray of float64, shape (4, 4)
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray

    def __post_init__(self) -> None:
        if self.image.ndim != self.label.ndim + 1 or self.image.shape[1:] != self.label.shape:
            raise ValueError(
                f"Case {self.case_id!r}: expected `image` of shape (C, *S) and `label` of shape (*S), "
                f"but got {self.image.shape} and {self.label.shape}."
            )
        if len(self.spacing) != self.label.ndim:
            raise ValueError(
                f"Case {self.case_id!r}: expected {self.label.ndim} spacings, but got {tuple(self.spacing)}."
            )


def zscore(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalise each channel to zero mean and unit variance inside a mask.

    Parameters
    ----------
    image : ndarray, shape (C, *S)
    mask : ndarray of bool, shape (*S), optional
        Voxels the statistics are taken over and that keep their values. Default: the voxels
        where any channel is non-zero (the brain, for skull-stripped MR).

    Returns
    -------
    ndarray of float32, shape (C, *S)
        ``(x - mean_c) / std_c`` inside the mask (population std, computed in float64), 0 outside.

    Raises
    ------
    ValueError
        If ``image`` has fewer than 2 dimensions, is not real, holds non-finite values inside the
        mask, or ``mask`` does not have shape (*S).

    Notes
    -----
    A channel that is constant inside the mask (std 0) is only centred: it becomes 0 inside the
    mask rather than NaN. An empty mask gives an all-zero image and a warning.

    Examples
    --------
    >>> image = np.array([[[0.0, 1.0, 3.0]]])      # (C, Y, X) = (1, 1, 3); mask: the two non-zeros
    >>> zscore(image)
    array([[[ 0., -1.,  1.]]], dtype=float32)
    """
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"Expected `image` of shape (C, *S), but got {image.shape}.")
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise ValueError(f"Expected a real-valued `image`, but got dtype {image.dtype}.")
    if mask is None:
        mask = np.any(image != 0, axis=0)
    else:
        mask = np.asarray(mask)
        if mask.shape != image.shape[1:]:
            raise ValueError(f"Expected `mask` of shape {image.shape[1:]} (the image's *S), but got {mask.shape}.")
        mask = mask.astype(bool, copy=False)
    out = np.zeros(image.shape, dtype=np.float32)
    if not mask.any():
        warnings.warn("zscore: the mask is empty (an all-zero image?); returning zeros.", stacklevel=2)
        return out
    for c in range(image.shape[0]):
        values = image[c][mask].astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Expected finite values in `image` channel {c} inside the mask, but found NaN or inf.")
        mean = values.mean()
        std = values.std()
        out[c][mask] = (values - mean) / std if std > 0 else values - mean
    return out


def load_training_cases(manifest: Manifest, case_ids: Sequence[str] | None = None) -> list[CaseArrays]:
    """Load cases of a manifest into memory, z-scored, with their label maps.

    Parameters
    ----------
    manifest : Manifest
        As from :func:`workbench.data.manifest.load_manifest`.
    case_ids : sequence of str, optional
        Cases to load, in this order. Default: the manifest's ``train`` split, or every case with
        a label map when no case is in a ``train`` split.

    Returns
    -------
    list of CaseArrays
        ``image`` z-scored per channel inside the non-zero mask (:func:`zscore`), ``label`` uint8.

    Raises
    ------
    KeyError
        If an id is not in the manifest.
    ValueError
        If a case has no label map, a label value exceeds 255, or nothing is selected.

    Notes
    -----
    A tqdm progress bar runs over the cases.
    """
    if case_ids is None:
        entries = [c for c in manifest.cases if c.split == "train"] or [
            c for c in manifest.cases if c.label is not None
        ]
    else:
        if isinstance(case_ids, str):
            raise TypeError(f"Expected `case_ids` to be a sequence of case ids, but got the string {case_ids!r}.")
        entries = [manifest.case(i) for i in case_ids]
    if not entries:
        raise ValueError(f"No training cases selected from manifest {manifest.name!r}.")
    unlabelled = [c.id for c in entries if c.label is None]
    if unlabelled:
        raise ValueError(f"Training cases need label maps, but cases {unlabelled} of {manifest.name!r} have none.")
    cases = []
    for entry in tqdm(entries, desc=f"loading {manifest.name}", unit="case"):
        data = load_case(manifest, entry)
        label = data.label
        if label.size and (label.min() < 0 or label.max() > 255):
            raise ValueError(
                f"Case {entry.id!r}: label values must lie in 0..255, but got {label.min()}..{label.max()}."
            )
        cases.append(
            CaseArrays(
                case_id=entry.id,
                image=zscore(data.image),
                label=label.astype(np.uint8, copy=False),
                spacing=tuple(float(s) for s in data.spacing),
                affine=np.asarray(data.affine, dtype=np.float64),
            )
        )
    return cases


@dataclass(frozen=True)
class PatchSampling:
    """How patches are drawn and augmented.

    Attributes
    ----------
    patch_size : tuple of 3 int
        Patch shape (*P); cases smaller than it on an axis are zero-padded (as nnU-Net does), and
        :class:`PatchDataset` warns, naming them.
    foreground_fraction : float, default 1/3
        Share of patches centred on a foreground voxel (nnU-Net: 1/3); the others are placed
        uniformly. Stratified, not a coin per sample: sample ``i`` is a foreground patch when
        ``ceil((i + 1) f) > ceil(i f)``, so every ``n`` consecutive samples hold ``floor(n f)`` or
        ``ceil(n f)`` of them and an epoch of ``n`` exactly ``ceil(n f)``. Which case is drawn stays
        random, so a case without foreground still gives a uniform patch.
    class_balanced : bool, default False
        Foreground patches pick a label value uniformly among those present in the case, then a
        voxel of that label; otherwise a foreground voxel uniformly (large classes dominate).
    flips : bool, default True
        Flip each spatial axis with probability 1/2 (image and target together).
    intensity : bool, default True
        Per channel ``x * a + b`` with ``a ~ U(0.9, 1.1)``, ``b ~ U(-0.1, 0.1)``, over the whole patch.

    Raises
    ------
    ValueError, TypeError
        On construction, for a bad value or type of any field.
    """

    patch_size: tuple[int, ...]
    foreground_fraction: float = 1 / 3
    class_balanced: bool = False
    flips: bool = True
    intensity: bool = True

    def __post_init__(self) -> None:
        size = self.patch_size
        if (
            not isinstance(size, Sequence)
            or isinstance(size, str)
            or len(size) != 3
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)
        ):
            raise ValueError(f"Expected `patch_size` to be 3 positive integers, but got {size!r}.")
        object.__setattr__(self, "patch_size", tuple(int(s) for s in size))
        fraction = self.foreground_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating, np.integer)):
            raise TypeError(f"Expected `foreground_fraction` to be a number in [0, 1], but got {fraction!r}.")
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"Expected `foreground_fraction` to be in [0, 1], but got {fraction!r}.")
        object.__setattr__(self, "foreground_fraction", float(fraction))
        for name in ("class_balanced", "flips", "intensity"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"Expected `{name}` to be a bool, but got {getattr(self, name)!r}.")
            object.__setattr__(self, name, bool(getattr(self, name)))


@dataclass(frozen=True, eq=False)
class _PreparedCase:
    """A case padded to at least the patch size, with its foreground voxels indexed."""

    case_id: str
    image: np.ndarray  # (C, *S') float32
    label: np.ndarray  # (*S') uint8
    spacing: tuple[float, ...]
    foreground: np.ndarray  # flat indices of label > 0, int64
    by_label: tuple[tuple[int, np.ndarray], ...]  # (label value, flat indices), ascending values


def _warn_if_padded(cases: Sequence[CaseArrays], patch_size: tuple[int, ...]) -> None:
    """Warn (at the dataset's caller) about cases smaller than the patch on some axis, naming them."""
    small = [case for case in cases if any(s < p for s, p in zip(case.label.shape, patch_size))]
    if not small:
        return
    listed = ", ".join(f"{case.case_id!r} of shape {case.label.shape}" for case in small[:5])
    more = f" and {len(small) - 5} more" if len(small) > 5 else ""
    warnings.warn(
        f"`patch_size` {patch_size} is larger than {len(small)} of {len(cases)} cases on some axis ({listed}{more}); "
        "they are zero-padded, so part of every patch drawn from them is padding. Choose a `patch_size` no larger "
        "than the smallest case to train on image voxels only.",
        stacklevel=3,
    )


def _prepare(case: CaseArrays, patch_size: tuple[int, ...]) -> _PreparedCase:
    shape = case.label.shape
    pad = [(max(p - s, 0) // 2, max(p - s, 0) - max(p - s, 0) // 2) for s, p in zip(shape, patch_size)]
    image = np.asarray(case.image, dtype=np.float32)
    label = np.asarray(case.label)
    if any(before or after for before, after in pad):
        image = np.pad(image, [(0, 0), *pad])
        label = np.pad(label, pad)
    flat = label.ravel()
    foreground = np.flatnonzero(flat)
    values = flat[foreground]
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    present, starts = np.unique(sorted_values, return_index=True)
    bounds = [*starts[1:], len(order)]
    by_label = tuple(
        (int(v), foreground[order[start:stop]]) for v, start, stop in zip(present, starts, bounds)
    )
    return _PreparedCase(case.case_id, image, label, tuple(case.spacing), foreground, by_label)


class PatchDataset(Dataset):
    """Random training patches of in-memory cases, with targets and instance maps.

    Parameters
    ----------
    cases : sequence of CaseArrays
        Non-empty; 3D, all with the same number of channels.
    schema : str or LabelSchema
        Label schema of the label maps.
    mode : {"softmax", "sigmoid"}
        Target: class map (softmax) or region masks (sigmoid).
    sampling : PatchSampling
    samples_per_epoch : int
        Length of an epoch (positive).
    seed : int
        Non-negative; with the epoch and the index the only source of randomness.
    instances : bool, default True
        Compute each patch's instance maps.
    voronoi : bool, default False
        Also compute Voronoi cells (the cc losses need them).
    connectivity : int, optional
        6, 18 or 26; default 26.

    Warns
    -----
    UserWarning
        When ``sampling.patch_size`` exceeds a case on some axis: the message names the cases and
        their shapes; they are zero-padded.

    Notes
    -----
    ``dataset[i]`` is a dict:

    * ``"image"``: float32 tensor (C, *P);
    * ``"target"``: int64 tensor (*P) of class indices 0..C (softmax) or float32 tensor (R, *P) of
      region masks (sigmoid);
    * ``"instances"``: :class:`~workbench.instances.InstanceMaps` of batch 1 for the target (with
      the case's spacing), or None when ``instances=False``;
    * ``"case_id"``: str.

    Whether sample ``i`` is a foreground patch depends on ``i`` alone (stratified, see
    :class:`PatchSampling`); everything else is drawn from ``np.random.default_rng([seed, e, i])``
    (``e`` the epoch) alone, in this order: case, uniform patch position, flips, intensity scale
    and shift, then (foreground patches only) label value and voxel. So toggling an augmentation,
    the foreground fraction or class balancing leaves the other draws unchanged. Call
    :meth:`set_epoch` before iterating a loader for an epoch (the loader's workers are not
    persistent and pick it up).
    """

    def __init__(
        self,
        cases: Sequence[CaseArrays],
        *,
        schema: str | LabelSchema,
        mode: Mode,
        sampling: PatchSampling,
        samples_per_epoch: int,
        seed: int,
        instances: bool = True,
        voronoi: bool = False,
        connectivity: int | None = None,
    ) -> None:
        self.schema = get_schema(schema)
        if mode not in ("softmax", "sigmoid"):
            raise ValueError(f"Expected `mode` to be one of ('softmax', 'sigmoid'), but got {mode!r}.")
        self.num_channels = self.schema.num_channels(mode)  # raises for sigmoid without regions
        if not isinstance(sampling, PatchSampling):
            raise TypeError(f"Expected `sampling` to be a PatchSampling, but got {type(sampling).__name__}.")
        if not _is_int(samples_per_epoch) or samples_per_epoch < 1:
            raise ValueError(f"Expected `samples_per_epoch` to be a positive integer, but got {samples_per_epoch!r}.")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"Expected `seed` to be a non-negative integer, but got {seed!r}.")
        connectivity = check_connectivity(connectivity, 3)
        cases = list(cases)
        if not cases:
            raise ValueError("Expected at least one case in `cases`, but got none.")
        for case in cases:
            if not isinstance(case, CaseArrays):
                raise TypeError(f"Expected `cases` to hold CaseArrays, but got {type(case).__name__}.")
            if case.label.ndim != 3:
                raise ValueError(f"Case {case.case_id!r}: expected a 3D label map, but got shape {case.label.shape}.")
            self.schema.validate(case.label)
        channels = {case.image.shape[0] for case in cases}
        if len(channels) > 1:
            raise ValueError(
                f"Expected every case to have the same number of image channels, but got {sorted(channels)}."
            )
        self.mode: Mode = mode
        self.sampling = sampling
        self.samples_per_epoch = int(samples_per_epoch)
        self.seed = int(seed)
        self.instances = bool(instances)
        self.voronoi = bool(voronoi)
        self.connectivity = connectivity
        self.epoch = 0
        _warn_if_padded(cases, sampling.patch_size)
        self._cases = [_prepare(case, sampling.patch_size) for case in cases]

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(case.case_id for case in self._cases)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws ``__getitem__`` returns (non-negative integer)."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"Expected `epoch` to be a non-negative integer, but got {epoch!r}.")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not _is_int(index) or not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"Sample index {index!r} out of range for an epoch of {self.samples_per_epoch} samples.")
        image, label, case = self._draw(int(index))
        target = self.schema.to_target(label, self.mode)
        maps = None
        if self.instances:
            maps = instance_maps(
                target[None],
                self.mode,
                self.connectivity,
                case.spacing,
                self.voronoi,
                num_classes=self.num_channels - 1 if self.mode == "softmax" else None,
            )
        target = target.astype(np.int64 if self.mode == "softmax" else np.float32, copy=False)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "target": torch.from_numpy(np.ascontiguousarray(target)),
            "instances": maps,
            "case_id": case.case_id,
        }

    def _draw(self, index: int) -> tuple[np.ndarray, np.ndarray, _PreparedCase]:
        """The augmented image patch (C, *P) and label patch (*P) of one sample, and its case."""
        sampling = self.sampling
        rng = np.random.default_rng([self.seed, self.epoch, index])
        # Fixed-size draws first, in a fixed order, so options do not shift the other draws.
        case = self._cases[int(rng.integers(len(self._cases)))]
        position = rng.random(3)
        flips = rng.random(3) < 0.5
        scale = rng.uniform(*_INTENSITY_SCALE, size=case.image.shape[0])
        shift = rng.uniform(*_INTENSITY_SHIFT, size=case.image.shape[0])

        shape = np.array(case.label.shape)
        size = np.array(sampling.patch_size)
        room = shape - size  # ≥ 0 after padding
        if _is_foreground_sample(index, sampling.foreground_fraction) and case.foreground.size:
            if sampling.class_balanced:
                voxels = case.by_label[int(rng.integers(len(case.by_label)))][1]
            else:
                voxels = case.foreground
            centre = np.array(np.unravel_index(voxels[int(rng.integers(voxels.size))], case.label.shape))
            start = np.clip(centre - size // 2, 0, room)
        else:
            start = np.minimum((position * (room + 1)).astype(np.int64), room)
        window = tuple(slice(int(a), int(a + p)) for a, p in zip(start, size))
        image = case.image[(slice(None), *window)]
        label = case.label[window]
        if sampling.flips and flips.any():
            axes = tuple(int(a) for a in np.flatnonzero(flips))
            image = np.flip(image, axis=tuple(a + 1 for a in axes))
            label = np.flip(label, axis=axes)
        if sampling.intensity:
            per_channel = (slice(None),) + (None,) * label.ndim
            image = image * scale.astype(np.float32)[per_channel] + shift.astype(np.float32)[per_channel]
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label), case


def collate_patches(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack :class:`PatchDataset` samples into a batch.

    Returns
    -------
    dict
        ``"image"`` (B, C, *P) float32, ``"target"`` (B, *P) int64 or (B, R, *P) float32,
        ``"instances"`` the samples' maps stacked with
        :func:`~workbench.instances.concat_instance_maps` (None when the samples have none),
        ``"case_ids"`` list of str.

    Raises
    ------
    ValueError
        If ``batch`` is empty or only some samples carry instance maps, or (from
        :func:`~workbench.instances.concat_instance_maps`) the samples' cases differ in spacing:
        one batch holds one spacing.
    """
    if not batch:
        raise ValueError("Expected a non-empty list of samples, but got an empty one.")
    maps = [sample["instances"] for sample in batch]
    missing = sum(m is None for m in maps)
    if missing not in (0, len(maps)):
        raise ValueError(f"Expected instance maps in all samples or in none, but {missing} of {len(maps)} lack them.")
    return {
        "image": torch.stack([sample["image"] for sample in batch]),
        "target": torch.stack([sample["target"] for sample in batch]),
        "instances": None if missing else concat_instance_maps(maps),
        "case_ids": [sample["case_id"] for sample in batch],
    }


def patch_loader(dataset: PatchDataset, *, batch_size: int, workers: int) -> DataLoader:
    """A DataLoader over one epoch of ``dataset``, in index order.

    Parameters
    ----------
    dataset : PatchDataset
        Call ``dataset.set_epoch(e)`` before iterating for epoch ``e``.
    batch_size : int
        Positive; the last batch may be smaller (``drop_last=False``).
    workers : int
        DataLoader worker processes; 0 draws in this process. The batches do not depend on it.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields :func:`collate_patches` dicts. No shuffling (every index is already a random
        draw), non-persistent workers (so each iteration sees the current epoch), and a loader
        generator seeded from ``dataset.seed`` so iterating never touches the global torch RNG.
    """
    if not isinstance(dataset, PatchDataset):
        raise TypeError(f"Expected `dataset` to be a PatchDataset, but got {type(dataset).__name__}.")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be a positive integer, but got {batch_size!r}.")
    if not _is_int(workers) or workers < 0:
        raise ValueError(f"Expected `workers` to be a non-negative integer, but got {workers!r}.")
    generator = torch.Generator()
    generator.manual_seed(dataset.seed)
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=False,
        num_workers=int(workers),
        collate_fn=collate_patches,
        drop_last=False,
        persistent_workers=False,
        generator=generator,
    )


def _is_foreground_sample(index: int, fraction: float) -> bool:
    """Stratified foreground patches: ``ceil((i + 1) f) > ceil(i f)``, robust to rounding."""
    return _ceil(index + 1, fraction) > _ceil(index, fraction)


def _ceil(n: int, fraction: float) -> int:
    return math.ceil(n * fraction - 1e-9)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

