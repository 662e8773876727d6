"""Phantom cohorts on disk: NIfTI files plus a manifest, so phantoms load like real data.

:func:`make_cohort` writes ``n`` cases of :func:`workbench.data.phantoms.make_case` and their
manifest. The manifest records how it was made (``generator: {name: phantoms, ...}``), so a
manifest whose files are missing — the default cohort in ``data_manifests/``, on a fresh
machine — is regenerated on first use by :func:`workbench.data.manifest.load_manifest`, which
calls :func:`write_cohort` through the ``"phantoms"`` generator registry entry.

Layout under the cohort folder::

    manifest.yaml
    phantom-000/phantom-000-t1n.nii.gz  ... -t1c, -t2w, -t2f, -seg.nii.gz

Splits are assigned by case index: the first 60 % ``train``, the next 20 % ``val``, the rest
``test`` (cases are independent draws, so order carries no bias), or given counts of ``train``
and ``val`` cases (the rest ``test``).

The default cohort (:data:`DEFAULT_COHORT`) is sized for a CPU: 52 cases of 64 × 80 × 64 voxels
at 2 mm (the brain's field of view, slightly cropped), at least 4 metastases per case and lesions
from 32 mm³, split 24 train / 4 val / 24 test, so that the 24 held-out test cases hold about 190
lesions per region (WT, TC, ET), about 40 of them under 100 mm³, and a resection cavity in 5.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from workbench._paths import refuse_existing
from workbench.data.manifest import GENERATORS, CaseEntry, Manifest, write_manifest
from workbench.data.nifti import save_nifti
from workbench.data.phantoms import GENERATOR_VERSION, MODALITIES, make_case
from workbench.labels import BRATS_METS_2025

__all__ = [
    "DEFAULT_COHORT",
    "cohort_manifest",
    "default_manifest_path",
    "make_cohort",
    "write_cohort",
]

DEFAULT_COHORT: dict[str, Any] = {
    "name": "phantoms_default", "n": 52, "seed": 0, "shape": (64, 80, 64), "spacing": (2.0, 2.0, 2.0),
    "min_lesions": 4, "smallest_mm3": 32.0, "splits": (24, 4),
}
"""The embedded default data (module docstring): 52 CPU-sized phantom cases, 24 of them held out for testing."""

_SPLIT_FRACTIONS = (("train", 0.6), ("val", 0.2))


def case_id(index: int) -> str:
    """Id of the ``index``-th phantom case of a cohort."""
    return f"phantom-{index:03d}"


def case_seed(cohort_seed: int, index: int) -> int:
    """Seed of one case, independent across cases and cohorts (numpy SeedSequence)."""
    return int(np.random.SeedSequence([cohort_seed, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def cohort_manifest(
    n: int,
    seed: int,
    root: str | os.PathLike[str],
    *,
    shape: Sequence[int] = (96, 96, 96),
    spacing: Sequence[float] | None = None,
    name: str = "phantoms",
    min_lesions: int = 1,
    smallest_mm3: float | None = None,
    splits: Sequence[int] | None = None,
) -> Manifest:
    """The manifest of a phantom cohort, without writing anything.

    Parameters
    ----------
    n : int
        Number of cases (≥ 1).
    seed : int
        Cohort seed; case ``i`` uses :func:`case_seed` ``(seed, i)``.
    root : path
        Folder of the cohort's files (may contain ``{cache}`` once written to a manifest).
    shape : sequence of 3 int
    spacing : sequence of 3 float, optional
        mm per voxel; default: isotropic, fitted to the brain.
    name : str
    min_lesions, smallest_mm3
        Of :func:`workbench.data.phantoms.make_case`.
    splits : (n_train, n_val), optional
        Cases per split, in case order, the rest ``test``; default 60 % / 20 % / 20 %.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"Expected `n` to be a positive number of cases, but got {n!r}.")
    root = Path(root)
    n_train, n_val = _split_counts(n, splits)
    cases = []
    for i in range(n):
        cid = case_id(i)
        split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        images = {m: root / cid / f"{cid}-{m}.nii.gz" for m in MODALITIES}
        cases.append(CaseEntry(cid, images, root / cid / f"{cid}-seg.nii.gz", split))
    generator = {
        "name": "phantoms",
        "version": GENERATOR_VERSION,
        "n": int(n),
        "seed": int(seed),
        "shape": [int(s) for s in shape],
        "spacing": None if spacing is None else [float(s) for s in spacing],
        "min_lesions": int(min_lesions),
        "smallest_mm3": None if smallest_mm3 is None else float(smallest_mm3),
    }
    return Manifest(name, BRATS_METS_2025, MODALITIES, tuple(cases), root, generator)


