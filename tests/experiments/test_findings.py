"""Findings: paired intervals, verdicts, convergence, and the report that leads with them."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from workbench.experiments import write_report
from workbench.experiments.findings import (
    Interval,
    compare_to_baseline,
    convergence,
    finding_sentence,
    held_out_lesion_counts,
    lesion_case_values,
    matched_recall_findings,
    paired_interval,
    per_case_values,
    recall_by_stratum,
    verdict,
)
from workbench.runs.record import write_json
from workbench.viz.figures import LOSS_COLOURS

CASES = [f"c{i}" for i in range(6)]


# --------------------------------------------------------------------------- intervals and verdicts


def test_interval_excluding_zero_gives_better_and_worse_by_direction():
    b = pd.Series([0.5, 0.6, 0.4, 0.7, 0.55, 0.65], index=CASES)
    a = b + np.array([0.10, 0.12, 0.08, 0.11, 0.09, 0.10])
    interval = paired_interval(a, b)
    assert interval.n_cases == 6
    assert math.isclose(interval.difference, 0.10, abs_tol=1e-12)
    assert 0.08 <= interval.low < interval.difference < interval.high <= 0.12
    assert verdict(interval) == "better"
    assert verdict(interval, higher_is_better=False) == "worse"
    assert verdict(paired_interval(b, a)) == "worse"
    assert verdict(paired_interval(b, a), higher_is_better=False) == "better"


def test_interval_containing_zero_is_within_the_noise():
    b = pd.Series(0.5, index=CASES)
    a = b + pd.Series([0.1, -0.1, 0.1, -0.1, 0.1, -0.1], index=CASES)
    interval = paired_interval(a, b)
    assert math.isclose(interval.difference, 0.0, abs_tol=1e-12) and interval.low < 0 < interval.high
    assert verdict(interval) == "within the noise"


def test_interval_pairs_on_case_id_and_skips_nan():
    a = pd.Series([1.0, 2.0, float("nan"), 4.0], index=["c3", "c1", "c2", "x"])
    b = pd.Series([0.0, 1.0, 5.0], index=["c1", "c2", "c3"])
    interval = paired_interval(a, b)
    assert interval.n_cases == 2  # c1 (2 − 0) and c3 (1 − 5); c2 NaN, x unpaired
    assert math.isclose(interval.difference, ((2 - 0) + (1 - 5)) / 2)
    assert interval == paired_interval(a, b)  # seeded: reproducible


@pytest.mark.parametrize("interval", [
    Interval(0.2, float("nan"), float("nan"), 1), Interval(float("nan"), float("nan"), float("nan"), 0),
    Interval(0.2, 0.1, 0.3, 1),
])
def test_undefined_intervals_cannot_tell(interval):
    assert verdict(interval) == "cannot tell"


def test_one_case_or_none_gives_an_undefined_interval():
    one = paired_interval(pd.Series([0.9], index=["c0"]), pd.Series([0.1], index=["c0"]))
    assert one.n_cases == 1 and math.isclose(one.difference, 0.8) and math.isnan(one.low)
    none = paired_interval(pd.Series([0.9], index=["c0"]), pd.Series([0.1], index=["c1"]))
    assert none.n_cases == 0 and math.isnan(none.difference)
    assert verdict(one) == verdict(none) == "cannot tell"


# --------------------------------------------------------------------------- convergence


def _log(mean: list[float], wt: list[float] | None = None, every: int = 1) -> pd.DataFrame:
    rows = []
    for epoch in range(len(mean)):
        rows.append({"epoch": epoch, "phase": "train", "region": "", "metric": "loss", "threshold": float("nan"),
                     "value": 1.0 / (epoch + 1)})
        if epoch % every and epoch != len(mean) - 1:
            continue
        for region, values in (("mean", mean), ("WT", wt or [v + 0.1 for v in mean])):
            rows.append({"epoch": epoch, "phase": "val", "region": region, "metric": "dice",
                         "threshold": float("nan"), "value": values[epoch]})
    return pd.DataFrame(rows)


def test_a_flat_log_above_the_wt_floor_has_converged():
    state = convergence(_log([0.70] * 10, wt=[0.80] * 10))
    assert state.converged and state.reason == "" and state.epochs == 10
    assert state.final_dice == {"WT": 0.80, "mean": 0.70}


def test_a_log_still_rising_over_its_last_fifth_has_not_converged():
    mean = [0.60] * 8 + [0.63, 0.66]  # epochs 5-9 (the last half): median pairwise slope 0.015 × 1.8 epochs
    state = convergence(_log(mean, wt=[0.8] * 10))
    assert not state.converged and "still rising" in state.reason and "+0.027" in state.reason
    # a small late rise is noise
    assert convergence(_log([0.60] * 8 + [0.61, 0.615], wt=[0.8] * 10)).converged


def test_a_rise_is_read_between_logged_epochs_when_validation_is_sparse():
    mean = [0.3 + 0.04 * e for e in range(11)]  # logged at 0, 3, 6, 9, 10
    state = convergence(_log(mean, wt=[0.8] * 11, every=3))
    assert not state.converged and "+0.080" in state.reason and "epochs 3-10" in state.reason


def test_one_dip_before_the_last_fifth_is_not_a_rise():
    """The demo's blob run: a dip at epoch 9 of 14 (validation every 2nd epoch), then back on its plateau."""
    mean = {1: 0.050, 3: 0.699, 5: 0.796, 7: 0.840, 9: 0.799, 11: 0.844, 13: 0.851}
    log = _log([mean.get(e, 0.0) for e in range(14)], wt=[0.9] * 14)
    log = log[log["phase"].eq("train") | log["epoch"].isin(list(mean))]
    assert sorted(set(log.loc[log["phase"].eq("val"), "epoch"])) == list(mean)
    assert convergence(log).converged  # two single values (epoch 9 → 13) would read +0.052
    rising = log.assign(value=np.where(log["phase"].eq("val") & log["epoch"].ge(9), log["value"] + 0.03 * (log["epoch"] - 8), log["value"]))
    assert not convergence(rising).converged  # the same log still climbing after the dip


