"""The `workbench` command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.nifti import load_label, save_nifti

SUBCOMMANDS = [
    ["demo"], ["summary"], ["phantoms"], ["manifest"], ["manifest", "brats-mets"], ["instances"], ["evaluate"],
    ["perturb"], ["train"], ["predict"], ["sweep"], ["report"], ["audit"], ["lab"], ["export-nnunet"],
    ["nnunet-trainers"],
]


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: workbench " + " ".join(command) in capsys.readouterr().out


def test_console_script_is_installed():
    out = subprocess.run(["workbench", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("workbench ")


def test_phantoms_then_summary_of_that_manifest(tmp_path, capsys):
    assert main(["phantoms", "3", "-o", str(tmp_path), "--shape", "32", "32", "32", "--seed", "1"]) == 0
    assert main(["summary", "--manifest", str(tmp_path / "manifest.yaml")]) == 0
    out = capsys.readouterr().out
    assert "3 cases" in out
    for region in ("WT", "TC", "ET", "RC"):
        assert region in out
    assert "cases_present" in out and "phantom-002" in out


def test_instances_lists_components_and_writes_maps(tmp_path, capsys):
    label = np.zeros((10, 10, 10), dtype=np.uint8)
    label[1:3, 1:3, 1:3] = 3
    label[7, 7, 7] = 3
    label[5, 0, 0] = 4
    path = tmp_path / "seg.nii.gz"
    save_nifti(path, label, spacing=(1.0, 1.0, 2.0))
    assert main(["instances", str(path), "--out", str(tmp_path / "maps")]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out[1:] if line.split() and line.split()[0] in ("WT", "TC", "ET", "RC")]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("WT", "1", "8"), ("WT", "2", "1"), ("TC", "1", "8"), ("TC", "2", "1"),
        ("ET", "1", "8"), ("ET", "2", "1"), ("RC", "1", "1"),
    ]
    cells, _, spacing = load_label(tmp_path / "maps" / "ET-cells.nii.gz")
    assert spacing == (1.0, 1.0, 2.0)
    assert set(np.unique(cells)) == {1, 2} and cells[0, 0, 0] == 1 and cells[9, 9, 9] == 2


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["instances", str(tmp_path / "missing.nii.gz")]) == 1
    err = capsys.readouterr().err
    assert "workbench instances: error:" in err and "missing.nii.gz" in err
    label = np.full((4, 4, 4), 7, dtype=np.uint8)
    save_nifti(tmp_path / "bad.nii.gz", label)
    assert main(["instances", str(tmp_path / "bad.nii.gz")]) == 1
    assert "[7]" in capsys.readouterr().err


def test_manifest_brats_mets_writes_a_loadable_manifest(tmp_path, capsys):
    from workbench.data.manifest import load_manifest

    root = tmp_path / "raw"
    for cid in ("BraTS-MET-00001-000", "BraTS-MET-00002-000"):
        folder = root / cid
        folder.mkdir(parents=True)
        for modality in ("t1n", "t1c", "t2w", "t2f"):
            save_nifti(folder / f"{cid}-{modality}.nii.gz", np.ones((4, 4, 4), np.float32))
        save_nifti(folder / f"{cid}-seg.nii.gz", np.zeros((4, 4, 4), np.uint8))
    out = tmp_path / "m.yaml"
    assert main(["manifest", "brats-mets", str(root), "-o", str(out), "--split", "train"]) == 0
    assert "2 cases, 2 with labels" in capsys.readouterr().out
    manifest = load_manifest(out)
    assert [c.split for c in manifest.cases] == ["train", "train"]


def test_help_imports_no_heavy_library():
    """Each subcommand imports what it needs when it runs, so ``workbench --help`` stays fast."""
    code = ("import sys; from workbench.cli import _parser; _parser(); "
            "print(sorted({'pandas', 'torch', 'monai', 'napari', 'papermill'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "workbench"], capture_output=True, text=True)
    assert result.returncode == 2 and "demo" in result.stdout


def test_quick_demo_writes_a_report_with_a_row_per_loss(quick_demo):
    from workbench.experiments import collect_results
    from workbench.experiments.demo import DEMO_LOSSES

    out, sweep_dir = quick_demo
    assert "report:" in out and all(loss in out for loss in DEMO_LOSSES)
    assert (sweep_dir / "report.html").is_file()
    results = collect_results(sweep_dir)
    assert sorted(results["loss"].unique()) == sorted(DEMO_LOSSES)
    # The printed audit command names the instance-loss run with the best held-out foreground Dice,
    # at its case with the most missed lesions.
    import re

    import pandas as pd

    from workbench.viz.sources import run_source

    run_dir, case_id = re.search(r"audit:  workbench audit (\S+) --case (\S+)", out).groups()
    per_case = results[(results["region"] == "mean") & (results["metric"] == "dice") & (results["stratum"] == "all")]
    dice = per_case[per_case["loss"] != "dc_ce"].groupby("run_id")["value"].mean()
    assert Path(run_dir).name == dice.idxmax()
    lesions = pd.read_parquet(Path(run_dir) / "lesions.parquet")
    misses = lesions[(lesions["status"] == "FN") & (lesions["threshold"] == 0.5)].groupby("case_id").size()
    if len(misses):
        assert misses.get(case_id, 0) == misses.max()
    assert run_source(run_dir, case_id).case.id == case_id


def test_demo_never_overwrites_an_earlier_demo(tmp_path, monkeypatch):
    from workbench.experiments.demo import _fresh_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo-2").mkdir()
    assert _fresh_folder(tmp_path / "runs" / "demo") == tmp_path / "runs" / "demo-3"
