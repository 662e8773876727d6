"""`workbench export-nnunet`: dataset.json (labels, regions_class_order), file layout, copies, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from workbench.cli import main as workbench
from workbench.data.manifest import CaseEntry, Manifest
from workbench.data.nifti import save_nifti
from workbench.integrations.nnunet.export import (
    dataset_folder_name,
    export_dataset,
    nnunet_labels,
)
from workbench.labels import BINARY, BRATS_GLIOMA, BRATS_METS_2025, LabelSchema

GAPPED = LabelSchema("gapped", labels={2: "A", 5: "B"}, regions={"AB": (2, 5), "B": (5,)})


def _paint(label: np.ndarray, order: list[int], regions: dict) -> np.ndarray:
    """nnU-Net's conversion of region masks back to a label map (later regions overwrite earlier)."""
    out = np.zeros_like(label)
    for value, members in zip(order, regions.values()):
        out[np.isin(label, members)] = value
    return out


@pytest.mark.parametrize("schema", [BRATS_METS_2025, BRATS_GLIOMA, BINARY, GAPPED])
def test_region_labels_paint_every_label_map_back(schema):
    labels, order = nnunet_labels(schema, "region")
    assert labels["background"] == 0 and list(labels)[1:] == list(schema.regions)
    every = np.array([0, *schema.label_values])
    np.testing.assert_array_equal(_paint(every, order, schema.regions), every)


def test_brats_mets_regions_are_those_nnunet_trains():
    labels, order = nnunet_labels(BRATS_METS_2025)
    assert labels == {"background": 0, "WT": [1, 2, 3], "TC": [1, 3], "ET": [3], "RC": [4]}
    assert order == [2, 1, 3, 4]
    assert nnunet_labels(BRATS_METS_2025, "label") == ({"background": 0, "NETC": 1, "SNFH": 2, "ET": 3, "RC": 4}, None)


def test_regions_that_cannot_be_painted_back_are_refused():
    overlapping = LabelSchema("bad", labels={1: "A", 2: "B", 3: "C"}, regions={"ABC": (1, 2, 3), "C": (3,)})
    with pytest.raises(ValueError, match=r"region 'ABC' \[1, 2, 3\] leaves labels \[1, 2\]"):
        nnunet_labels(overlapping)
    uncovered = LabelSchema("gap", labels={1: "A", 2: "B"}, regions={"A": (1,)})
    with pytest.raises(ValueError, match=r"labels \[2\] belong to no region"):
        nnunet_labels(uncovered)
    with pytest.raises(ValueError, match="defines no regions"):
        nnunet_labels(LabelSchema("plain", labels={1: "A"}))


def test_dataset_folder_name_checks_id_and_cleans_name():
    assert dataset_folder_name(7, "my data/v2") == "Dataset007_my_data_v2"
    for bad in (0, 1000, True, 1.5):
        with pytest.raises(ValueError, match="dataset id in 1..999"):
            dataset_folder_name(bad, "x")


def _manifest(tmp_path, schema=GAPPED, splits=("train", "train", "test"), labelled=(True, True, True)) -> Manifest:
    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.5, 2.0, 1.0])
    cases = []
    for i, (split, has_label) in enumerate(zip(splits, labelled)):
        folder = tmp_path / "data" / f"c{i}"
        folder.mkdir(parents=True)
        images = {}
        for modality in ("t1", "t2"):
            images[modality] = folder / f"{modality}.nii.gz"
            save_nifti(images[modality], rng.normal(size=(6, 7, 8)).astype(np.float32), affine)
        label = None
        if has_label:
            label = folder / "seg.nii"  # plain .nii: re-encoded as .nii.gz
            values = np.array([0, *schema.label_values])
            save_nifti(label, values[rng.integers(0, len(values), size=(6, 7, 8))].astype(np.uint8), affine)
        cases.append(CaseEntry(f"c{i}", images, label, split))
    return Manifest("toy set", schema, ("t1", "t2"), tuple(cases), tmp_path / "data")


