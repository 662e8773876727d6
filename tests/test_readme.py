"""The README's examples: every ``workbench`` command in it parses, and those that run in seconds run as written.

Each command of the README's code blocks is either run below (in a fresh project folder, with a
BraTS-layout tree or NIfTI files made for it) or listed in ``NOT_RUN_HERE`` with the test that
covers its job instead; a command added to the README without either fails
``test_every_readme_command_is_run_here_or_says_where_it_is_tested``.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from workbench.cli import _parser, main
from workbench.data.brats import MODALITIES
from workbench.data.phantoms import make_case

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

BRATS_ROOT = "/data/MICCAI-LH-BraTS2025-MET-Challenge-Training"
BRATS_COMMANDS = (
    f"workbench manifest brats-mets {BRATS_ROOT} -o data_manifests/brats_mets.yaml --splits 0.7 0.1 0.2",
    "workbench summary --manifest data_manifests/brats_mets.yaml",
    "workbench evaluate --preset brats_mets_2025 --pred predictions/ --manifest data_manifests/brats_mets.yaml -o scores/",
)
AUDIT_FILES = "workbench audit --image t1c.nii.gz t2f.nii.gz --label seg.nii.gz --pred pred.nii.gz"
AUDIT_RUN = "workbench audit runs/demo/losses/blob-a1.0-b1.0-s0 --case phantom-033"
NOT_RUN_HERE = {  # command: the tests that run its job (each takes minutes, or a dataset we cannot ship)
    "workbench demo": "tests/cli/test_cli.py (demo --quick); benchmarks/RESULTS.md (the full demo, by hand)",
    "workbench demo --manifest data_manifests/brats_mets.yaml": "tests/data/test_splits.py (splits it needs), tests/cli (demo)",
    "workbench train --config configs/phantoms_quick.yaml": "tests/training, tests/experiments/test_paper.py (recipe)",
    "workbench evaluate --pred runs/phantoms-quick-blob/predictions --split val --manifest "
    "data_manifests/phantoms_default.yaml -o runs/phantoms-quick-blob/eval": "tests/cli/test_evaluate_cli.py",
    "workbench export-nnunet data_manifests/phantoms_default.yaml $nnUNet_raw --id 901":
        "tests/integrations/test_nnunet_trainers.py",
    "workbench evaluate --pred nnunet/pred --split test --manifest data_manifests/phantoms_default.yaml -o nnunet/eval":
        "tests/integrations/test_nnunet_trainers.py",
    "workbench lab": "tests/lab/test_lab.py",
    "workbench sweep configs/sweeps/phantoms_losses.yaml --workers 2": "tests/experiments (sweeps), tests/cli",
    "workbench report runs/phantoms-losses": "tests/experiments/test_report_browser.py",
}


def readme_commands() -> list[str]:
    """Every ``workbench ...`` line of the README's shell code blocks, continuations joined, comments dropped."""
    commands = []
    for language, body in re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL):
        if language not in ("", "bash"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                command = " ".join(part.split("#", 1)[0].split())
                if command.startswith("workbench ") or command == "workbench":
                    commands.append(command)
    return commands


def test_the_readme_has_the_commands_this_test_knows():
    assert len(readme_commands()) >= 12


def test_every_readme_command_is_run_here_or_says_where_it_is_tested():
    known = {*BRATS_COMMANDS, AUDIT_FILES, AUDIT_RUN, *NOT_RUN_HERE}
    unknown = [command for command in readme_commands() if command not in known]
    assert not unknown, f"README commands neither run by tests/test_readme.py nor listed in NOT_RUN_HERE: {unknown}"


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_parses(command):
    argv = shlex.split(command.replace("$nnUNet_raw", "raw"))[1:]
    args = _parser().parse_args(argv)
    assert hasattr(args, "run")
    assert not getattr(args, "deprecated_options", None), f"the README uses a deprecated option: {command}"


def test_every_python_block_of_the_readme_compiles():
    blocks = re.findall(r"^```python\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec")


def _run(command: str, **substitutions: str) -> int:
    for old, new in substitutions.items():
        command = command.replace(old, new)
    return main(shlex.split(command)[1:])


def _write_brats_tree(root: Path, n: int = 3) -> None:
    """``n`` phantom cases (32³) in the challenge's folder layout under ``root``."""
    for seed in range(n):
        case = make_case(seed, shape=(32, 32, 32))
        case_id = f"BraTS-MET-{seed:05d}-000"
        folder = root / case_id
        folder.mkdir(parents=True)
        affine = np.diag([*case.spacing, 1.0])
        for k, modality in enumerate(MODALITIES):
            nib.save(nib.Nifti1Image(case.image[k], affine), folder / f"{case_id}-{modality}.nii.gz")
        nib.save(nib.Nifti1Image(case.label, affine), folder / f"{case_id}-seg.nii.gz")


def test_the_brats_examples_run_as_written(tmp_path, monkeypatch, capsys):
    """Scan, summarise and score as the official scorer would, in a project folder holding only what they need."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data_manifests").mkdir()
    data = tmp_path / "data"
    _write_brats_tree(data / Path(BRATS_ROOT).name, n=4)
    manifest_command, summary_command, score_command = BRATS_COMMANDS
    assert _run(manifest_command, **{"/data/": f"{data}/"}) == 0
    assert _run(summary_command) == 0
    printed = capsys.readouterr().out
    assert "4 cases, 4 with labels; splits: train 2, val 1, test 1" in printed
    assert "dataset 'brats_mets_2025': 4 cases" in printed
    assert main(["perturb", "--manifest", "data_manifests/brats_mets.yaml", "-o", "predictions", "--seed", "1"]) == 0
    assert _run(score_command) == 0
    board = pd.read_csv(tmp_path / "scores" / "leaderboard.csv")
    assert {"all_instance_f1_et", "lesionwise_dsc_mean_wt"} <= set(board.columns)
    assert len(board) >= 4


@pytest.fixture
def audit_files(tmp_path, monkeypatch) -> Path:
    """t1c, t2f, seg and pred NIfTI files of one 32³ phantom in the working folder."""
    case = make_case(3, shape=(32, 32, 32))
    affine = np.diag([*case.spacing, 1.0])
    channels = dict(zip(("t1n", "t1c", "t2w", "t2f"), case.image, strict=True))
    for name in ("t1c", "t2f"):
        nib.save(nib.Nifti1Image(channels[name], affine), tmp_path / f"{name}.nii.gz")
    nib.save(nib.Nifti1Image(case.label, affine), tmp_path / "seg.nii.gz")
    prediction = case.label.copy()
    prediction[np.roll(case.label > 0, 3, axis=0) & (case.label == 0)] = 2  # over-segmented: false positives
    nib.save(nib.Nifti1Image(prediction, affine), tmp_path / "pred.nii.gz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_audit_example_on_nifti_files_runs_as_written(display, audit_files):
    shot = audit_files / "shot.png"
    assert main([*shlex.split(AUDIT_FILES)[1:], "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000


def test_the_audit_example_on_a_demo_run_runs_with_the_quick_demos_case(display, quick_demo, tmp_path, monkeypatch):
    """The README's run and case are the full demo's; the quick demo has the same run names, other case ids."""
    printed, sweep_dir = quick_demo
    case_id = re.search(r"audit:  workbench audit \S+ --case (\S+)", printed).group(1)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    shutil.copytree(sweep_dir, tmp_path / "runs" / "demo" / "losses", symlinks=True)
    monkeypatch.chdir(tmp_path)
    shot = tmp_path / "shot.png"
    assert main([*shlex.split(AUDIT_RUN.replace("phantom-033", case_id))[1:], "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000
