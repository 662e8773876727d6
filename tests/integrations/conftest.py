"""A tiny nnU-Net v2 dataset, exported from phantoms and planned + preprocessed once per session."""

from __future__ import annotations

import os

import pytest
from _nnunet import DATASET_ID, TEST_TRAINERS, NNUNetSetup, run_nnunet

from workbench.cli import main as workbench
from workbench.data.cohort import make_cohort


@pytest.fixture(scope="session")
def nnunet_setup(tmp_path_factory) -> NNUNetSetup:
    from workbench.integrations.nnunet import TRAINER_DIR

    root = tmp_path_factory.mktemp("nnunet")
    manifest = make_cohort(5, 3, root / "cohort", shape=(32, 32, 32))
    raw, preprocessed, results = root / "raw", root / "preprocessed", root / "results"
    assert workbench(["export-nnunet", str(manifest), str(raw), "--id", str(DATASET_ID), "--name", "tiny"]) == 0
    env = {
        **os.environ,
        "nnUNet_raw": str(raw),
        "nnUNet_preprocessed": str(preprocessed),
        "nnUNet_results": str(results),
        "nnUNet_extTrainer": os.pathsep.join([str(TRAINER_DIR), str(TEST_TRAINERS)]),
        "nnUNet_def_n_proc": "1",
    }
    run_nnunet(["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1",
                "--verify_dataset_integrity"], env)
    return NNUNetSetup(root, manifest, raw, preprocessed, results, f"Dataset{DATASET_ID}_tiny", env)
