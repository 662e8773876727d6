"""Predictions: region masks -> label maps, logits -> labels, and `workbench train` / `predict`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from workbench.cli import main
from workbench.data.cohort import make_cohort
from workbench.data.manifest import load_manifest
from workbench.data.nifti import load_label, read_header
from workbench.labels import SCHEMAS, LabelSchema, region_paint_order, regions_to_labels
from workbench.training import predict_manifest
from workbench.training.predict import logits_to_labels


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_region_masks_round_trip_to_the_label_map(name):
    schema = SCHEMAS[name]
    rng = np.random.default_rng(0)
    label = rng.choice((0, *schema.label_values), size=(6, 7, 8)).astype(np.uint8)
    assert np.array_equal(regions_to_labels(schema.to_region_masks(label), schema), label)


def test_nnunet_paint_order_for_brats():
    # a voxel in ET but outside WT still becomes ET: the smallest region is painted last
    masks = np.zeros((4, 1, 3), dtype=bool)
    masks[0, 0, 0] = True          # WT only -> SNFH (2)
    masks[[0, 1], 0, 1] = True     # WT and TC -> NETC (1)
    masks[2, 0, 2] = True          # ET alone -> 3
    assert regions_to_labels(masks, "brats_mets_2025").tolist() == [[2, 1, 3]]


def test_regions_that_do_not_nest_are_rejected():
    crossing = LabelSchema("crossing", {1: "a", 2: "b", 3: "c"}, {"AB": (1, 2), "BC": (2, 3)})
    with pytest.raises(ValueError, match="overlap without nesting"):
        region_paint_order(crossing)
    two_own = LabelSchema("two_own", {1: "a", 2: "b"}, {"AB": (1, 2)})
    with pytest.raises(ValueError, match=r"has labels \[1, 2\] outside its nested regions"):
        region_paint_order(two_own)


def test_softmax_logits_map_back_to_label_values():
    logits = torch.full((5, 1, 4), -5.0)
    for voxel, channel in enumerate((0, 1, 3, 4)):
        logits[channel, 0, voxel] = 5.0
    assert logits_to_labels(logits, "brats_mets_2025", "softmax").tolist() == [[0, 1, 3, 4]]
    sigmoid = torch.full((4, 1, 2), -5.0)
    sigmoid[[0, 1, 2], 0, 1] = 5.0
    assert logits_to_labels(sigmoid, "brats_mets_2025", "sigmoid").tolist() == [[0, 3]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A softmax run trained for one short epoch through `workbench train --config`."""
    folder = tmp_path_factory.mktemp("predict")
    manifest = make_cohort(3, 11, folder / "cohort", shape=(32, 32, 32))
    config = {
        "manifest": str(manifest), "out_dir": str(folder / "run"), "mode": "softmax", "loss": "iwl_blob",
        "filters": [4, 8, 16], "patch_size": [16, 16, 16], "epochs": 1, "steps_per_epoch": 2, "workers": 0,
        "progress": False, "val_cases": [], "predict_final": False, "train_cases": ["phantom-000", "phantom-001"],
    }
    (folder / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(folder / "train.yaml")]) == 0
    return folder / "run", manifest


def test_cli_predict_writes_nifti_in_reference_geometry(trained, tmp_path, capsys):
    run_dir, manifest = trained
    assert main(["predict", str(run_dir), "--manifest", str(manifest), "-o", str(tmp_path), "--split", "val"]) == 0
    assert "wrote 1 predictions" in capsys.readouterr().out
    reference = load_manifest(manifest).case("phantom-002")
    written = read_header(tmp_path / "phantom-002.nii.gz")
    expected = read_header(reference.label)
    assert written.shape == expected.shape
    np.testing.assert_allclose(written.affine, expected.affine, atol=1e-5)
    label, _, _ = load_label(tmp_path / "phantom-002.nii.gz")
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4}


def test_cli_predict_unknown_split_is_an_error(trained, tmp_path, capsys):
    run_dir, manifest = trained
    assert main(["predict", str(run_dir), "--manifest", str(manifest), "-o", str(tmp_path), "--split", "test"]) == 1
    assert "has no case in split 'test'" in capsys.readouterr().err


def test_predict_manifest_selected_cases(trained, tmp_path):
    run_dir, manifest = trained
    paths = predict_manifest(run_dir, manifest, tmp_path / "out", case_ids=["phantom-001"], progress=False)
    assert [p.name for p in paths] == ["phantom-001.nii.gz"]


def test_cli_train_refuses_an_existing_run(trained, tmp_path, capsys):
    run_dir, _ = trained
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (tmp_path / "again.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(tmp_path / "again.yaml")]) == 1
    assert "already holds a run" in capsys.readouterr().err