def test_export_writes_nnunets_layout_with_copied_images_and_renumbered_labels(tmp_path):
    manifest = _manifest(tmp_path)
    folder = export_dataset(manifest, tmp_path / "raw", 42, mode="label")
    assert folder == tmp_path / "raw" / "Dataset042_toy_set"
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "A": 1, "B": 2} and "regions_class_order" not in dataset
    assert dataset["channel_names"] == {"0": "t1", "1": "t2"}
    assert dataset["numTraining"] == 2 and dataset["file_ending"] == ".nii.gz"
    assert dataset["workbench"]["splits"] == {"c0": "train", "c1": "train", "c2": "test"}
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [
        "c0_0000.nii.gz", "c0_0001.nii.gz", "c1_0000.nii.gz", "c1_0001.nii.gz",
    ]
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["c2_0000.nii.gz", "c2_0001.nii.gz"]
    assert (folder / "imagesTr" / "c1_0001.nii.gz").read_bytes() == manifest.cases[1].images["t2"].read_bytes()
    source = nib.load(manifest.cases[0].label)
    written = nib.load(folder / "labelsTr" / "c0.nii.gz")
    lut = {0: 0, 2: 1, 5: 2}
    expected = np.vectorize(lut.get)(np.asarray(source.dataobj))
    np.testing.assert_array_equal(np.asarray(written.dataobj), expected)
    np.testing.assert_allclose(written.affine, source.affine)
    assert (folder / "labelsTs" / "c2.nii.gz").is_file()
    assert not [p for p in (tmp_path / "raw").iterdir() if p.name.startswith(".")]


def test_region_export_keeps_label_values(tmp_path):
    manifest = _manifest(tmp_path)
    folder = export_dataset(manifest, tmp_path / "raw", 43, test_split=None)
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "AB": [2, 5], "B": [5]} and dataset["regions_class_order"] == [2, 5]
    assert dataset["numTraining"] == 3 and not (folder / "imagesTs").exists()
    written = np.asarray(nib.load(folder / "labelsTr" / "c2.nii.gz").dataobj)
    np.testing.assert_array_equal(written, np.asarray(nib.load(manifest.cases[2].label).dataobj))


def test_unlabelled_cases_go_to_images_ts(tmp_path):
    folder = export_dataset(_manifest(tmp_path, labelled=(True, False, True)), tmp_path / "raw", 44, test_split=None)
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["c1_0000.nii.gz", "c1_0001.nii.gz"]
    assert not (folder / "labelsTs").exists()


def test_existing_ids_are_not_clobbered_and_failures_leave_nothing(tmp_path):
    manifest = _manifest(tmp_path)
    raw = tmp_path / "raw"
    first = export_dataset(manifest, raw, 50)
    with pytest.raises(FileExistsError, match="already holds dataset id 50; pass overwrite"):
        export_dataset(manifest, raw, 50)
    with pytest.raises(FileExistsError, match="choose another --id"):
        export_dataset(manifest, raw, 50, name="other", overwrite=True)
    (first / "stale.txt").write_text("old")
    assert export_dataset(manifest, raw, 50, overwrite=True) == first and not (first / "stale.txt").exists()
    manifest.cases[1].images["t1"].unlink()
    with pytest.raises(FileNotFoundError):
        export_dataset(manifest, raw, 51)
    assert sorted(p.name for p in raw.iterdir()) == [first.name]


def test_no_training_case_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no labelled case outside split 'test'"):
        export_dataset(_manifest(tmp_path, splits=("test",) * 3), tmp_path / "raw", 45)


def test_cli_reports_clashes_as_errors(tmp_path, capsys):
    manifest = _manifest(tmp_path, schema=BINARY)
    export_dataset(manifest, tmp_path / "raw", 60, name="toy")
    from workbench.data.manifest import write_manifest

    write_manifest(manifest, tmp_path / "toy.yaml")
    assert workbench(["export-nnunet", str(tmp_path / "toy.yaml"), str(tmp_path / "raw"), "--id", "60"]) == 1
    assert "already holds dataset id 60" in capsys.readouterr().err
