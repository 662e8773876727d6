"""Perturbed predictions: deterministic, schema-preserving, and each action does what it says."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from workbench.data.cohort import make_cohort
from workbench.data.manifest import load_manifest
from workbench.data.nifti import load_label, read_header
from workbench.data.perturb import Perturbation, perturb_labels, write_perturbed_predictions
from workbench.data.phantoms import make_case

NOTHING = {"drop": 0.0, "dilate": 0.0, "erode": 0.0, "false_positives": 0}


def two_lesions() -> np.ndarray:
    """Two separate 5³ lesions: SNFH shell around an ET core."""
    label = np.zeros((20, 20, 20), dtype=np.uint8)
    for start in (3, 12):
        label[start : start + 5, 3:8, 3:8] = 2
        label[start + 1 : start + 4, 4:7, 4:7] = 3
    return label


@pytest.fixture(scope="module")
def phantom_label():
    return make_case(3, shape=(48, 48, 48)).label


def test_same_seed_same_output_other_seed_differs(phantom_label):
    first = perturb_labels(phantom_label, seed=5)
    np.testing.assert_array_equal(first, perturb_labels(phantom_label, seed=5))
    assert not np.array_equal(first, perturb_labels(phantom_label, seed=6))
    assert first.dtype == phantom_label.dtype


def test_keeps_schema_values_and_does_not_touch_the_input(phantom_label):
    before = phantom_label.copy()
    pred = perturb_labels(phantom_label, seed=1, perturbation=Perturbation(false_positives=10))
    assert set(np.unique(pred)) <= {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(phantom_label, before)


def test_no_perturbation_is_the_identity(phantom_label):
    np.testing.assert_array_equal(perturb_labels(phantom_label, seed=0, perturbation=Perturbation(**NOTHING)), phantom_label)


def test_drop_removes_every_lesion():
    pred = perturb_labels(two_lesions(), seed=0, perturbation=Perturbation(**{**NOTHING, "drop": 1.0}))
    assert not pred.any()


def test_dilate_grows_by_one_voxel_with_the_outer_label():
    label = two_lesions()
    pred = perturb_labels(label, seed=0, perturbation=Perturbation(**{**NOTHING, "dilate": 1.0}))
    assert np.all(pred[label > 0] == label[label > 0])
    new = (pred > 0) & (label == 0)
    assert new.sum() == 2 * (7**3 - 5**3)
    assert set(np.unique(pred[new])) == {2}


def test_erode_removes_the_boundary_layer():
    label = two_lesions()
    pred = perturb_labels(label, seed=0, perturbation=Perturbation(**{**NOTHING, "erode": 1.0}))
    assert (pred > 0).sum() == 2 * 3**3
    assert set(np.unique(pred[pred > 0])) == {3}


def test_false_positive_blobs_are_new_separate_components():
    label = two_lesions()
    options = Perturbation(**{**NOTHING, "false_positives": 3, "fp_radius": (1, 1), "fp_values": (3,)})
    pred = perturb_labels(label, seed=2, perturbation=options)
    np.testing.assert_array_equal(pred[label > 0], label[label > 0])
    assert cc3d.connected_components(pred > 0, return_N=True)[1] == 2 + 3
    assert set(np.unique(pred[(pred > 0) & (label == 0)])) == {3}
    assert ((pred > 0) & (label == 0)).sum() == 3 * 7


def test_works_in_2d():
    label = np.zeros((16, 16), dtype=np.uint8)
    label[4:9, 4:9] = 1
    pred = perturb_labels(label, seed=0, schema="binary", perturbation=Perturbation(**{**NOTHING, "erode": 1.0}))
    assert pred.sum() == 9


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"drop": 1.5}, r"`drop` to be a probability"),
        ({"drop": 0.5, "dilate": 0.4, "erode": 0.3}, r"at most 1"),
        ({"false_positives": -1}, r"`false_positives`"),
        ({"fp_radius": (3, 1)}, r"`fp_radius`"),
    ],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        Perturbation(**options)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"\[7\]"):
        perturb_labels(np.full((4, 4, 4), 7, np.uint8), seed=0)
    with pytest.raises(ValueError, match=r"`fp_values`"):
        perturb_labels(two_lesions(), seed=0, perturbation=Perturbation(fp_values=(9,)))
    with pytest.raises(ValueError, match=r"2D or 3D"):
        perturb_labels(np.zeros(5, np.uint8), seed=0)


def test_write_perturbed_predictions_uses_the_reference_grid(tmp_path):
    reference = make_cohort(2, 4, tmp_path / "cohort", shape=(24, 24, 24))
    out = write_perturbed_predictions(reference, tmp_path / "pred", seed=3)
    manifest = load_manifest(reference)
    assert sorted(p.name for p in out.iterdir()) == ["phantom-000.nii.gz", "phantom-001.nii.gz"]
    for case in manifest.cases:
        ref_header, pred_header = read_header(case.label), read_header(out / f"{case.id}.nii.gz")
        np.testing.assert_array_equal(pred_header.affine, ref_header.affine)
        assert pred_header.shape == ref_header.shape
    again = write_perturbed_predictions(manifest, tmp_path / "again", seed=3)
    for case in manifest.cases:
        np.testing.assert_array_equal(
            load_label(out / f"{case.id}.nii.gz")[0], load_label(again / f"{case.id}.nii.gz")[0]
        )