def write_cohort(manifest: Manifest) -> None:
    """Write every missing file of a phantom cohort's manifest (the ``"phantoms"`` generator).

    Raises
    ------
    ValueError
        If the manifest's generator options are not a phantom cohort's, were made by another
        generator version, or its case ids differ from the cohort's.
    """
    options = dict(manifest.generator or {})
    if options.get("version") != GENERATOR_VERSION:
        raise ValueError(
            f"Manifest {manifest.name!r} was made by phantom generator version {options.get('version')!r}; "
            f"this workbench has version {GENERATOR_VERSION}. Regenerate it with `workbench phantoms`."
        )
    if [c.id for c in manifest.cases] != [case_id(i) for i in range(options["n"])]:
        raise ValueError(f"Manifest {manifest.name!r}: case ids differ from those of its phantom generator options.")
    missing = [
        (i, case)
        for i, case in enumerate(manifest.cases)
        if not all(p.is_file() for p in (*case.images.values(), case.label))
    ]
    _write_cases(manifest, missing)


GENERATORS["phantoms"] = write_cohort


def _write_cases(manifest: Manifest, cases: list[tuple[int, CaseEntry]]) -> None:
    """Generate and write the files of ``cases`` (``(index, entry)`` pairs) of a phantom cohort's manifest."""
    options = dict(manifest.generator)
    spacing = None if options.get("spacing") is None else tuple(options["spacing"])
    for i, case in tqdm(cases, desc=f"generating {manifest.name}", unit="case", disable=None):
        phantom = make_case(
            case_seed(options["seed"], i), shape=tuple(options["shape"]), spacing=spacing,
            min_lesions=options.get("min_lesions", 1), smallest_mm3=options.get("smallest_mm3"),
        )
        affine = _centred_affine(phantom.label.shape, phantom.spacing)
        (manifest.root / case.id).mkdir(parents=True, exist_ok=True)
        for channel, modality in zip(phantom.image, MODALITIES):
            save_nifti(case.images[modality], channel, affine)
        save_nifti(case.label, phantom.label, affine)


def make_cohort(
    n: int,
    seed: int,
    out_dir: str | os.PathLike[str],
    *,
    shape: Sequence[int] = (96, 96, 96),
    spacing: Sequence[float] | None = None,
    name: str = "phantoms",
    min_lesions: int = 1,
    smallest_mm3: float | None = None,
    splits: Sequence[int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` phantom cases as NIfTI files and their manifest into ``out_dir``
    (other parameters: :func:`cohort_manifest`).

    Parameters
    ----------
    out_dir : str or PathLike
        Created if missing; a relative folder is taken from the current folder.
    overwrite : bool, default False
        Write into a folder that is not empty, regenerating every case's files and the manifest
        (other files there are left as they are).

    Returns
    -------
    manifest_path : Path
        ``out_dir/manifest.yaml``; load it with :func:`workbench.data.manifest.load_manifest`.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is not empty (an earlier cohort) and ``overwrite`` is off.
    """
    out_dir = Path(os.path.abspath(out_dir))
    refuse_existing(out_dir, overwrite=overwrite, what="cohort")
    manifest = cohort_manifest(
        n, seed, out_dir, shape=shape, spacing=spacing, name=name, min_lesions=min_lesions,
        smallest_mm3=smallest_mm3, splits=splits,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_cases(manifest, list(enumerate(manifest.cases)))
    path = out_dir / "manifest.yaml"
    write_manifest(manifest, path)
    return path


def default_manifest_path() -> Path:
    """The default cohort's manifest: ``data_manifests/phantoms_default.yaml`` of a source checkout,
    or, for an installed wheel, the same manifest written once into the cache."""
    from workbench.data.manifest import cache_dir

    checkout = Path(__file__).resolve().parents[2] / "data_manifests" / "phantoms_default.yaml"
    if checkout.is_file():
        return checkout
    path = cache_dir() / "manifests" / "phantoms_default.yaml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(default_cohort_manifest(), path)
    return path


def default_cohort_manifest() -> Manifest:
    """The manifest of :data:`DEFAULT_COHORT`, rooted in the cache (files made on first use)."""
    from workbench.data.manifest import cache_dir

    spec = dict(DEFAULT_COHORT)
    name = spec.pop("name")
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    root = cache_dir() / f"{name}-v{GENERATOR_VERSION}-{digest}"  # another recipe never reuses these files
    return cohort_manifest(spec.pop("n"), spec.pop("seed"), root, name=name, **spec)


def _split_counts(n: int, splits: Sequence[int] | None) -> tuple[int, int]:
    """``(n_train, n_val)`` of a cohort of ``n`` cases."""
    if splits is None:
        return round(n * _SPLIT_FRACTIONS[0][1]), round(n * _SPLIT_FRACTIONS[1][1])
    if len(splits) != 2 or not all(isinstance(k, (int, np.integer)) and k >= 0 for k in splits) or sum(splits) > n:
        raise ValueError(
            f"Expected `splits` to be two non-negative case counts (train, val) summing to at most n = {n}, but got {splits!r}."
        )
    return int(splits[0]), int(splits[1])


def _centred_affine(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """Voxel -> mm affine with the given spacing and the volume's centre at the origin."""
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -0.5 * (np.asarray(shape) - 1) * np.asarray(spacing)
    return affine
