"""Issue 21, `workbench predict`: earlier predictions, a modality count the model does not take, and
case files that would land outside OUT."""

from __future__ import annotations

import pytest
import yaml

from workbench.cli import main
from workbench.data.cohort import make_cohort


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A softmax run on 4 modalities, trained for one short epoch."""
    folder = tmp_path_factory.mktemp("predict")
    manifest = make_cohort(2, 3, folder / "cohort", shape=(32, 32, 32))
    config = {
        "manifest": str(manifest), "out_dir": str(folder / "run"), "mode": "softmax", "loss": "iwl_blob",
        "filters": [4, 8, 16], "patch_size": [16, 16, 16], "epochs": 1, "steps_per_epoch": 1, "workers": 0,
        "progress": False, "val_cases": [], "predict_final": False, "train_cases": ["phantom-000"],
    }
    (folder / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(folder / "train.yaml")]) == 0
    return folder / "run", manifest


def _predict(run_dir, manifest, out, *extra):
    return main(["predict", str(run_dir), "--manifest", str(manifest), "-o", str(out), "--device", "cpu", *extra])


def test_predict_into_earlier_predictions_refuses_unless_overwrite(trained, tmp_path, capsys):
    run_dir, manifest = trained
    out = tmp_path / "pred"
    assert _predict(run_dir, manifest, out, "--cases", "phantom-001") == 0
    first = (out / "phantom-001.nii.gz").stat().st_mtime_ns
    assert _predict(run_dir, manifest, out, "--cases", "phantom-001") == 1
    assert f"{out} already holds an earlier set of predictions; pass --overwrite" in capsys.readouterr().err
    assert (out / "phantom-001.nii.gz").stat().st_mtime_ns == first
    assert _predict(run_dir, manifest, out, "--cases", "phantom-001", "--overwrite") == 0
    assert (out / "phantom-001.nii.gz").stat().st_mtime_ns != first


def test_predict_names_both_channel_counts_when_the_manifest_does_not_fit(trained, tmp_path, capsys):
    run_dir, manifest = trained
    document = yaml.safe_load(manifest.read_text())
    document["modalities"] = ["t1c"]
    for case in document["cases"]:
        case["images"] = {"t1c": case["images"]["t1c"]}
    one = manifest.parent / "one_modality.yaml"
    one.write_text(yaml.safe_dump(document, sort_keys=False))
    assert _predict(run_dir, one, tmp_path / "pred") == 1
    err = capsys.readouterr().err
    assert f"takes 4 image channels, but manifest {one} has 1 modalities ['t1c']" in err
    assert "Traceback" not in err and not (tmp_path / "pred").exists()


def test_predict_refuses_a_case_file_that_links_out_of_its_folder(trained, tmp_path, capsys):
    run_dir, manifest = trained
    out = tmp_path / "pred"
    out.mkdir()
    victim = tmp_path / "victim.nii.gz"
    victim.write_bytes(b"precious")
    (out / "phantom-001.nii.gz").symlink_to(victim)
    assert _predict(run_dir, manifest, out, "--overwrite") == 1
    assert f"Refusing to write {victim}" in capsys.readouterr().err
    assert victim.read_bytes() == b"precious" and sorted(p.name for p in out.iterdir()) == ["phantom-001.nii.gz"]
