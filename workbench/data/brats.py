"""Build a :class:`~workbench.data.manifest.Manifest` from a BraTS-METS 2025 folder.

The challenge's layout is one folder per case::

    ROOT/BraTS-MET-00001-000/BraTS-MET-00001-000-t1n.nii.gz
                             BraTS-MET-00001-000-t1c.nii.gz
                             BraTS-MET-00001-000-t2w.nii.gz
                             BraTS-MET-00001-000-t2f.nii.gz
                             BraTS-MET-00001-000-seg.nii.gz   (training cases only)

Files may also end in ``.nii``, and the case folders may sit one level deeper (the archives
unpack into e.g. ``ROOT/MICCAI-LH-BraTS2025-MET-Challenge-Training/``). Only folder listings are
read; :func:`~workbench.data.manifest.validate_files` checks the files themselves.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from workbench.data.manifest import CaseEntry, Manifest, ManifestError
from workbench.labels import BRATS_METS_2025

__all__ = ["CASE_PATTERN", "MODALITIES", "patient_id", "scan_brats_mets"]

CASE_PATTERN = re.compile(r"BraTS-MET-\d{5}-\d{3}")
"""A case folder's name, which is also the case id and the file-name prefix."""


def patient_id(case_id: str) -> str:
    """The patient of a case: ``BraTS-MET-00123-001`` (patient 00123, time point 001) -> ``BraTS-MET-00123``.

    A patient's time points share lesions, so splits keep them together
    (``assign_splits(..., group=patient_id)``); an id outside the challenge's pattern is its own patient.
    """
    return case_id[: -len("-000")] if CASE_PATTERN.fullmatch(case_id) else case_id

MODALITIES = ("t1n", "t1c", "t2w", "t2f")
"""Image channels in BraTS order: native T1, contrast-enhanced T1, T2, T2-FLAIR."""

_EXTENSIONS = (".nii.gz", ".nii")


def scan_brats_mets(
    root: str | os.PathLike[str], *, name: str = "brats_mets_2025", split: str | None = None
) -> Manifest:
    """List the cases of a BraTS-METS 2025 folder as a manifest (no voxel data is read).

    Parameters
    ----------
    root : str or PathLike
        Folder holding the ``BraTS-MET-XXXXX-XXX`` case folders, directly or one level deeper.
    name : str, default "brats_mets_2025"
        Name of the returned manifest.
    split : str, optional
        Split given to every case (e.g. ``"train"`` for the training archive).

    Returns
    -------
    manifest : Manifest
        Schema ``brats_mets_2025``, modalities ``("t1n", "t1c", "t2w", "t2f")``, cases sorted by
        id, ``root`` the given folder; cases without a ``-seg`` file have ``label=None``.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    ManifestError
        If no case folder is found (the message names ``root`` and the expected pattern), or
        case folders lack modality files (each folder listed with its missing files).

    Warns
    -----
    UserWarning
        Once, with their count, if some cases have no segmentation (validation / test data).
    """
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.is_dir():
        raise FileNotFoundError(f"BraTS-METS root {root} is not a folder.")
    folders = _case_folders(root)
    if not folders:
        raise ManifestError(
            f"No BraTS-METS case folders in {root} or its subfolders; expected folders named "
            f"BraTS-MET-XXXXX-XXX (5 + 3 digits) holding BraTS-MET-XXXXX-XXX-{{{','.join(MODALITIES)},seg}}.nii.gz."
        )
    cases, problems = [], []
    for folder in folders:
        images = {m: _find(folder, m) for m in MODALITIES}
        missing = [f"{folder.name}-{m}.nii.gz" for m, file in images.items() if file is None]
        if missing:
            problems.append(f"{folder}: missing {missing}")
            continue
        cases.append(CaseEntry(id=folder.name, images=images, label=_find(folder, "seg"), split=split))
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ManifestError(f"BraTS-METS folder {root}: {len(problems)} case folders lack modality files:\n{listing}")
    unlabelled = sum(case.label is None for case in cases)
    if unlabelled:
        warnings.warn(
            f"{unlabelled} of {len(cases)} cases in {root} have no segmentation (-seg.nii.gz); their label is None.",
            UserWarning,
            stacklevel=2,
        )
    return Manifest(
        name=name,
        schema=BRATS_METS_2025,
        modalities=MODALITIES,
        cases=tuple(sorted(cases, key=lambda case: case.id)),
        root=root,
    )


def _case_folders(root: Path) -> list[Path]:
    """Case folders directly in ``root``; if there are none, those one level deeper."""
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    folders = [p for p in children if CASE_PATTERN.fullmatch(p.name)]
    if folders:
        return folders
    return [p for child in children for p in sorted(child.iterdir()) if p.is_dir() and CASE_PATTERN.fullmatch(p.name)]


def _find(folder: Path, suffix: str) -> Path | None:
    """``<folder>/<folder name>-<suffix>.nii.gz`` (or ``.nii``) if it is a file."""
    for extension in _EXTENSIONS:
        file = folder / f"{folder.name}-{suffix}{extension}"
        if file.is_file():
            return file
    return None
