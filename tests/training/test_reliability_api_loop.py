"""Issue 21, through `workbench train` / `predict`: unknown case ids, a damaged run config or checkpoint end in one line."""

from __future__ import annotations

import re

import pytest
import yaml

from workbench.cli import main
from workbench.data.cohort import make_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """4 phantom cases of 32³: 2 train, 1 val, 1 test."""
    return make_cohort(4, 5, tmp_path_factory.mktemp("cohort"), shape=(32, 32, 32))


def _config(tmp_path, cohort, **fields):
    document = {
        "manifest": str(cohort), "out_dir": str(tmp_path / "run"), "filters": [4, 8, 16], "patch_size": [16, 16, 16],
        "batch_size": 1, "epochs": 1, "steps_per_epoch": 1, "workers": 0, "progress": False, "val_cases": [],
        "predict_final": False, "device": "cpu", **fields,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _one_line_error(capsys, argv, pattern):
    assert main(argv) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]  # the rest is tqdm's case-loading bar
    assert "Traceback" not in err and len(errors) == 1, err
    assert re.search(pattern, errors[0]), err


def test_an_unknown_val_case_is_one_line_naming_the_id_and_the_manifest(tmp_path, cohort, capsys):
    config = _config(tmp_path, cohort, val_cases=["no_such_case"])
    _one_line_error(
        capsys, ["train", "--config", str(config)],
        r"^workbench train: error: Config field `val_cases`: manifest '.*' \(.*\) has no case 'no_such_case'",
    )


def test_a_malformed_run_config_on_resume_is_one_line_naming_it(tmp_path, cohort, capsys):
    config = _config(tmp_path, cohort)
    assert main(["train", "--config", str(config)]) == 0
    (tmp_path / "run" / "config.yaml").write_text("epochs: [1, 2\n", encoding="utf-8")
    capsys.readouterr()
    _one_line_error(
        capsys, ["train", "--config", str(config), "--resume"],
        r"Cannot resume: the run's config .*run/config\.yaml is damaged",
    )


def test_a_truncated_checkpoint_on_resume_and_predict_is_one_line_naming_it(tmp_path, cohort, capsys):
    config = _config(tmp_path, cohort)
    assert main(["train", "--config", str(config)]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    capsys.readouterr()
    damaged = r"Checkpoint .*last\.pt is damaged or not a workbench checkpoint"
    _one_line_error(capsys, ["train", "--config", str(config), "--resume"], damaged)
    _one_line_error(
        capsys, ["predict", str(tmp_path / "run"), "--manifest", str(cohort), "-o", str(tmp_path / "pred"), "--device", "cpu"],
        damaged,
    )
