"""The tiny nnU-Net v2 dataset of the plug-in tests and running nnU-Net's console scripts on it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
