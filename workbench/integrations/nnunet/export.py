"""A workbench manifest written as an nnU-Net v2 raw dataset (``workbench export-nnunet``).

Layout (nnU-Net's ``dataset_format.md``)::

    RAW/Dataset{ID}_{NAME}/
        dataset.json
        imagesTr/{case}_{0000..C-1}.nii.gz    labelsTr/{case}.nii.gz    (cases with a label, not in the test split)
        imagesTs/{case}_{0000..C-1}.nii.gz    labelsTs/{case}.nii.gz    (the test split; labelsTs for evaluation)

Region mode (the default, as nnU-Net trains BraTS): ``labels`` maps each region of the schema to
its label values and ``regions_class_order`` gives the label each region paints when nnU-Net turns
region predictions back into a label map (later regions overwrite earlier ones). Both follow the
schema's paint order, :func:`~workbench.labels.region_paint_order`, the one that
:func:`~workbench.labels.regions_to_labels` paints workbench's own predictions by; label files are
the manifest's own. Softmax mode: one label per class, renumbered to ``0..C`` when the schema's
values are not consecutive. Files already in ``.nii.gz`` are copied byte for byte. The dataset is
assembled in a temporary folder and renamed into place, so a dataset folder is never half written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from workbench._paths import case_file_name, inside
from workbench._validate import check_choice
from workbench.data.manifest import CaseEntry, Manifest
from workbench.labels import LabelSchema, region_paint_order

__all__ = ["dataset_folder_name", "export_dataset", "nnunet_labels"]

ExportMode = Literal["region", "label"]


def nnunet_labels(schema: LabelSchema, mode: ExportMode = "region") -> tuple[dict[str, Any], list[int] | None]:
    """``labels`` and ``regions_class_order`` of an nnU-Net ``dataset.json`` for a label schema.

    Parameters
    ----------
    schema : LabelSchema
    mode : {"region", "label"}
        Region-based (sigmoid) training on the schema's regions, or one class per label (softmax).

    Returns
    -------
    labels : dict
        ``{"background": 0, name: value or [values], ...}``.
    regions_class_order : list of int or None
        Region mode: the label each region of ``labels`` paints, regions in the schema's paint
        order (:func:`~workbench.labels.region_paint_order`: the schema's order for the bundled
        schemas); None in label mode.

    Raises
    ------
    ValueError
        Region mode for a schema without regions, with regions that have no paint order
        (:func:`~workbench.labels.region_paint_order`), or with labels in no region.

    Examples
    --------
    >>> from workbench.labels import BRATS_METS_2025
    >>> labels, order = nnunet_labels(BRATS_METS_2025)
    >>> labels
    {'background': 0, 'WT': [1, 2, 3], 'TC': [1, 3], 'ET': [3], 'RC': [4]}
    >>> order
    [2, 1, 3, 4]
    """
    if check_choice("mode", mode, ("region", "label")) == "label":
        return {"background": 0, **{name: i for i, name in enumerate(schema.class_names, start=1)}}, None
    if not schema.regions:
        raise ValueError(f"Schema {schema.name!r} defines no regions; export it with mode='label'.")
    try:
        paint = region_paint_order(schema)
    except ValueError as error:
        raise ValueError(f"{error} Export it with mode='label' instead.") from None
    order = [value for _, value in paint]
    uncovered = sorted(set(schema.label_values) - set(order))
    if uncovered:
        raise ValueError(f"Schema {schema.name!r}: labels {uncovered} belong to no region; export with mode='label'.")
    names, members = schema.region_names, list(schema.regions.values())
    return {"background": 0, **{names[i]: sorted(members[i]) for i, _ in paint}}, order


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset{ID:03d}_{name}`` with characters other than letters, digits, ``-`` and ``_`` replaced."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, (int, np.integer)) or not 1 <= dataset_id <= 999:
        raise ValueError(f"Expected a dataset id in 1..999, but got {dataset_id!r}.")
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    if not clean:
        raise ValueError(f"Expected a dataset name with letters or digits, but got {name!r}.")
    return f"Dataset{int(dataset_id):03d}_{clean}"


def export_dataset(
    manifest: Manifest,
    raw_dir: str | os.PathLike[str],
    dataset_id: int,
    *,
    name: str | None = None,
    mode: ExportMode = "region",
    test_split: str | None = "test",
    overwrite: bool = False,
) -> Path:
    """Write ``manifest`` as the nnU-Net raw dataset ``raw_dir/Dataset{ID}_{NAME}``.

    Parameters
    ----------
    manifest : Manifest
        Every file must exist (:func:`~workbench.data.manifest.load_manifest` creates a
        generated cohort's files).
    raw_dir : path
        nnU-Net's ``nnUNet_raw`` folder (created if missing).
    dataset_id : int
        1..999; nnU-Net reserves nothing, but ids ≥ 500 stay clear of its public datasets.
    name : str, optional
        Default: the manifest's name.
    mode : {"region", "label"}
        See :func:`nnunet_labels`.
    test_split : str or None
        Cases of this split go to ``imagesTs`` (with ``labelsTs``); None: every labelled case is
        a training case. Cases without a label always go to ``imagesTs``.
    overwrite : bool
        Replace an existing dataset folder of the same id and name.

    Returns
    -------
    folder : Path

    Raises
    ------
    FileExistsError
        A dataset with this id exists in ``raw_dir`` (under any name, since nnU-Net finds datasets
        by id), unless ``overwrite`` and it has the same name.
    ValueError
        From :func:`nnunet_labels`, a bad id or name, a manifest with no training case, or a case
        file that would lie outside the dataset folder (nothing is left behind).
    """
    labels, order = nnunet_labels(manifest.schema, mode)
    folder_name = dataset_folder_name(dataset_id, name or manifest.name)
    destination = _free_destination(Path(raw_dir), folder_name, dataset_id, overwrite)
    training, testing = _split_cases(manifest, test_split)
    remap = _label_lut(manifest.schema) if mode == "label" else None
    dataset = _dataset_json(manifest, folder_name, labels, order, mode, len(training))
    staging = destination.parent / f".{folder_name}.tmp-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        parts = [("Tr", case) for case in training] + [("Ts", case) for case in testing]
        for part, case in tqdm(parts, desc=f"exporting {folder_name}", unit="case", disable=None):
            _write_case(case, manifest.modalities, staging / f"images{part}", staging / f"labels{part}", remap)
        (staging / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return destination


def _free_destination(raw_dir: Path, folder_name: str, dataset_id: int, overwrite: bool) -> Path:
    """``raw_dir / folder_name`` (``raw_dir`` created if missing), after checking no other dataset has the id.

    Raises
    ------
    FileExistsError
        As :func:`export_dataset`.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    destination = raw_dir / folder_name
    clashes = sorted(p for p in raw_dir.glob(f"Dataset{int(dataset_id):03d}_*") if not p.name.startswith("."))
    if clashes and not (overwrite and clashes == [destination]):
        raise FileExistsError(
            f"{clashes[0]} already holds dataset id {dataset_id}"
            + ("; pass overwrite=True (--overwrite) to replace it." if clashes == [destination] else "; choose another --id.")
        )
    return destination


def _split_cases(manifest: Manifest, test_split: str | None) -> tuple[list[CaseEntry], list[CaseEntry]]:
    """Training cases (labelled, outside ``test_split``) and the others, each in manifest order.

    Raises
    ------
    ValueError
        If there is no training case.
    """
    training = [c for c in manifest.cases if c.label is not None and (test_split is None or c.split != test_split)]
    training_ids = {c.id for c in training}
    if not training:
        raise ValueError(f"Manifest {manifest.name!r} has no labelled case outside split {test_split!r} to train on.")
    return training, [c for c in manifest.cases if c.id not in training_ids]


def _dataset_json(
    manifest: Manifest,
    folder_name: str,
    labels: dict[str, Any],
    order: list[int] | None,
    mode: ExportMode,
    num_training: int,
) -> dict[str, Any]:
    """The ``dataset.json`` of the export: nnU-Net's fields, and workbench's provenance under ``"workbench"``."""
    return {
        "name": folder_name.split("_", 1)[1],
        "description": f"Exported by workbench from manifest {manifest.name!r} (schema {manifest.schema.name!r}).",
        "channel_names": {str(i): m for i, m in enumerate(manifest.modalities)},
        "labels": labels,
        **({"regions_class_order": order} if order is not None else {}),
        "numTraining": num_training,
        "file_ending": ".nii.gz",
        "workbench": {
            "manifest": str(manifest.source) if manifest.source else None,
            "schema": manifest.schema.name,
            "mode": mode,
            "splits": {c.id: c.split for c in manifest.cases},
        },
    }


def _write_case(
    case: CaseEntry, modalities: tuple[str, ...], images: Path, labels: Path, remap: np.ndarray | None
) -> None:
    images.mkdir(exist_ok=True)
    for channel, modality in enumerate(modalities):
        target = inside(images, images / case_file_name(case.id, f"_{channel:04d}.nii.gz"))
        _copy_as_nii_gz(case.images[modality], target, None)
    if case.label is not None:
        labels.mkdir(exist_ok=True)
        _copy_as_nii_gz(case.label, inside(labels, labels / case_file_name(case.id)), remap)


def _copy_as_nii_gz(source: Path, target: Path, remap: np.ndarray | None) -> None:
    """Copy a NIfTI file as ``.nii.gz``: bytes as they are when possible, else re-encoded (voxel order kept)."""
    if remap is None and source.name.lower().endswith(".nii.gz"):
        shutil.copyfile(source, target)
        return
    image = nib.load(source)
    data = np.asanyarray(image.dataobj)
    if remap is not None:
        data = remap[data.astype(np.int64)].astype(np.uint8)
    header = image.header.copy()
    header.set_data_dtype(data.dtype)
    nib.save(nib.Nifti1Image(data, image.affine, header), target)


def _label_lut(schema: LabelSchema) -> np.ndarray | None:
    """Label value -> class index lookup table, or None when the values already are ``1..C``."""
    values = schema.label_values
    if values == tuple(range(1, len(values) + 1)):
        return None
    lut = np.zeros(max(values) + 1, dtype=np.int64)
    lut[list(values)] = np.arange(1, len(values) + 1)
    return lut
