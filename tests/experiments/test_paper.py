"""The multi-class paper's comparison: reference numbers, tables, claims, report sections, the sweep file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.experiments import load_sweep
from workbench.experiments.demo import RECIPE
from workbench.experiments.paper import (
    PAPER_CONFIGS,
    PAPER_REFERENCE,
    Cell,
    Claim,
    paper_claims,
    paper_config,
    paper_reference,
    paper_sections,
    paper_tables,
)
from workbench.losses import LOSS_NAMES

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT.parent / "shared" / "papers" / "multiclass-instance-losses.txt"
SWEEP = ROOT / "configs" / "sweeps" / "paper_mets.yaml"
CASES = [f"c{i}" for i in range(6)]
OFFSETS = np.array([-0.03, -0.02, -0.01, 0.01, 0.02, 0.03])  # per case; mean 0
SEED_SHIFT = (-0.01, 0.0, 0.01)  # per seed; mean 0


def _rows(loss, beta, cell, per_seed, alpha=1.0):
    """Results rows of one configuration and cell: ``per_seed[s][i]`` is case i of seed s."""
    region, metric, threshold, stratum = cell
    return [
        {"run_id": f"{loss}-a{alpha:g}-b{beta:g}-s{seed}", "loss": loss, "alpha": alpha, "beta": beta, "seed": seed,
         "case_id": CASES[i], "region": region, "metric": metric,
         "threshold": math.nan if threshold is None else threshold, "stratum": stratum, "value": value}
        for seed, values in enumerate(per_seed) for i, value in enumerate(values)
    ]


def _config_rows(loss, beta, level, cells, alpha=1.0):
    """Every cell of a configuration at ``level`` + case offset + seed shift (so per case, over seeds:
    level + offset; over cases: mean ``level``, std that of OFFSETS)."""
    rows = []
    for cell in cells:
        per_seed = [list(level + OFFSETS + shift) for shift in SEED_SHIFT]
        rows += _rows(loss, beta, cell, per_seed, alpha=alpha)
    return rows


ALL_CELLS = (
    [(r, "dice", None, "all") for r in ("WT", "TC", "ET", "RC", "mean")]
    + [("mean", m, t, s) for m in ("pq", "rq") for t in (0.1, 0.3, 0.5) for s in ("all", "<100", "100-1000", ">=1000")]
)
OFFSET_STD = float(np.std(OFFSETS, ddof=1))


# --------------------------------------------------------------------------- reference numbers


def test_reference_columns_and_configs():
    reference = paper_reference()
    assert list(reference.columns[:8]) == ["config", "table", "section", "region", "metric", "threshold", "stratum",
                                           "value"]
    assert "quote" in reference.columns
    assert set(reference["config"]) <= {c.key for c in PAPER_CONFIGS}
    assert set(reference["table"]) <= {"Table 2", "Table 3", "Table 5", "Table 6"}
    keys = reference[["config", "region", "metric", "threshold", "stratum"]].astype(str)
    assert not keys.duplicated().any()
    row = reference[(reference.config == "dc_ce") & (reference.region == "WT")].iloc[0]
    assert (row.value, row.table, row.section, row.metric) == (0.751, "Table 3", "§4.2", "dice")
    assert math.isnan(row.threshold)
    assert PAPER_REFERENCE.equals(reference)


@pytest.mark.skipif(not PAPER.is_file(), reason=f"the paper's text is not at {PAPER} (shared/ beside the checkout)")
def test_every_reference_number_and_claim_quote_appears_verbatim_in_the_paper():
    text = PAPER.read_text(encoding="utf-8")
    for row in paper_reference().itertuples():
        assert row.quote in text, row.quote
        assert row.as_written in row.quote and float(row.as_written) == row.value
        assert row.as_written in text
    for quote in paper_claims(pd.DataFrame(columns=["run_id", "loss", "case_id", "region", "metric", "threshold",
                                                    "stratum", "value"]))["quote"]:
        assert quote in text, quote


# --------------------------------------------------------------------------- configurations


def test_paper_config_maps_loss_and_beta_and_leaves_other_settings_out():
    rows = pd.DataFrame({
        "loss": ["dc_ce", "dc_ce", "blob", "blob", "blob", "iwl_cc", "invweight_local", "nope"],
        "alpha": [1.0, 1.0, 1.0, 1.0, 2.0, 1, 3.0, 1.0],
        "beta": [1.0, 2.0, 1.0, 2.0, 1.0, 2, 2.0, 1.0],
    })
    assert paper_config(rows).tolist() == [
        "dc_ce", "dc_ce", "blob-b1", "blob-b2", None, "iwl_cc-b2", "invweight_local", None,
    ]
    assert paper_config(pd.DataFrame({"loss": ["cc"]})).tolist() == ["cc-b1"]  # alpha, beta default 1
    assert paper_config(pd.DataFrame({"x": [1]})).tolist() == [None]


# --------------------------------------------------------------------------- tables


def test_table3_hand_computed_mean_over_seeds_then_mean_and_std_over_cases():
    wt, fg = ("WT", "dice", None, "all"), ("mean", "dice", None, "all")
    rows = (
        _rows("dc_ce", 1.0, wt, [[0.5, 0.7, 0.9], [0.7, 0.7, 0.7]])  # per case 0.6, 0.7, 0.8
        + _rows("dc_ce", 1.0, fg, [[0.2, 0.4, 0.6], [0.4, 0.4, 0.4]])  # per case 0.3, 0.4, 0.5
        + _rows("cc", 1.0, wt, [[0.9, 0.9, 0.9]])
        + _rows("cc", 2.0, wt, [[0.1, 0.3, 0.2]])
        + _rows("blob", 1.0, wt, [[0.0, 0.0, 0.0]], alpha=2.0)  # not a paper configuration
    )
    table = paper_tables(pd.DataFrame(rows))["Table 3"]
    assert list(table.index) == ["Baseline (DC+CE)", "Global + CC", "Global + CC†"]
    assert list(table.columns.get_level_values(0)) == ["WT"] * 3 + ["TC"] * 3 + ["ET"] * 3 + ["RC"] * 3 + ["FG"] * 3 + ["n"] * 2
    assert list(table.columns[:3]) == [("WT", "mean"), ("WT", "std"), ("WT", "paper")]
    base = table.loc["Baseline (DC+CE)"]
    assert base[("WT", "mean")] == pytest.approx(0.7)
    assert base[("WT", "std")] == pytest.approx(0.1)  # over cases, not over the 6 (seed, case) values
    assert base[("FG", "mean")] == pytest.approx(0.4) and base[("FG", "std")] == pytest.approx(0.1)
    assert base[("WT", "paper")] == 0.751 and base[("RC", "paper")] == 0.150
    assert math.isnan(base[("TC", "mean")]) and base[("TC", "paper")] == 0.749
    assert (base[("n", "cases")], base[("n", "runs")]) == (3, 2)
    assert table.loc["Global + CC", ("WT", "mean")] == pytest.approx(0.9)
    assert table.loc["Global + CC", ("WT", "std")] == pytest.approx(0.0)
    assert table.loc["Global + CC†", ("WT", "mean")] == pytest.approx(0.2)
    assert table.loc["Global + CC†", ("WT", "std")] == pytest.approx(0.1)
    assert table.loc["Global + CC", ("FG", "paper")] == 0.644 and table.loc["Global + CC†", ("FG", "paper")] == 0.638


def test_all_tables_layout_order_and_values():
    rows = (
        _config_rows("dc_ce", 1.0, 0.5, ALL_CELLS) + _config_rows("dc_ce", 2.0, 0.5, ALL_CELLS)  # beta ignored: runs
        + _config_rows("blob", 1.0, 0.6, ALL_CELLS) + _config_rows("invweight_global", 1.0, 0.2, ALL_CELLS)
        + _config_rows("iwl_blob", 1.0, 0.4, ALL_CELLS)
    )
    tables = paper_tables(pd.DataFrame(rows))
    assert list(tables) == ["Table 2", "Table 3", "Table 5", "Table 6"]
    # Table 2 lists IWL before InvWeight; Tables 3-6 the other way round
    assert list(tables["Table 2"].index) == ["Baseline (DC+CE)", "Global + Blob", "Global + IWL-Blob", "InvWeight (global)"]
    assert list(tables["Table 5"].index) == ["Baseline (DC+CE)", "Global + Blob", "InvWeight (global)", "Global + IWL-Blob"]
    assert list(dict.fromkeys(tables["Table 2"].columns.get_level_values(0))) == ["small", "medium", "large", "n"]
    assert list(dict.fromkeys(tables["Table 5"].columns.get_level_values(0))) == ["0.1", "0.3", "0.5", "n"]
    for name, table in tables.items():
        for label, level in (("Baseline (DC+CE)", 0.5), ("Global + Blob", 0.6), ("InvWeight (global)", 0.2)):
            means = table.xs("mean", axis=1, level=1).loc[label]
            assert np.allclose(means.to_numpy(dtype=float), level), name
            stds = table.xs("std", axis=1, level=1).loc[label]
            assert np.allclose(stds.to_numpy(dtype=float), OFFSET_STD), name
    assert tables["Table 3"].loc["Baseline (DC+CE)", ("n", "runs")] == 6  # 3 seeds x beta 1, 2
    assert tables["Table 5"].loc["Baseline (DC+CE)", ("0.5", "paper")] == 0.38
    assert math.isnan(tables["Table 5"].loc["Baseline (DC+CE)", ("0.1", "paper")])
    assert tables["Table 5"].loc["Global + IWL-Blob", ("0.5", "paper")] == 0.306
    assert tables["Table 6"].xs("paper", axis=1, level=1).isna().all().all()  # the text gives no RQ number


def test_tables_of_results_without_paper_configurations_are_empty():
    rows = pd.DataFrame(_rows("blob", 1.0, ("WT", "dice", None, "all"), [[0.5]], alpha=2.0))
    assert all(len(table) == 0 for table in paper_tables(rows).values())


# --------------------------------------------------------------------------- claims


def _claim(claims, text):
    rows = claims[claims["claim"] == text]
    assert len(rows) == 1, text
    return rows.iloc[0]


def _claim_results():
    """DC+CE, Blob, CC, IWL-Blob with chosen per-case values (one seed each, 6 cases)."""
    rc, pq5, fg = ("RC", "dice", None, "all"), ("mean", "pq", 0.5, "all"), ("mean", "dice", None, "all")
    base = list(0.3 + OFFSETS)
    noise = [0.1, -0.1, 0.1, -0.1, 0.1, -0.1]
    rows = (
        _rows("dc_ce", 1.0, rc, [base]) + _rows("dc_ce", 1.0, pq5, [base]) + _rows("dc_ce", 1.0, fg, [base])
        # CC: RC clearly higher (agrees), PQ@0.5 within the noise (keeps it: agrees), FG Dice within the noise
        + _rows("cc", 1.0, rc, [[v + 0.2 for v in base]])
        + _rows("cc", 1.0, pq5, [[v + n for v, n in zip(base, noise)]])
        + _rows("cc", 1.0, fg, [[v + n for v, n in zip(base, noise)]])
        # Blob: RC clearly lower than DC+CE (disagrees with "Blob raises RC Dice"), PQ@0.5 below CC
        + _rows("blob", 1.0, rc, [[v - 0.1 for v in base]])
        + _rows("blob", 1.0, pq5, [[v - 0.05 for v in base]])
        # IWL-Blob: PQ@0.5 below Blob (agrees), RC above Blob
        + _rows("iwl_blob", 1.0, pq5, [[v - 0.2 for v in base]])
        + _rows("iwl_blob", 1.0, rc, [[v + 0.3 for v in base]])
    )
    return pd.DataFrame(rows)


def test_claims_agree_disagree_and_cannot_tell():
    claims = paper_claims(_claim_results())
    row = _claim(claims, "CC raises RC Dice over DC+CE")
    assert (row.agreement, row.verdict, row.versus, row.n_cases) == ("agrees", "better", "Baseline (DC+CE)", 6)
    assert row.difference == pytest.approx(0.2) and row.low == pytest.approx(0.2) and row.high == pytest.approx(0.2)
    assert (row.region, row.metric, row.stratum) == ("RC", "dice", "all") and math.isnan(row.threshold)
    assert row["where"] == "§4.2, §5"
    row = _claim(claims, "Blob raises RC Dice over DC+CE")
    assert (row.agreement, row.verdict) == ("disagrees", "worse") and row.difference == pytest.approx(-0.1)
    row = _claim(claims, "CC raises foreground Dice over DC+CE")  # +-0.1 per case: the interval holds 0
    assert (row.verdict, row.agreement) == ("within the noise", "cannot tell")
    assert row.low < 0 < row.high and row.reason == "the interval holds 0: no ordering either way"
    row = _claim(claims, "CC keeps DC+CE's PQ@0.5")  # "maintaining": within the noise agrees
    assert (row.verdict, row.agreement, row.expected) == ("within the noise", "agrees", "not lower")
    assert row.reason.startswith("the interval holds 0; its low end")
    row = _claim(claims, "IWL-Blob has a lower PQ@0.5 than Blob")
    assert (row.verdict, row.agreement) == ("worse", "agrees") and row.difference == pytest.approx(-0.15)
    row = _claim(claims, "IWL-Blob raises RC Dice over Blob")
    assert row.agreement == "agrees" and row.difference == pytest.approx(0.4)


def test_best_and_worst_claims_compare_with_the_strongest_rival_present():
    claims = paper_claims(_claim_results())
    row = _claim(claims, "Blob has the best PQ@0.5")  # CC's PQ@0.5 (~ DC+CE) beats Blob's
    assert row.agreement == "disagrees" and row.versus in ("Global + CC", "Baseline (DC+CE)")
    row = _claim(claims, "IWL-Blob has the best RC Dice")  # rivals: DC+CE 0.3, CC 0.5, Blob 0.2
    assert (row.versus, row.agreement) == ("Global + CC", "agrees") and row.difference == pytest.approx(0.1)
    rows = pd.DataFrame(
        _rows("invweight_global", 1.0, ("mean", "dice", None, "all"), [[0.1, 0.2, 0.3]])
        + _rows("dc_ce", 1.0, ("mean", "dice", None, "all"), [[0.6, 0.7, 0.8]])
        + _rows("cc", 1.0, ("mean", "dice", None, "all"), [[0.4, 0.5, 0.6]])
        + _rows("invweight_local", 1.0, ("mean", "dice", None, "all"), [[0.0, 0.0, 0.0]])  # not a rival
    )
    row = _claim(paper_claims(rows), "InvWeight (global) is below every non-InvWeight configuration in foreground Dice")
    assert (row.versus, row.agreement) == ("Global + CC", "agrees") and row.difference == pytest.approx(-0.3)


def test_claims_with_an_absent_configuration_or_cell_cannot_tell():
    claims = paper_claims(_claim_results())
    row = _claim(claims, "Blob: β=1 beats β=2 in foreground Dice")
    assert row.agreement == "cannot tell" and row.reason == "no results for Global + Blob†"
    assert pd.isna(row.verdict) and math.isnan(row.difference) and row.n_cases == 0
    row = _claim(claims, "IWL-CC has a lower PQ@0.5 than CC")
    assert (row.agreement, row.reason) == ("cannot tell", "no results for Global + IWL-CC")
    row = _claim(claims, "CC has the best TC Dice")  # CC is present, but no TC values
    assert (row.agreement, row.reason) == ("cannot tell", "no TC Dice values for Global + CC")
    assert row.versus == "the strongest rival present"
    row = _claim(claims, "IWL-CC: β=1 beats β=2 in PQ@0.5")
    assert row.reason == "no results for Global + IWL-CC and Global + IWL-CC†"
    assert len(paper_claims(pd.DataFrame(columns=["loss", "case_id", "region", "metric", "threshold", "stratum",
                                                  "value"]))["agreement"].unique()) == 1


def test_a_single_paired_case_cannot_tell():
    rc = ("RC", "dice", None, "all")
    rows = pd.DataFrame(_rows("cc", 1.0, rc, [[0.9]]) + _rows("dc_ce", 1.0, rc, [[0.1]]))
    row = _claim(paper_claims(rows), "CC raises RC Dice over DC+CE")
    assert (row.verdict, row.agreement, row.n_cases) == ("cannot tell", "cannot tell", 1)
    assert row.reason == "fewer than two cases with both values: no interval"
    assert row.difference == pytest.approx(0.8)


def test_custom_claims():
    claim = Claim("CC below DC+CE in RC Dice", "nowhere", "", "cc-b1", ("dc_ce",), Cell("RC", "dice"), "lower")
    claims = paper_claims(_claim_results(), claims=[claim])
    assert claims["agreement"].tolist() == ["disagrees"]


# --------------------------------------------------------------------------- report sections


def test_sections_need_two_paper_configurations():
    one = pd.DataFrame(_config_rows("dc_ce", 1.0, 0.5, ALL_CELLS))
    assert paper_sections(one) == ([], [])
    assert paper_sections(one.iloc[:0]) == ([], [])


def test_sections_hold_tables_claims_and_figure_3():
    rows = pd.DataFrame(
        _config_rows("dc_ce", 1.0, 0.5, ALL_CELLS) + _config_rows("cc", 1.0, 0.6, ALL_CELLS)
    ).assign(config="a column the report adds")
    sections, figures = paper_sections(rows)
    text = "\n".join(sections)
    for name in ("Table 2", "Table 3", "Table 5", "Table 6", "claimed orderings"):
        assert name in text
    assert "Table 4 is left out" in text and "0.600 ± 0.024" in text and "0.751" in text
    assert "CC raises RC Dice over DC+CE" in text
    assert len(figures) == 1 and isinstance(figures[0], go.Figure)
    assert {trace.name for trace in figures[0].data} == {"Baseline (DC+CE)", "Global + CC"}
    assert sorted(len(trace.x) for trace in figures[0].data) == [3, 3]  # a point per run


def test_sections_without_rc_dice_say_why_there_is_no_figure():
    cells = [c for c in ALL_CELLS if c[0] != "RC"]
    rows = pd.DataFrame(_config_rows("dc_ce", 1.0, 0.5, cells) + _config_rows("cc", 1.0, 0.6, cells))
    sections, figures = paper_sections(rows)
    assert figures == [] and any("No Figure 3" in s for s in sections)


# --------------------------------------------------------------------------- the sweep file


def test_sweep_file_makes_the_papers_eleven_configurations_with_three_seeds():
    spec = load_sweep(SWEEP)
    runs = spec.runs()
    points = pd.DataFrame([run.point for run in runs])
    assert set(points["loss"]) <= set(LOSS_NAMES)
    assert set(points["seed"]) == {0, 1, 2}
    points = points.assign(config=paper_config(points))
    assert points["config"].notna().all()
    assert set(points["config"]) == {c.key for c in PAPER_CONFIGS}
    assert len(PAPER_CONFIGS) == 11
    trainings = points[["config", "seed"]].drop_duplicates()
    assert len(trainings) == 33 and trainings.groupby("config")["seed"].nunique().eq(3).all()
    # `exclude` drops the beta = 2 points of the three losses without an instance term: no repeats
    assert len(runs) == 33
    assert spec.fixed == RECIPE  # the demo's CPU recipe


def test_the_quick_training_config_is_the_demo_recipe():
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "phantoms_quick.yaml").read_text())
    assert {key: config[key] for key in RECIPE} == RECIPE