def test_wt_dice_below_half_at_the_last_epoch_has_not_converged():
    state = convergence(_log([0.7] * 10, wt=[0.8] * 9 + [0.45]))
    assert not state.converged and "WT Dice at the last epoch 0.450 < 0.5" in state.reason


def test_a_log_without_validation_dice_has_not_converged():
    log = _log([0.7] * 3)
    state = convergence(log[log["phase"].eq("train")])
    assert not state.converged and state.reason == "no validation Dice logged" and state.final_dice == {}


# --------------------------------------------------------------------------- per-case findings


def _values(config: str, run_id: str, measure: str, values) -> pd.DataFrame:
    return pd.DataFrame({"run_id": run_id, "config": config, "case_id": CASES, "measure": measure, "value": values})


def test_compare_to_baseline_averages_seeds_then_pairs_cases():
    base = np.linspace(0.5, 0.75, 6)
    values = pd.concat([
        _values("dc", "dc-s0", "rc_dice", base - 0.01), _values("dc", "dc-s1", "rc_dice", base + 0.01),
        _values("blob", "blob-s0", "rc_dice", base + 0.09), _values("blob", "blob-s1", "rc_dice", base + 0.11),
        _values("dc", "dc-s0", "volume_bias", [0.2] * 6), _values("blob", "blob-s0", "volume_bias", [0.3] * 6),
    ])
    table = compare_to_baseline(values, "dc").set_index("measure")
    rc = table.loc["rc_dice"]
    assert rc["config"] == "blob" and math.isclose(rc["difference"], 0.10) and rc["verdict"] == "better"
    assert math.isclose(rc["low"], 0.10) and math.isclose(rc["high"], 0.10) and rc["n_cases"] == 6
    assert math.isclose(rc["seed_sd"], np.std([0.09, 0.11], ddof=1)) and rc["n_seeds"] == 2
    bias = table.loc["volume_bias"]  # lower is better: a larger |log ratio| is worse
    assert math.isclose(bias["difference"], 0.1) and bias["verdict"] == "worse" and math.isnan(bias["seed_sd"])
    sentence = finding_sentence("blob", table.reset_index(), "dc_ce")
    assert sentence.startswith("blob: RC Dice +0.100 [0.100, 0.100] better than dc_ce;")
    assert "volume bias |log ratio| +0.100 [0.100, 0.100] worse than dc_ce." in sentence


