"""`workbench evaluate` and `workbench perturb` on a tiny phantom cohort, run as a user would."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.data.cohort import make_cohort
from workbench.data.manifest import load_manifest, write_manifest
from workbench.data.nifti import load_label, save_nifti
from workbench.labels import BRATS_METS_2025, resolve_schema
from workbench.metrics import lesion_table
from workbench.runs import CaseMatchError, evaluate_cohort, match_cases

CASES = ["phantom-000", "phantom-001", "phantom-002"]
FILES = [f"{table}.{ext}" for table in ("per_case", "lesions", "summary") for ext in ("parquet", "csv")]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Reference manifest of 3 phantom cases (32³) and a folder of perturbed predictions."""
    root = tmp_path_factory.mktemp("evaluate")
    reference = make_cohort(3, 11, root / "cohort", shape=(32, 32, 32))
    assert main(["perturb", "--manifest", str(reference), "-o", str(root / "pred"), "--seed", "1"]) == 0
    return reference, root / "pred"


def copy_predictions(source, target):
    shutil.copytree(source, target)
    return target


def run_cli(capsys, *args):
    status = main(["evaluate", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("command", [["evaluate"], ["perturb"]], ids=" ".join)
def test_new_subcommands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: workbench " + " ".join(command) in capsys.readouterr().out


def test_perturb_writes_one_prediction_per_case(cohort):
    _, pred = cohort
    assert sorted(p.name for p in pred.iterdir()) == [f"{c}.nii.gz" for c in CASES]


def test_evaluate_writes_six_tables_and_run_json(cohort, tmp_path, capsys):
    reference, pred = cohort
    out = tmp_path / "out"
    status, stdout, _ = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", out, "--workers", 1,
                                "--schema", "brats_mets")
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "run.json"])
    per_case = pd.read_parquet(out / "per_case.parquet")
    assert sorted(per_case["case_id"].unique()) == CASES
    assert set(per_case["region"]) >= {"WT", "TC", "ET", "RC"}
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), pd.read_parquet(out / "summary.parquet"),
                                  check_dtype=False)
    lesions = pd.read_parquet(out / "lesions.parquet")
    assert sorted(lesions["threshold"].unique()) == [0.1, 0.3, 0.5]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["parameters"]["schema"] == "brats_mets_2025"
    assert run["parameters"]["cases"] == CASES and set(run["timings"]["case_s"]) == set(CASES)
    assert "numpy" in run["versions"] and run["metrics"]["thresholds"] == [0.1, 0.3, 0.5]
    assert set(run["spacing_mm"]) == set(CASES)
    assert pd.read_parquet(out / "summary.parquet").attrs["run"]["parameters"]["thresholds"] == [0.1, 0.3, 0.5]
    assert "evaluated 3 cases" in stdout and "WT" in stdout and "pq@0.5" in stdout


def test_perfect_prediction_scores_one(cohort, tmp_path):
    reference, _ = cohort
    pred = tmp_path / "pred"
    pred.mkdir()
    for case in load_manifest(reference).cases:  # the -seg suffix is accepted
        shutil.copy(case.label, pred / f"{case.id}-seg.nii.gz")
    result = evaluate_cohort(pred, reference, progress=False)
    for metric in ("dice", "pq", "sq", "rq", "f1"):
        values = result.per_case.loc[result.per_case["metric"] == metric, "value"]
        assert values.notna().any() and (values.dropna() == 1.0).all(), metric
    assert set(result.lesions["status"]) == {"TP"}


def test_lesions_are_the_single_threshold_tables_concatenated(cohort):
    """One lesion_table call per case for all thresholds: blocks per threshold, as before."""
    reference, pred = cohort
    thresholds = (0.5, 0.1)
    result = evaluate_cohort(pred, reference, thresholds=thresholds, workers=1, progress=False)
    expected = []
    for case in load_manifest(reference).cases:
        ref, _, spacing = load_label(case.label)
        prediction = load_label(pred / f"{case.id}.nii.gz")[0]
        expected += [lesion_table(prediction, ref, spacing=spacing, threshold=t, case_id=case.id) for t in thresholds]
    pd.testing.assert_frame_equal(result.lesions, pd.concat(expected, ignore_index=True), check_exact=True)


