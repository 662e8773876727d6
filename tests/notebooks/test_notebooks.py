"""The papermill notebooks: executed headless with tiny parameters, and committed clean and paired."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import papermill as pm
import pytest

from workbench.data.cohort import make_cohort
from workbench.data.manifest import read_manifest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
TINY = {
    "loss": "blob",
    "epochs": 1,
    "steps_per_epoch": 2,
    "patch_size": [32, 32, 32],
    "filters": [4, 8, 16],
    "batch_size": 1,
    "device": "cpu",
    "out_dir": "run",
}


def execute(name: str, tmp_path: Path, **parameters):
    return pm.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"), parameters=parameters,
        kernel_name="python3", cwd=str(tmp_path), progress_bar=False, execution_timeout=120,
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    path = make_cohort(6, 0, tmp_path_factory.mktemp("cohort"), shape=(32, 32, 32))
    splits = [case.split for case in read_manifest(path).cases]
    assert "train" in splits and "val" in splits
    return path


# --------------------------------------------------------------------------- committed form


def test_every_notebook_has_a_paired_ipynb():
    assert {p.stem for p in IPYNBS} == {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")}
    assert {"01_loss_explorer", "02_train_evaluate", "03_compare", "04_audit"} <= {p.stem for p in IPYNBS}


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_notebook_and_py_pair_are_in_sync(path):
    from_ipynb = jupytext.read(path)
    from_py = jupytext.read(path.with_suffix(".py"))

    def cells(notebook):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]

    assert cells(from_ipynb) == cells(from_py)


# --------------------------------------------------------------------------- 01_loss_explorer


def test_loss_explorer_runs_headless(tmp_path):
    out = execute("01_loss_explorer", tmp_path, shape=[32, 32, 32], loss="cc", dilate=1, miss_below=5,
                  interactive=False)
    errors = [o for c in out.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    plots = [o for c in out.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plots) == 2  # component bars and gradient slices


def test_loss_explorer_builds_its_widget_by_default(tmp_path):
    out = execute("01_loss_explorer", tmp_path, shape=[32, 32, 32])
    views = [o for c in out.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1  # one box: controls, values, table and the two figures


@pytest.mark.parametrize(("parameter", "value"), [("loss", "dc_ce"), ("region", "XX")])
def test_loss_explorer_rejects_bad_parameter(tmp_path, parameter, value):
    with pytest.raises(pm.PapermillExecutionError, match=f"Parameter `{parameter}`"):
        execute("01_loss_explorer", tmp_path, **{"shape": [32, 32, 32], parameter: value})


# --------------------------------------------------------------------------- 02_train_evaluate


def test_train_evaluate_writes_complete_run(tmp_path, cohort):
    execute("02_train_evaluate", tmp_path, manifest=str(cohort), **TINY)
    out = tmp_path / "run"
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete"
    assert info["parameters"]["loss"] == "blob" and info["parameters"]["patch_size"] == [32, 32, 32]
    assert {"workbench", "torch"} <= set(info["versions"])
    assert info["started"] <= info["finished"]
    per_case = pd.read_parquet(out / "per_case.parquet")
    assert list(per_case.columns) == ["case_id", "region", "metric", "threshold", "stratum", "value"]
    assert set(per_case["case_id"]) == set(info["held_out_cases"])
    for name in info["outputs"]:
        assert (out / name).exists()
    assert (out / "lesions.parquet").is_file() and (out / "summary.parquet").is_file()

    # a run stopped before run.json (e.g. killed in evaluation) is redone by resuming its training
    (out / "run.json").unlink()
    execute("02_train_evaluate", tmp_path, manifest=str(cohort), **TINY)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert json.loads((out / "train" / "run.json").read_text())["resumed"] is True


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("epochs", 0), ("loss", "blobb"), ("patch_size", [32, 32]), ("alpha", "one")],
)
def test_train_evaluate_rejects_bad_parameter(tmp_path, cohort, parameter, value):
    parameters = {**TINY, "manifest": str(cohort), parameter: value}
    with pytest.raises(pm.PapermillExecutionError, match=f"Parameter `{parameter}`"):
        execute("02_train_evaluate", tmp_path, **parameters)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- 03_compare


def _fake_run(sweep: Path, name: str, loss: str, beta: float, seed: int, dice: float, status: str = "complete"):
    run = sweep / name
    run.mkdir(parents=True)
    rows = []
    for case in ("c1", "c2"):
        for region in ("WT", "TC", "ET", "RC", "mean"):
            rows.append((case, region, "dice", float("nan"), "all", dice))
            for t in (0.1, 0.3, 0.5):
                for stratum in ("all", "<100", "100-1000", ">=1000"):
                    rows += [(case, region, m, t, stratum, dice * t) for m in ("pq", "rq", "sq")]
    pd.DataFrame(rows, columns=["case_id", "region", "metric", "threshold", "stratum", "value"]).to_parquet(
        run / "per_case.parquet", index=False
    )
    parameters = {"loss": loss, "alpha": 1.0, "beta": beta, "seed": seed, "fold": 0}
    (run / "run.json").write_text(json.dumps({"status": status, "parameters": parameters}))


def test_compare_writes_a_row_per_loss(tmp_path):
    sweep = tmp_path / "sweep"
    _fake_run(sweep, "dc_ce-s0", "dc_ce", 1.0, 0, 0.6)
    _fake_run(sweep, "blob-s0", "blob", 1.0, 0, 0.7)
    _fake_run(sweep, "blob-s1", "blob", 1.0, 1, 0.8)
    _fake_run(sweep, "cc-s0", "cc", 1.0, 0, 0.9, status="running")  # not complete: ignored
    execute("03_compare", tmp_path, sweep_dir=str(sweep), out_dir="compare")
    compare = pd.read_parquet(tmp_path / "compare" / "compare.parquet")
    dice = compare[(compare["metric"] == "dice") & (compare["region"] == "mean")].set_index("loss")
    assert sorted(dice.index) == ["blob", "dc_ce"]
    assert dice.loc["blob", "mean"] == pytest.approx(0.75) and dice.loc["blob", "n_runs"] == 2
    assert dice.loc["dc_ce", "mean"] == pytest.approx(0.6)
    assert {"loss", "alpha", "beta", "region", "metric", "threshold", "stratum", "mean", "std", "n_runs"} <= set(compare)


def test_compare_names_sweep_dir_without_complete_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(pm.PapermillExecutionError, match="Parameter `sweep_dir`"):
        execute("03_compare", tmp_path, sweep_dir=str(tmp_path / "empty"))


def test_audit_lists_the_lesions_of_the_most_missed_case(tmp_path, cohort):
    import numpy as np
    import yaml

    from workbench.data.manifest import load_case, load_manifest
    from workbench.data.nifti import save_nifti
    from workbench.data.perturb import Perturbation, perturb_labels
    from workbench.metrics import lesion_table

    manifest = load_manifest(cohort)
    run = tmp_path / "run"
    (run / "train" / "predictions").mkdir(parents=True)
    (run / "train" / "config.yaml").write_text(yaml.safe_dump({"manifest": str(cohort), "loss": "iwl_cc"}))
    tables = []
    for index, entry in enumerate(manifest.cases[:3]):
        case = load_case(manifest, entry.id)
        prediction = perturb_labels(case.label, seed=index, perturbation=Perturbation(drop=0.3 * index))
        save_nifti(run / "train" / "predictions" / f"{entry.id}.nii.gz", prediction.astype(np.uint8), case.affine)
        tables.append(lesion_table(prediction, case.label, spacing=case.spacing, threshold=0.5, case_id=entry.id))
    lesions = pd.concat(tables, ignore_index=True)
    lesions.to_parquet(run / "lesions.parquet")
    misses = lesions[lesions["status"] == "FN"].groupby("case_id").size()
    assert len(misses), "the perturbations should miss some lesion"

    out = execute("04_audit", tmp_path, run_dir=str(run), open_viewer=False)
    text = "".join(output.get("text", "") for cell in out.cells for output in cell.get("outputs", []))
    assert f"case {misses.idxmax()}, loss iwl_cc" in text
    assert f"workbench audit {run} --case {misses.idxmax()}" in text
    expected = lesions[lesions["case_id"] == misses.idxmax()]["status"].value_counts()
    assert f"FN    {expected.get('FN', 0)}" in text and f"TP    {expected.get('TP', 0)}" in text


def test_audit_rejects_a_missing_run_dir(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="run_dir"):
        execute("04_audit", tmp_path, run_dir=str(tmp_path / "nope"), open_viewer=False)