def test_sentence_says_why_a_finding_has_no_verdict():
    nan = math.nan
    row = {"label": "recall@P0.85 (WT)", "difference": nan, "low": nan, "high": nan, "verdict": "cannot tell"}
    rows = pd.DataFrame([{**row, "value": 0.93, "baseline_value": nan}, {**row, "value": nan, "baseline_value": nan},
                         {**row, "label": "RC Dice", "value": 0.5, "baseline_value": 0.4}])
    sentence = finding_sentence("blob", rows, "dc_ce")
    assert sentence == ("blob: recall@P0.85 (WT) – cannot tell (dc_ce has no value); recall@P0.85 (WT) – cannot tell "
                        "(neither has a value); RC Dice – cannot tell (fewer than two paired cases).")


def test_lesion_values_pool_regions_within_a_case():
    rows = [
        # c0: WT small lesion found (ref 50, pred 100), TC small missed, ET big found, one FP
        ("c0", "WT", "TP", 50.0, 100.0), ("c0", "TC", "FN", 40.0, float("nan")), ("c0", "ET", "TP", 500.0, 500.0),
        ("c0", "WT", "FP", float("nan"), 20.0), ("c0", "RC", "FN", 30.0, float("nan")),  # RC is not pooled
        # c1: only a big lesion, found
        ("c1", "WT", "TP", 2000.0, 1000.0),
    ]
    lesions = pd.DataFrame(rows, columns=["case_id", "region", "status", "ref_mm3", "pred_mm3"]).assign(
        run_id="r", config="k", threshold=0.5)
    values = lesion_case_values(lesions).set_index(["case_id", "measure"])["value"]
    assert math.isclose(values["c0", "small_recall"], 0.5) and math.isnan(values["c1", "small_recall"])
    assert math.isclose(values["c0", "precision"], 2 / 3) and math.isclose(values["c1", "precision"], 1.0)
    assert math.isclose(values["c0", "volume_bias"], abs(math.log(600 / 550)))
    assert math.isclose(values["c1", "volume_bias"], math.log(2))
    table = recall_by_stratum(lesions)
    small = table[(table["region"] == "WT") & (table["stratum"] == "<100")].iloc[0]
    assert small["recall"] == 1.0 and small["n_lesions"] == 1
    assert list(table[table["region"] == "WT"]["stratum"]) == ["<100", ">=1000"]  # size order


def test_held_out_lesions_count_each_case_once():
    # runs r0 and r1 (two seeds) both see case c0; run r2 (another fold) sees c1
    case0 = [("c0", "WT", "TP", 50.0), ("c0", "WT", "FN", 500.0), ("c0", "WT", "FP", float("nan")),
             ("c0", "TC", "FN", 2000.0)]
    rows = [(run, *row) for run in ("r0", "r1") for row in case0]
    rows += [("r2", "c1", "WT", "FN", 20.0), ("r2", "c1", "RC", "TP", 3000.0)]
    lesions = pd.DataFrame(rows, columns=["run_id", "case_id", "region", "status", "ref_mm3"])
    lesions = pd.concat([lesions.assign(threshold=0.1), lesions.assign(threshold=0.5, status="FN")])
    counts = held_out_lesion_counts(lesions)
    assert list(counts.index) == ["WT", "TC", "RC"]
    assert list(counts.columns) == ["<100", "100-1000", ">=1000", "all", "cases"]
    assert counts.loc["WT"].tolist() == [2, 1, 0, 3, 2]
    assert counts.loc["TC"].tolist() == [0, 0, 1, 1, 1]
    assert counts.loc["RC"].tolist() == [0, 0, 1, 1, 1]
    assert held_out_lesion_counts(lesions[lesions["status"].eq("FP")]).empty


def test_matched_recall_comes_from_the_detection_analysis():
    rows = []
    for config, seed in (("dc", 0), ("dc", 1), ("blob", 0), ("blob", 1)):
        for case in CASES:
            found = [(1, 0.9), (1, 0.8)] if config == "blob" else [(1, 0.9), (1, 0.0), (0, 0.7)]
            rows += [{"config": config, "seed": seed, "case_id": case, "region": "WT", "is_lesion": t, "confidence": c,
                      "overlap": 0.5, "volume_mm3": 50.0, "stratum": "<100"} for t, c in found]
    table = matched_recall_findings(pd.DataFrame(rows), "dc", n_resamples=50)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["config"] == "blob" and row["measure"] == "matched_recall" and row["value"] == 1.0
    assert row["difference"] > 0 and row["verdict"] == "better" and row["seed_sd"] == 0.0