def test_two_workers_give_the_same_tables(cohort):
    reference, pred = cohort
    one = evaluate_cohort(pred, reference, workers=1, progress=False)
    two = evaluate_cohort(pred, reference, workers=2, progress=False)
    for name in ("per_case", "lesions", "summary"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))


def test_prediction_manifest_is_accepted(cohort, tmp_path):
    reference, pred = cohort
    manifest = load_manifest(reference)
    cases = [case.__class__(case.id, case.images, pred / f"{case.id}.nii.gz", case.split) for case in manifest.cases]
    path = tmp_path / "pred.yaml"
    write_manifest(manifest.__class__(manifest.name, manifest.schema, manifest.modalities, tuple(cases),
                                      manifest.root), path)
    assert [pair.prediction for pair in match_cases(path, manifest)] == [c.label for c in cases]


def test_missing_case_is_named(cohort, tmp_path, capsys):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    (pred / "phantom-001.nii.gz").unlink()
    status, _, err = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", tmp_path / "out")
    assert status == 1
    assert "workbench evaluate: error:" in err and "missing" in err and "'phantom-001'" in err
    assert not (tmp_path / "out").exists()


def test_extra_case_is_named(cohort, tmp_path, capsys):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    shutil.copy(pred / "phantom-000.nii.gz", pred / "phantom-999.nii.gz")
    status, _, err = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", tmp_path / "out")
    assert status == 1 and "extra" in err and "'phantom-999'" in err


def test_two_files_for_one_case_are_an_error(cohort, tmp_path):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    shutil.copy(pred / "phantom-000.nii.gz", pred / "phantom-000-seg.nii.gz")
    with pytest.raises(CaseMatchError, match=r"several files for one case.*'phantom-000'"):
        match_cases(pred, load_manifest(reference))


def test_shape_mismatch_names_the_case_and_shapes(cohort, tmp_path, capsys):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    label, affine, _ = load_label(pred / "phantom-002.nii.gz")
    save_nifti(pred / "phantom-002.nii.gz", label[:, :, :30], affine)
    status, _, err = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", tmp_path / "out")
    assert status == 1
    assert "case 'phantom-002'" in err and "(32, 32, 30)" in err and "(32, 32, 32)" in err


def test_affine_mismatch_names_the_case(cohort, tmp_path):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    label, affine, _ = load_label(pred / "phantom-001.nii.gz")
    shifted = affine.copy()
    shifted[0, 3] += 0.5
    save_nifti(pred / "phantom-001.nii.gz", label, shifted)
    with pytest.raises(CaseMatchError, match=r"case 'phantom-001'.*affine.*largest difference 0\.5 mm"):
        match_cases(pred, load_manifest(reference))
    shifted[0, 3] = affine[0, 3] + 1e-4  # within the tolerance
    save_nifti(pred / "phantom-001.nii.gz", label, shifted)
    assert len(match_cases(pred, load_manifest(reference))) == 3


def test_label_values_outside_the_schema_name_the_case(cohort, tmp_path):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    label, affine, _ = load_label(pred / "phantom-000.nii.gz")
    label[0, 0, 0] = 9
    save_nifti(pred / "phantom-000.nii.gz", label, affine)
    with pytest.raises(ValueError, match=r"Case 'phantom-000'.*prediction .*\[9\]"):
        evaluate_cohort(pred, reference, progress=False)


def test_schema_names_resolve_by_unique_prefix():
    assert resolve_schema("brats_mets") is BRATS_METS_2025
    assert resolve_schema("brats_mets_2025") is BRATS_METS_2025
    with pytest.raises(ValueError, match=r"prefix of several.*known schemas"):
        resolve_schema("brats")
    with pytest.raises(ValueError, match=r"no schema has that name.*known schemas"):
        resolve_schema("mets")


def test_unknown_prediction_path_is_an_error(cohort, tmp_path, capsys):
    reference, _ = cohort
    status, _, err = run_cli(capsys, "--pred", tmp_path / "nowhere", "--manifest", reference, "-o", tmp_path / "out")
    assert status == 1 and "nowhere" in err
    np.testing.assert_equal((tmp_path / "out").exists(), False)


