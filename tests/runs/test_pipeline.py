"""The train → evaluate pipeline's own logic: the split and the parameter checks (the whole run is
exercised through notebook 02 in tests/notebooks)."""

from __future__ import annotations

import pytest

from workbench.data.cohort import make_cohort
from workbench.data.manifest import CaseEntry, Manifest, read_manifest
from workbench.labels import BINARY
from workbench.runs.pipeline import check_parameters, held_out_split, validation_cases


def _manifest(splits, unlabelled=()):
    cases = [
        CaseEntry(id=f"c{i}", images={"t1": f"c{i}.nii.gz"}, label=None if i in unlabelled else f"c{i}-seg.nii.gz", split=s)
        for i, s in enumerate(splits)
    ]
    return Manifest(name="m", schema=BINARY, modalities=("t1",), cases=cases, root=".")


def test_manifest_split_when_no_folds_holds_out_the_test_cases_and_validates_on_val():
    manifest = _manifest(["train", "val", "train", "test", "val", "test"])
    assert held_out_split(manifest, 0, 0) == (["c0", "c2"], ["c3", "c5"])
    assert validation_cases(manifest, 0, ["c3", "c5"]) == ["c1", "c4"]


def test_without_labelled_test_cases_the_val_cases_are_held_out_and_validated_on():
    manifest = _manifest(["train", "val", "train", "test", "val"], unlabelled={3})
    assert held_out_split(manifest, 0, 0) == (["c0", "c2"], ["c1", "c4"])
    assert validation_cases(manifest, 0, ["c1", "c4"]) == ["c1", "c4"]


def test_k_fold_runs_validate_on_their_held_out_fold():
    manifest = _manifest(["train", "val", "train", "test", "val", "train"])
    assert validation_cases(manifest, 3, ["c0", "c4"]) == ["c0", "c4"]


def test_round_robin_folds_over_train_and_val_only():
    manifest = _manifest(["train", "val", "train", "test", "val", "train"])
    folds = [held_out_split(manifest, 3, fold) for fold in range(3)]
    assert [held for _, held in folds] == [["c0", "c4"], ["c1", "c5"], ["c2"]]
    for train_ids, held in folds:
        assert sorted(train_ids + held) == ["c0", "c1", "c2", "c4", "c5"] and not set(train_ids) & set(held)


@pytest.mark.parametrize(
    ("n_folds", "fold", "message"),
    [(1, 0, "0 \\(the manifest's split\\) or at least 2"), (3, 3, r"\[0, 2\]"), (0, 1, r"\[0, 0\]"), (9, 0, "at most the 5")],
)
def test_bad_folds(n_folds, fold, message):
    with pytest.raises(ValueError, match=message):
        held_out_split(_manifest(["train", "val", "train", "val", "train"]), n_folds, fold)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_cohort(4, 0, tmp_path_factory.mktemp("cohort"), shape=(32, 32, 32))


VALID = {
    "loss": "blob", "alpha": 1.0, "beta": 1.0, "fold": 0, "n_folds": 0, "eval_workers": 1, "mode": "sigmoid",
    "epochs": 1, "steps_per_epoch": 1, "patch_size": [32, 32, 32], "filters": [4, 8, 16], "device": "cpu",
}


def test_valid_parameters_give_a_config_on_the_split(tmp_path, cohort):
    config, manifest, train_ids, held_out = check_parameters(tmp_path / "run", manifest=str(cohort), **VALID)
    ids = {case.split: [] for case in read_manifest(cohort).cases}
    for case in read_manifest(cohort).cases:
        ids[case.split].append(case.id)
    assert (train_ids, held_out) == (ids["train"], ids["test"])
    assert config.out_dir == str(tmp_path / "run" / "train")
    assert list(config.val_cases) == ids["val"] and list(config.predict_cases) == held_out
    assert config.loss_options == {"alpha": 1.0, "beta": 1.0}
    dc_ce = check_parameters(tmp_path / "run", manifest=str(cohort), **{**VALID, "loss": "dc_ce"})[0]
    assert dc_ce.loss_options == {}  # no instance term: alpha and beta do not reach the loss
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [("alpha", "one"), ("beta", -1.0), ("eval_workers", 0), ("n_folds", 1), ("epochs", 0), ("loss", "blobb"),
     ("patch_size", [32, 32]), ("learning_rate", True), ("mode", "soft")],
)
def test_each_bad_parameter_is_named_before_anything_is_written(tmp_path, cohort, name, value):
    with pytest.raises(ValueError, match=f"Parameter `{name}`"):
        check_parameters(tmp_path / "run", manifest=str(cohort), **{**VALID, name: value})
    assert not (tmp_path / "run").exists()


def test_a_missing_manifest_is_named(tmp_path):
    with pytest.raises(ValueError, match="Parameter `manifest`"):
        check_parameters(tmp_path / "run", manifest=str(tmp_path / "nope.yaml"), **VALID)
