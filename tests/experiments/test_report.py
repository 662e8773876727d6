"""Sweep reports: results.parquet joins runs and per-case tables; report.html is self-contained."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from _sweep_notebook import BODY, PARAMETERS, write_notebook

from workbench.runs.record import write_json
from workbench.cli import main
from workbench.experiments import collect_results, load_sweep, write_report


def _fake_sweep(tmp_path, failed=("cc-b2-s1",)):
    """A sweep folder as run_sweep leaves it, with each run's notebook code run in-process."""
    write_notebook(tmp_path / "run.ipynb")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(
        {"name": "rep", "notebook": "run.ipynb", "grid": {"loss": ["blob", "cc"], "beta": [1, 2], "seed": [0, 1]},
         "fixed": {"epochs": 1}}, sort_keys=False))
    spec = load_sweep(path)
    runs = spec.runs()
    spec.sweep_dir.mkdir(parents=True)
    write_json(spec.sweep_dir / "sweep.json", {
        "name": spec.name, "notebook": str(spec.notebook), "grid": spec.grid, "fixed": spec.fixed,
        "runs": [{"run_id": r.run_id, "point": r.point, "parameters": r.parameters} for r in runs],
    })
    for run in runs:
        run_dir = spec.sweep_dir / run.run_id
        run_dir.mkdir()
        if run.run_id in failed:
            write_json(run_dir / "run.json", {"status": "failed", "error": "RuntimeError: boom", "traceback": ""})
            continue
        namespace: dict = {}
        exec(PARAMETERS, namespace)
        namespace.update(run.parameters, out_dir=str(run_dir))
        exec(BODY, namespace)
    return spec


def test_collect_results_tags_rows_with_grid_values_and_skips_unfinished_runs(tmp_path):
    spec = _fake_sweep(tmp_path)
    results = collect_results(spec.sweep_dir)
    assert list(results.columns[:4]) == ["run_id", "loss", "beta", "seed"]
    assert list(results.columns[4:]) == ["case_id", "region", "metric", "threshold", "stratum", "value"]
    assert sorted(results["run_id"].unique()) == sorted(r.run_id for r in spec.runs() if r.run_id != "cc-b2-s1")
    row = results[(results.run_id == "blob-b2-s1") & (results.metric == "dice")].iloc[0]
    assert (row["loss"], row["beta"], row["seed"]) == ("blob", 2, 1)
    assert math.isclose(row["value"], 0.5 + 0.2 + 0.01 + 0.1)
    assert results.attrs["status"]["cc-b2-s1"] == "failed" and results.attrs["fixed"] == {"epochs": 1}


def test_write_report_writes_parquet_and_self_contained_html(tmp_path):
    spec = _fake_sweep(tmp_path)
    results_path, report_path = write_report(spec.sweep_dir)
    assert (results_path, report_path) == (spec.sweep_dir / "results.parquet", spec.sweep_dir / "report.html")
    assert len(pd.read_parquet(results_path)) == len(collect_results(spec.sweep_dir))
    page = report_path.read_text()
    assert "<script src=" not in page and "* plotly.js v" in page and len(page) > 1_000_000  # plotly.js inline, once
    assert page.count("* plotly.js v") == 1
    assert page.count('class="plotly-graph-div"') == 2  # Dice bars and PQ lines
    assert "RuntimeError: boom" in page and "Mean region Dice" in page and "Mean RQ" in page
    # the Dice table averages cases and seeds per configuration (loss, beta)
    assert "loss=blob beta=2" in page and f"{0.5 + 0.2 + 0.005 + 0.1:.3f}" in page
    assert "<td>None</td>" not in page and "<th>runs</th>" in page
    # no training log, lesion table nor baseline: each new section says why instead of drawing
    assert "No findings: the sweep has no complete dc_ce" in page and "id='not-converged'" not in page
    assert "No training curves: no complete run has a train/metrics.parquet." in page
    assert "No recall by size stratum" in page and "No gallery" in page
    assert page.index("<h2 id='findings-heading'>Findings") < page.index("<h2>Runs") < page.index("Mean region Dice")
    assert sorted(p.name for p in spec.sweep_dir.iterdir() if p.name.startswith(".")) == []


def test_report_cli_and_help(tmp_path, capsys):
    spec = _fake_sweep(tmp_path, failed=())
    assert main(["report", str(spec.sweep_dir)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 1
    assert "is not a sweep folder" in capsys.readouterr().err
    for command in ("sweep", "report"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
    assert json.loads((spec.sweep_dir / "sweep.json").read_text())["name"] == "rep"


def test_report_compares_detection_at_matched_precision_with_intervals(tmp_path):
    spec = _fake_sweep(tmp_path, failed=())
    for run in spec.runs():
        blob = run.point["loss"] == "blob"
        rows, lesions = [], []
        for case in range(10):
            # blob finds both lesions of every case; cc finds one, misses one and adds a false positive
            found = [(1, 0.9), (1, 0.8)] if blob else [(1, 0.9), (1, 0.0), (0, 0.7)]
            rows += [{"case_id": f"c{case}", "region": "ET", "is_lesion": t, "confidence": c, "overlap": 0.5,
                      "volume_mm3": 50.0, "stratum": "<100"} for t, c in found]
            lesions.append({"case_id": f"c{case}", "region": "ET", "status": "TP", "threshold": 0.1,
                            "ref_mm3": 50.0, "pred_mm3": 40.0 if blob else 50.0})
        pd.DataFrame(rows).to_parquet(spec.sweep_dir / run.run_id / "detection_rows.parquet")
        pd.DataFrame(lesions).to_parquet(spec.sweep_dir / run.run_id / "lesions.parquet")
    _, report_path = write_report(spec.sweep_dir)
    page = report_path.read_text()
    assert "Detection at argmax and at matched precision 0.85" in page
    assert "1.000 [1.000, 1.000]" in page                     # blob: recall 1 at precision ≥ 0.85, every resample
    assert "Differences to loss=blob beta=1" in page and "beyond the noise" in page
    assert "Volume bias of detected lesions" in page and "0.800" in page
    assert page.count('class="plotly-graph-div"') == 6        # + PR curves, FROC, volume bias, recall by stratum
    assert "Lesion recall by size stratum" in page and "No gallery: no complete run has a lesions.parquet with lesion centroids" in page
    assert "No findings: the sweep has no complete dc_ce (DC+CE) run to compare with." in page


def test_unit_ids_spell_out_missing_replicates():
    """A run without a fold must still give every row a unit (pandas 3's astype(str) keeps None missing)."""
    from workbench.experiments.detection import unit_ids

    rows = pd.DataFrame({"seed": [0, 1], "fold": [None, None], "case_id": ["c1", "c1"]})
    ids = unit_ids(rows)
    assert ids.notna().all() and ids.tolist() == ["0/None/c1", "1/None/c1"]
