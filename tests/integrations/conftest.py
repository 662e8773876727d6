"""A tiny nnU-Net v2 dataset, exported from phantoms and planned + preprocessed once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.cli import main as workbench
from workbench.data.cohort import make_cohort

TEST_TRAINERS = Path(__file__).resolve().parent / "nnunet_ext"
DATASET_ID = 901


@dataclass(frozen=True)
class NNUNetSetup:
    root: Path
    manifest: Path
    raw: Path
    preprocessed: Path
    results: Path
    dataset: str
    env: dict[str, str]


def run_nnunet(command: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run one of nnU-Net's console scripts of this environment; fail with its output's tail."""
    executable = Path(sys.executable).parent / command[0]
    process = subprocess.run(
        [str(executable), *command[1:]], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, f"{' '.join(command)} failed ({process.returncode}):\n{output[-4000:]}"
    return output


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