# --------------------------------------------------------------------------- the report


def _label_maps(manifest, case_id, loss):
    """Reference label and a loss's prediction: dc_ce misses the largest lesion, blob adds a false positive."""
    import cc3d

    from workbench.data.nifti import load_label

    label, affine, spacing = load_label(manifest.case(case_id).label)
    pred = label.copy()
    if loss == "dc_ce":
        components = cc3d.connected_components(label > 0, connectivity=26)
        sizes = np.bincount(components.ravel())[1:]
        pred[components == 1 + int(np.argmax(sizes))] = 0
    else:
        pred[2:5, 2:5, 2:5] = 3
    return label, pred, affine, spacing


def _per_case(loss, seed, pq_shift):
    rows = []
    for index, case in enumerate(CASES):
        base = 0.6 + 0.02 * index
        shift = {"RC": 0.15 + 0.01 * seed, "mean": 0.03 if index % 2 else -0.03}
        for region in ("WT", "TC", "ET", "RC", "mean"):
            value = base + (shift.get(region, 0.0) if loss != "dc_ce" else 0.0)
            rows.append((case, region, "dice", float("nan"), "all", value))
            for t in (0.1, 0.3, 0.5):
                rows.append((case, region, "pq", t, "all", base - t / 4 + (pq_shift if loss != "dc_ce" else 0.0)))
    return pd.DataFrame(rows, columns=["case_id", "region", "metric", "threshold", "stratum", "value"])


def make_sweep(tmp_path, *, converged=True, pq_shift=-0.1):
    """A sweep folder of dc_ce and blob × 2 seeds on a 6-case cohort, with every file a run writes."""
    from workbench.data.cohort import make_cohort
    from workbench.data.manifest import read_manifest
    from workbench.data.nifti import save_nifti
    from workbench.metrics import lesion_table

    manifest_path = make_cohort(6, 0, tmp_path / "cohort", shape=(32, 32, 32))
    manifest = read_manifest(manifest_path)
    cases = [case.id for case in manifest.cases]
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    runs = [{"run_id": f"{loss}-s{seed}", "point": {"loss": loss, "seed": seed}} for loss in ("dc_ce", "blob") for seed in (0, 1)]
    write_json(sweep_dir / "sweep.json", {"name": "findings", "notebook": "run.ipynb", "grid": {"loss": ["dc_ce", "blob"], "seed": [0, 1]},
                                          "fixed": {"epochs": 10}, "runs": [{**r, "parameters": r["point"]} for r in runs]})
    for run in runs:
        loss, seed = run["point"]["loss"], run["point"]["seed"]
        run_dir = sweep_dir / run["run_id"]
        (run_dir / "predictions").mkdir(parents=True)
        (run_dir / "train").mkdir()
        write_json(run_dir / "run.json", {"status": "complete", "parameters": {
            "loss": loss, "alpha": 1.0, "beta": 1.0, "seed": seed, "manifest": str(manifest_path)}, "held_out_cases": cases})
        per_case = _per_case(loss, seed, pq_shift).assign(case_id=lambda t: t["case_id"].map(dict(zip(CASES, cases))))
        per_case.to_parquet(run_dir / "per_case.parquet")
        tables = []
        for case_id in cases:
            label, pred, affine, spacing = _label_maps(manifest, case_id, loss)
            save_nifti(run_dir / "predictions" / f"{case_id}.nii.gz", pred, affine)
            tables.append(lesion_table(pred, label, spacing=spacing,
                                       threshold=[0.1, 0.5], case_id=case_id))
        pd.concat(tables, ignore_index=True).to_parquet(run_dir / "lesions.parquet")
        late = not converged and loss == "dc_ce" and seed == 0
        mean = [0.3 + 0.03 * e for e in range(10)] if late else [0.7] * 10
        _log(mean, wt=[0.4] * 10 if late else [0.8] * 10).to_parquet(run_dir / "train" / "metrics.parquet")
    return sweep_dir


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """(converged sweep, not-converged sweep), each with its report written."""
    good = make_sweep(tmp_path_factory.mktemp("good"))
    bad = make_sweep(tmp_path_factory.mktemp("bad"), converged=False)
    for sweep_dir in (good, bad):
        write_report(sweep_dir)
    return good, bad