def test_an_empty_prediction_is_scored_not_an_error(cohort, tmp_path):
    reference, pred = cohort
    pred = copy_predictions(pred, tmp_path / "pred")
    label, affine, _ = load_label(pred / "phantom-001.nii.gz")
    save_nifti(pred / "phantom-001.nii.gz", np.zeros_like(label), affine)
    with pytest.warns(UserWarning, match=r"case 'phantom-001' is empty"):
        result = evaluate_cohort(pred, reference, progress=False)
    empty = result.per_case.query("case_id == 'phantom-001' and region == 'WT' and stratum == 'all'")
    assert (empty.set_index("metric").loc[["dice", "f1"], "value"] == 0.0).all()
    assert set(result.lesions.query("case_id == 'phantom-001'")["status"]) == {"FN"}


def test_split_evaluates_only_its_cases(cohort, tmp_path, capsys):
    reference, pred = cohort
    manifest = load_manifest(reference)
    split = manifest.cases[-1].split
    chosen = [case.id for case in manifest.split(split)]
    pred = copy_predictions(pred, tmp_path / "pred")
    for path in pred.iterdir():
        if path.name.removesuffix(".nii.gz") not in chosen:
            path.unlink()
    status, _, _ = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", tmp_path / "out", "--split", split,
                           "--workers", 1)
    assert status == 0
    assert sorted(pd.read_parquet(tmp_path / "out" / "per_case.parquet")["case_id"].unique()) == sorted(chosen)
    status, _, err = run_cli(capsys, "--pred", pred, "--manifest", reference, "-o", tmp_path / "out2", "--split", "nope")
    assert status == 1 and "'nope'" in err


def test_preset_writes_the_official_leaderboard_layout(cohort, tmp_path, capsys):
    reference, pred = cohort
    out = tmp_path / "scored"
    status, stdout, _ = run_cli(capsys, "--preset", "brats_mets_2025", "--pred", pred, "--manifest", reference, "-o", out,
                                "--workers", 2)
    assert status == 0 and "scored 3 cases with brats_mets_2025" in stdout
    assert {"scores.parquet", "scores.csv", "summary.parquet", "summary.csv", "lesions.parquet", "lesions.csv",
            "leaderboard.csv", "run.json"} <= {p.name for p in out.iterdir()}
    scores = pd.read_parquet(out / "scores.parquet")
    assert scores["subject_id"].tolist() == CASES
    assert list(scores.columns[1:7]) == [f"all_instance_{m}_et" for m in ("tp", "fp", "fn", "prec", "rec", "f1")]
    leaderboard = pd.read_csv(out / "leaderboard.csv")
    assert leaderboard["subject_id"].tolist() == [*CASES, "mean", "std", "median"]
    assert leaderboard.loc[3, "global_dsc_wt"] == pytest.approx(scores["global_dsc_wt"].mean())
    summary = pd.read_parquet(out / "summary.parquet")
    row = summary[(summary.region == "wt") & (summary.metric == "global_dsc")].iloc[0]
    assert row["median"] == pytest.approx(scores["global_dsc_wt"].median()) and row["count"] == 3
    lesions = pd.read_parquet(out / "lesions.parquet")
    assert set(lesions["status"]) <= {"TP", "FN", "FP"} and set(lesions["subject_id"]) == set(CASES)
    found = lesions[(lesions.region == "wt") & (lesions.kind == "reference")].groupby("subject_id")["status"]
    assert (found.apply(lambda s: (s == "TP").sum()) == scores.set_index("subject_id")["all_instance_tp_wt"]).all()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["parameters"]["official_config"] == "mets"


def test_preset_refuses_options_it_fixes(cohort, tmp_path, capsys):
    reference, pred = cohort
    status, _, err = run_cli(capsys, "--preset", "brats_mets_2025", "--regions", "WT", "--pred", pred, "--manifest",
                             reference, "-o", tmp_path / "x")
    assert status == 1 and "drop --regions" in err
