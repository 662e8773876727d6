"""Issue 21, data side: case ids as file names, duplicate YAML keys, label values of `manifest brats-mets`,
a manifest's relative root, header spacing vs affine, empty and boolean volumes, and existing outputs."""

from __future__ import annotations

import os
import re
import struct

import nibabel as nib
import numpy as np
import pytest
import yaml

from workbench._yaml import DuplicateKeyError, load_yaml
from workbench.cli import main
from workbench.data.manifest import CaseEntry, Manifest, ManifestError, load_manifest, read_manifest, write_manifest
from workbench.data.nifti import load_label, read_header, save_nifti
from workbench.labels import BINARY, BRATS_METS_2025

BAD_IDS = [("../../x", "path separator"), ("sub/dir", "path separator"), ("/abs/x", "path separator"),
           ("", "it is empty"), (".hidden", "starts with a dot")]


def _cohort(folder, ids, *, labels=None):
    """A one-modality manifest file over 8³ cases; ``labels`` gives each case's label map (default: one lesion)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for k, cid in enumerate(ids):
        stem = f"case{k}"
        label = np.zeros((8, 8, 8), np.uint8)
        label[2:5, 2:5, 2:5] = 3
        save_nifti(folder / f"{stem}-t1.nii.gz", np.ones((8, 8, 8), np.float32))
        save_nifti(folder / f"{stem}-seg.nii.gz", label if labels is None else labels[k])
        cases.append({"id": cid, "images": {"t1": f"{stem}-t1.nii.gz"}, "label": f"{stem}-seg.nii.gz", "split": "test"})
    document = {"name": "toy", "schema": "brats_mets_2025", "modalities": ["t1"], "cases": cases}
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# --- case ids --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case_id", "reason"), BAD_IDS)
def test_manifest_refuses_a_case_id_that_cannot_name_a_file(tmp_path, case_id, reason):
    path = _cohort(tmp_path, ["fine", case_id])
    with pytest.raises(ManifestError, match=re.escape(f"manifest {path}: case #1, field 'id': Case id {case_id!r}")) as error:
        read_manifest(path)
    assert reason in str(error.value)


def test_a_manifest_built_in_python_refuses_such_ids_too(tmp_path):
    case = CaseEntry("../up", {"t1": tmp_path / "a.nii.gz"})
    with pytest.raises(ManifestError, match=r"manifest 'm': case '\.\./up', field 'id': .*path separator"):
        Manifest("m", BINARY, ("t1",), (case,), tmp_path)


def test_perturb_with_a_traversal_id_writes_nothing_anywhere(tmp_path, capsys):
    ref = _cohort(tmp_path / "ref", ["a", "../../escape"])
    before = _tree(tmp_path)
    assert main(["perturb", "--manifest", str(ref), "-o", str(tmp_path / "out" / "pred")]) == 1
    err = capsys.readouterr().err
    assert "'../../escape'" in err and str(ref) in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_perturb_refuses_a_case_file_that_links_out_of_its_folder(tmp_path, capsys):
    ref = _cohort(tmp_path / "ref", ["a", "b"])
    out = tmp_path / "pred"
    out.mkdir()
    victim = tmp_path / "victim.nii.gz"
    victim.write_bytes(b"precious")
    (out / "b.nii.gz").symlink_to(victim)
    assert main(["perturb", "--manifest", str(ref), "-o", str(out), "--overwrite"]) == 1
    assert f"Refusing to write {victim}" in capsys.readouterr().err
    assert victim.read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["b.nii.gz"]  # case 'a' was not written either


def test_export_nnunet_with_a_traversal_id_leaves_nothing(tmp_path, capsys):
    ref = _cohort(tmp_path / "ref", ["a", "b", "../../escape"])
    raw = tmp_path / "raw"
    assert main(["export-nnunet", str(ref), str(raw), "--id", "901", "--test-split", "none"]) == 1
    assert "'../../escape'" in capsys.readouterr().err
    assert not raw.exists() or _tree(raw) == []
    assert not list(tmp_path.glob("escape*"))


# --- duplicate keys ------------------------------------------------------------------------------------------------


def test_a_duplicate_key_in_a_manifest_is_refused_with_its_line(tmp_path):
    path = _cohort(tmp_path, ["a", "b"])
    text = path.read_text().replace("label: case0-seg.nii.gz", "label: case0-seg.nii.gz\n  label: case1-seg.nii.gz")
    path.write_text(text)
    line = text.splitlines().index("  label: case1-seg.nii.gz") + 1
    with pytest.raises(ManifestError, match=re.escape(f"{path}, line {line}: duplicate key 'label' (first given on line {line - 1})")):
        read_manifest(path)


def test_load_yaml_reads_like_safe_load_and_allows_merge_keys():
    text = "base: &b {lr: 0.1, epochs: 2}\nrun:\n  <<: *b\n  lr: 0.2\n"
    assert load_yaml(text, "c.yaml") == yaml.safe_load(text) == {"base": {"lr": 0.1, "epochs": 2}, "run": {"lr": 0.2, "epochs": 2}}
    with pytest.raises(DuplicateKeyError, match=r"c\.yaml, line 3: duplicate key 'lr'"):
        load_yaml("run:\n  lr: 0.1\n  lr: 0.2\n", "c.yaml")
    with pytest.raises(yaml.YAMLError, match=r'in "c\.yaml", line 2'):
        load_yaml("a: [1,\n", "c.yaml")


# --- manifest brats-mets label values ------------------------------------------------------------------------------


def test_manifest_brats_mets_reports_every_label_value_outside_the_schema(tmp_path, capsys):
    root = tmp_path / "raw"
    for cid, value in (("BraTS-MET-00001-000", 7), ("BraTS-MET-00002-000", 3), ("BraTS-MET-00003-000", 9)):
        folder = root / cid
        folder.mkdir(parents=True)
        for modality in ("t1n", "t1c", "t2w", "t2f"):
            save_nifti(folder / f"{cid}-{modality}.nii.gz", np.ones((4, 4, 4), np.float32))
        save_nifti(folder / f"{cid}-seg.nii.gz", np.full((4, 4, 4), value, np.uint8))
    out = tmp_path / "m.yaml"
    assert main(["manifest", "brats-mets", str(root), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "2 problems" in err and "[7]" in err and "[9]" in err
    assert "BraTS-MET-00001-000-seg.nii.gz" in err and "BraTS-MET-00003-000-seg.nii.gz" in err
    assert not out.exists()


# --- a manifest's root ---------------------------------------------------------------------------------------------


def test_a_relative_phantoms_out_writes_a_root_that_resolves_to_the_cohort(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["phantoms", "1", "-o", "coh4", "--shape", "32", "32", "32"]) == 0
    monkeypatch.chdir(tmp_path / "coh4")
    manifest = load_manifest(tmp_path / "coh4" / "manifest.yaml", validate=False)
    assert manifest.root == tmp_path / "coh4"
    assert manifest.case("phantom-000").label.is_file()
    assert not (tmp_path / "coh4" / "coh4").exists()


def test_write_manifest_takes_relative_paths_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    save_nifti(tmp_path / "data" / "a.nii.gz", np.ones((4, 4, 4), np.float32))
    manifest = Manifest("m", BINARY, ("t1",), (CaseEntry("a", {"t1": "data/a.nii.gz"}),), "data")
    (tmp_path / "manifests").mkdir()
    write_manifest(manifest, "manifests/m.yaml")
    monkeypatch.chdir(tmp_path / "manifests")
    read = load_manifest(tmp_path / "manifests" / "m.yaml")
    assert read.root == tmp_path / "data" and read.case("a").images["t1"] == tmp_path / "data" / "a.nii.gz"


# --- NIfTI headers and volumes ---------------------------------------------------------------------------------------


def test_header_spacing_that_contradicts_the_affine_is_an_error(tmp_path):
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_zooms((0.5, 0.5, 0.5))
    nib.save(img, tmp_path / "seg.nii.gz")
    message = r"seg\.nii\.gz: the header's voxel sizes \(pixdim\) \(0\.5, 0\.5, 0\.5\) mm contradict its affine's voxel sizes \(2\.0, 2\.0, 2\.0\) mm"
    with pytest.raises(ValueError, match=message):
        load_label(tmp_path / "seg.nii.gz")
    with pytest.raises(ValueError, match=message):
        read_header(tmp_path / "seg.nii.gz")


def test_a_volume_without_voxels_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((0, 4, 4), np.uint8), np.eye(4)), tmp_path / "empty.nii.gz")
    with pytest.raises(ValueError, match=r"empty\.nii\.gz: the volume holds no voxels \(shape \(0, 4, 4\)\)"):
        read_header(tmp_path / "empty.nii.gz")


def test_a_boolean_mask_is_not_saved_or_read_as_label_one(tmp_path):
    with pytest.raises(TypeError, match=r"pred\.nii\.gz is a boolean mask, not a label map"):
        save_nifti(tmp_path / "pred.nii.gz", np.ones((3, 3, 3), bool))
    assert list(tmp_path.iterdir()) == []
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "bits.nii")
    raw = bytearray((tmp_path / "bits.nii").read_bytes())
    struct.pack_into("<hh", raw, 70, 1, 1)  # datatype DT_BINARY, bitpix 1: a 1-bit mask
    (tmp_path / "bits.nii").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"Cannot read NIfTI file .*bits\.nii: data code 1 not supported"):
        load_label(tmp_path / "bits.nii")


def test_evaluate_refuses_volumes_without_voxels_instead_of_an_empty_table(tmp_path, capsys):
    ref = _cohort(tmp_path / "ref", ["a"])
    (tmp_path / "pred").mkdir()
    empty = nib.Nifti1Image(np.zeros((0, 8, 8), np.uint8), np.eye(4))
    nib.save(empty, tmp_path / "ref" / "case0-seg.nii.gz")
    nib.save(empty, tmp_path / "pred" / "a.nii.gz")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--manifest", str(ref), "-o", str(tmp_path / "eval")]) == 1
    err = capsys.readouterr().err
    assert "case0-seg.nii.gz: the volume holds no voxels" in err and "Traceback" not in err
    assert not (tmp_path / "eval").exists()


# --- existing outputs ----------------------------------------------------------------------------------------------


def test_phantoms_into_an_existing_cohort_refuses_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "cohort"
    assert main(["phantoms", "1", "-o", str(out), "--shape", "32", "32", "32", "--seed", "1"]) == 0
    manifest_text = (out / "manifest.yaml").read_text()
    label = out / "phantom-000" / "phantom-000-seg.nii.gz"
    first = label.read_bytes()
    capsys.readouterr()
    assert main(["phantoms", "1", "-o", str(out), "--shape", "32", "32", "32", "--seed", "2"]) == 1
    err = capsys.readouterr().err
    assert f"{out} already holds an earlier cohort; pass --overwrite" in err
    assert (out / "manifest.yaml").read_text() == manifest_text and label.read_bytes() == first
    assert main(["phantoms", "1", "-o", str(out), "--shape", "32", "32", "32", "--seed", "2", "--overwrite"]) == 0
    assert label.read_bytes() != first and "seed: 2" in (out / "manifest.yaml").read_text()


def test_perturb_into_earlier_predictions_refuses_unless_overwrite(tmp_path, capsys):
    ref = _cohort(tmp_path / "ref", ["a"])
    out = tmp_path / "pred"
    assert main(["perturb", "--manifest", str(ref), "-o", str(out), "--seed", "0"]) == 0
    first = (out / "a.nii.gz").read_bytes()
    assert main(["perturb", "--manifest", str(ref), "-o", str(out), "--seed", "5"]) == 1
    assert f"{out} already holds an earlier set of predictions; pass --overwrite" in capsys.readouterr().err
    assert (out / "a.nii.gz").read_bytes() == first
    assert main(["perturb", "--manifest", str(ref), "-o", str(out), "--seed", "5", "--overwrite"]) == 0
    assert os.listdir(out) == ["a.nii.gz"]