def test_report_leads_with_the_findings_table(sweeps):
    page = (sweeps[0] / "report.html").read_text()
    assert "id='not-converged'" not in page
    order = [page.index(marker) for marker in (
        "id='findings'", "class='sentences'", "<h2>Training curves", "<h2>Lesion recall by size stratum",
        "<h2>Gallery", "<h2>Runs", "Mean region Dice", "Volume bias of detected lesions",
    )]
    assert order == sorted(order)
    assert page.index("id='findings'") < page.index('class="plotly-graph-div"')
    findings = page[page.index("id='findings'"):page.index("</table>", page.index("id='findings'"))]
    cells = re.findall(r"<td>(.*?)</td>", findings)
    header = re.findall(r"<th>(.*?)</th>", findings)
    assert header[:4] == ["vs dc_ce", "RC Dice", "mean Dice", "PQ@0.5"]
    rc, mean, pq = cells[:3]
    assert "class='better'>better<" in rc and "+0.155 [0.155, 0.155]" in rc and "seed sd 0.007 / 0.000" in rc
    assert "within the noise" in mean and "class='worse'>worse<" in pq
    sentence = re.search(r"<li>(blob: .*?)</li>", page).group(1)
    assert sentence.startswith("blob: RC Dice +0.155 [0.155, 0.155] better than dc_ce; mean Dice +0.000")
    assert "PQ@0.5 -0.100 [-0.100, -0.100] worse than dc_ce" in sentence
    assert "recall &lt;100 mm³" in page and "lesion precision" in page and "volume bias" in page
    counts = page[page.index('class="dataframe lesion-counts"'):]
    counts = counts[:counts.index("</table>")]
    assert "<th>cases</th>" in counts and counts.index("<th>WT</th>") < counts.index("<th>TC</th>")


def test_report_gallery_and_one_colour_per_loss(sweeps):
    page = (sweeps[0] / "report.html").read_text()
    gallery = page[page.index("<h2>Gallery"):page.index("<h2>Runs")]
    tiles = gallery.count("data:image/png;base64,")
    assert 2 <= tiles <= 2 * 12 and "missed" in gallery and "false positive" in gallery
    assert "Left out" not in gallery
    for loss in ("dc_ce", "blob"):
        assert f"background:{LOSS_COLOURS[loss]}" in page  # findings and gallery swatches
        assert f'"color":"{LOSS_COLOURS[loss]}"' in page  # figure traces
    assert page.count("* plotly.js v") == 1


def test_banner_when_the_baseline_has_not_converged(sweeps):
    page = (sweeps[1] / "report.html").read_text()
    banner = page[page.index("id='not-converged'"):page.index("</div>", page.index("id='not-converged'"))]
    assert page.index("id='not-converged'") < page.index("id='findings'")
    assert "not converged: differences below are not findings" in banner
    assert "dc_ce-s0" in banner and "WT Dice at the last epoch 0.400 &lt; 0.5" in banner and "still rising" in banner
    assert "blob-s" not in banner


def test_empty_sections_say_why(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    for run_dir in sweep_dir.iterdir():
        if run_dir.is_dir():
            (run_dir / "lesions.parquet").unlink()
            (run_dir / "train" / "metrics.parquet").unlink()
    page = write_report(sweep_dir)[1].read_text()
    assert "No training curves: no complete run has a train/metrics.parquet." in page
    assert "No recall by size stratum" in page and "No gallery" in page
    # Dice bars, PQ lines and the paper's RC Dice against PQ scatter: all from per_case tables
    assert page.count('class="plotly-graph-div"') == 3
    assert "id='findings'" in page and "recall &lt;100 mm³" not in page  # per-case findings still there


def test_per_case_values_of_the_synthetic_sweep(tmp_path):
    from workbench.experiments.report import _load_sweep, _sweep_info, collect_results

    sweep_dir = make_sweep(tmp_path)
    sweep = _load_sweep(sweep_dir, _sweep_info(sweep_dir), collect_results(sweep_dir))
    assert sweep.baseline == "loss=dc_ce" and sweep.names == {"loss=dc_ce": "dc_ce", "loss=blob": "blob"}
    values = per_case_values(sweep.results, sweep.lesions)
    assert set(values["measure"]) == {"rc_dice", "mean_dice", "pq50", "small_recall", "precision", "volume_bias"}
    table = compare_to_baseline(values, sweep.baseline).set_index("measure")
    assert table.loc["precision", "verdict"] == "worse"  # blob adds a false positive to every case
