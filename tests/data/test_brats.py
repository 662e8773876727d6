"""BraTS-METS 2025 folder scan (workbench.data.brats)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workbench.data.brats import MODALITIES, scan_brats_mets
from workbench.data.manifest import ManifestError, read_manifest, validate_files, write_manifest
from workbench.labels import BRATS_METS_2025


def _brats_case(
    parent: Path, case_id: str, *, seg: bool = True, skip: tuple[str, ...] = (), ext: str = ".nii.gz"
) -> Path:
    """Write a 4×4×4 case folder in the challenge layout."""
    folder = parent / case_id
    folder.mkdir(parents=True)
    for suffix in (*MODALITIES, "seg") if seg else MODALITIES:
        if suffix in skip:
            continue
        data = np.zeros((4, 4, 4), np.uint8 if suffix == "seg" else np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), folder / f"{case_id}-{suffix}{ext}")
    return folder


def test_scan_lists_cases_sorted_with_modality_paths_and_split(tmp_path):
    for case_id in ("BraTS-MET-00123-001", "BraTS-MET-00007-000", "BraTS-MET-00123-000"):
        _brats_case(tmp_path, case_id)
    (tmp_path / "notes").mkdir()  # not a case folder: ignored
    (tmp_path / "README.txt").write_text("hello")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every case has a seg: no warning
        manifest = scan_brats_mets(tmp_path, split="train")

    assert [c.id for c in manifest.cases] == ["BraTS-MET-00007-000", "BraTS-MET-00123-000", "BraTS-MET-00123-001"]
    assert manifest.schema is BRATS_METS_2025 and manifest.modalities == ("t1n", "t1c", "t2w", "t2f")
    assert manifest.name == "brats_mets_2025" and manifest.root == tmp_path
    case = manifest.case("BraTS-MET-00007-000")
    assert case.images["t2f"] == tmp_path / "BraTS-MET-00007-000" / "BraTS-MET-00007-000-t2f.nii.gz"
    assert case.label == tmp_path / "BraTS-MET-00007-000" / "BraTS-MET-00007-000-seg.nii.gz"
    assert {c.split for c in manifest.cases} == {"train"}
    validate_files(manifest)


def test_missing_seg_gives_label_none_and_one_warning(tmp_path):
    _brats_case(tmp_path, "BraTS-MET-00001-000")
    _brats_case(tmp_path, "BraTS-MET-00002-000", seg=False)
    _brats_case(tmp_path, "BraTS-MET-00003-000", seg=False)
    with pytest.warns(UserWarning, match=r"2 of 3 cases in .* have no segmentation") as record:
        manifest = scan_brats_mets(tmp_path, name="val", split="val")
    assert len(record) == 1
    assert manifest.name == "val"
    assert [c.label is None for c in manifest.cases] == [False, True, True]


def test_missing_modality_names_folder_and_files(tmp_path):
    _brats_case(tmp_path, "BraTS-MET-00001-000")
    folder = _brats_case(tmp_path, "BraTS-MET-00002-000", skip=("t1c", "t2f"))
    expected = f"{folder}: missing ['BraTS-MET-00002-000-t1c.nii.gz', 'BraTS-MET-00002-000-t2f.nii.gz']"
    with pytest.raises(ManifestError, match=r"1 case folders lack modality files:\n  - " + re.escape(expected)):
        scan_brats_mets(tmp_path)


def test_nested_root_and_plain_nii(tmp_path):
    nested = tmp_path / "MICCAI-LH-BraTS2025-MET-Challenge-Training"
    _brats_case(nested, "BraTS-MET-00002-000", ext=".nii")
    _brats_case(nested, "BraTS-MET-00001-000")
    manifest = scan_brats_mets(tmp_path)
    assert [c.id for c in manifest.cases] == ["BraTS-MET-00001-000", "BraTS-MET-00002-000"]
    assert manifest.case("BraTS-MET-00002-000").images["t1n"].name == "BraTS-MET-00002-000-t1n.nii"
    assert manifest.root == tmp_path

    write_manifest(manifest, tmp_path / "brats.yaml")  # paths written relative to the root
    again = read_manifest(tmp_path / "brats.yaml")
    assert again.cases == manifest.cases


def test_no_case_folders_names_root_and_pattern(tmp_path):
    (tmp_path / "BraTS-MET-1-0").mkdir()  # wrong digit counts
    message = re.escape(f"No BraTS-METS case folders in {tmp_path}") + r".*BraTS-MET-XXXXX-XXX"
    with pytest.raises(ManifestError, match=message):
        scan_brats_mets(tmp_path)


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"BraTS-METS root .*absent is not a folder"):
        scan_brats_mets(tmp_path / "absent")
