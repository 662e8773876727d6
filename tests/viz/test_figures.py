"""Plotly figures: traces, names and values on hand-built tables; bad input named in the error."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.viz.figures import (
    beta_effect_lines,
    component_loss_bars,
    froc_curves,
    gradient_slices,
    metric_bars,
    pr_curves,
    rc_dice_vs_pq,
    stratified_pq_bars,
    threshold_lines,
    volume_bias_bars,
)

# run -> (config, loss, alpha, beta, base value); config A has two runs (seeds), B and C one each
RUNS = {
    "a0": ("A", "blob", 1.0, 1.0, 0.5),
    "a1": ("A", "blob", 1.0, 1.0, 0.7),
    "b0": ("B", "blob", 1.0, 2.0, 0.4),
    "c0": ("C", "cc", 1.0, 1.0, 0.6),
}
CASES = {"c1": 0.0, "c2": 0.2}  # case offsets: the mean over cases adds 0.1
REGIONS = {"WT": 0.0, "RC": -0.2}
STRATA = {"all": 0.0, "small": -0.1, "large": 0.05}
THRESHOLDS = (0.1, 0.5)
# value = base + case + region (Dice); PQ: - t + stratum; RQ: - t / 2 + stratum
# run means over cases (Dice WT): a0 0.6, a1 0.8, b0 0.5, c0 0.7; RC: 0.2 less


def _results() -> pd.DataFrame:
    rows = []
    for run, (config, loss, alpha, beta, base) in RUNS.items():
        for case, c in CASES.items():
            for region, r in REGIONS.items():
                common = {"run_id": run, "config": config, "loss": loss, "alpha": alpha, "beta": beta, "case_id": case,
                          "region": region}
                rows.append({**common, "metric": "dice", "threshold": math.nan, "stratum": "all", "value": base + c + r})
                for t in THRESHOLDS:
                    for stratum, s in STRATA.items():
                        rows.append({**common, "metric": "pq", "threshold": t, "stratum": stratum, "value": base + c + r - t + s})
                        rows.append({**common, "metric": "rq", "threshold": t, "stratum": stratum, "value": base + c + r - t / 2 + s})
    return pd.DataFrame(rows)


@pytest.fixture
def results() -> pd.DataFrame:
    return _results()


def _trace(fig: go.Figure, name: str, **axes) -> go.BaseTraceType:
    """The one trace named ``name`` in the subplot ``axes`` (e.g. xaxis="x2")."""
    found = [t for t in fig.data if t.name == name and all(getattr(t, k) == v for k, v in axes.items())]
    assert len(found) == 1, [(t.name, t.xaxis, t.yaxis) for t in fig.data]
    return found[0]


def _facet_axes(fig: go.Figure, **facets) -> dict[str, str]:
    """The (xaxis, yaxis) of the facet whose annotations read ``column=value``, e.g. region="WT"."""
    texts = {f"{k}={v}" for k, v in facets.items()}
    traces = [t for t in fig.data if texts <= {a.text for a in fig.layout.annotations if _annotates(fig, a, t)}]
    assert traces, facets
    return {"xaxis": traces[0].xaxis, "yaxis": traces[0].yaxis}


def _annotates(fig: go.Figure, annotation, trace) -> bool:
    xaxis = fig.layout["xaxis" + trace.xaxis[1:]]
    yaxis = fig.layout["yaxis" + trace.yaxis[1:]]
    if annotation.textangle == 90:  # a row title: beside the row's y domain
        return yaxis.domain[0] <= annotation.y <= yaxis.domain[1]
    return xaxis.domain[0] <= annotation.x <= xaxis.domain[1]


# --------------------------------------------------------------------------- metric_bars


def test_metric_bars_means_over_runs_with_std_over_runs(results):
    fig = metric_bars(results, "dice")
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["bar"] * 3
    assert [t.name for t in fig.data] == ["A", "B", "C"]
    a, b, c = fig.data
    assert list(a.x) == ["WT", "RC"]
    assert list(a.y) == pytest.approx([0.7, 0.5])  # (0.6 + 0.8) / 2, then 0.2 less
    assert list(a.error_y.array) == pytest.approx([math.sqrt(0.02)] * 2)  # std of (0.6, 0.8)
    assert list(b.y) == pytest.approx([0.5, 0.3]) and np.isnan(b.error_y.array).all()  # one run: no spread
    assert list(c.y) == pytest.approx([0.7, 0.5])


def test_metric_bars_pools_cases(results):
    fig = metric_bars(results, "dice", spread="cases")
    a = _trace(fig, "A")
    assert list(a.y) == pytest.approx([0.7, 0.5])
    assert list(a.error_y.array) == pytest.approx([math.sqrt(0.08 / 3)] * 2)  # std of (0.5, 0.7, 0.7, 0.9)


def test_metric_bars_at_a_threshold(results):
    fig = metric_bars(results, "rq", threshold=0.5)
    assert list(_trace(fig, "B").y) == pytest.approx([0.5 - 0.25, 0.3 - 0.25])


def test_metric_bars_by_another_column(results):
    fig = metric_bars(results, "dice", by="loss")
    assert [t.name for t in fig.data] == ["blob", "cc"]
    assert list(fig.data[0].y) == pytest.approx([(0.6 + 0.8 + 0.5) / 3, (0.4 + 0.6 + 0.3) / 3])


# --------------------------------------------------------------------------- threshold_lines


def test_threshold_lines_one_trace_per_config_region_metric(results):
    fig = threshold_lines(results)
    assert len(fig.data) == 3 * 2 * 2
    assert {t.name for t in fig.data} == {"A", "B", "C"}
    assert all(t.mode == "lines+markers" for t in fig.data)
    pq_wt = _trace(fig, "A", **_facet_axes(fig, region="WT", metric="pq"))
    assert list(pq_wt.x) == pytest.approx([0.1, 0.5])
    assert list(pq_wt.y) == pytest.approx([0.7 - 0.1, 0.7 - 0.5])
    rq_rc = _trace(fig, "B", **_facet_axes(fig, region="RC", metric="rq"))
    assert list(rq_rc.y) == pytest.approx([0.3 - 0.05, 0.3 - 0.25])


def test_threshold_lines_one_metric_has_no_metric_rows(results):
    fig = threshold_lines(results, "pq")
    assert len(fig.data) == 3 * 2
    assert not any(a.text.startswith("metric=") for a in fig.layout.annotations)


# --------------------------------------------------------------------------- stratified_pq_bars


def test_stratified_pq_bars_leave_out_all(results):
    fig = stratified_pq_bars(results, 0.5)
    assert len(fig.data) == 3 * 2
    assert [t.name for t in fig.data if t.xaxis == fig.data[0].xaxis] == ["A", "B", "C"]
    wt = _trace(fig, "A", **_facet_axes(fig, region="WT"))
    assert list(wt.x) == ["small", "large"]
    assert list(wt.y) == pytest.approx([0.7 - 0.5 - 0.1, 0.7 - 0.5 + 0.05])
    rc = _trace(fig, "C", **_facet_axes(fig, region="RC"))
    assert list(rc.y) == pytest.approx([0.5 - 0.5 - 0.1, 0.5 - 0.5 + 0.05])


# --------------------------------------------------------------------------- rc_dice_vs_pq


def test_rc_dice_vs_pq_one_point_per_run(results):
    fig = rc_dice_vs_pq(results, 0.5, pq_region="WT")
    assert [t.name for t in fig.data] == ["A", "B", "C"]
    assert all(t.mode == "markers" for t in fig.data)
    a = fig.data[0]
    assert list(a.x) == pytest.approx([0.4, 0.6])  # RC Dice of runs a0, a1
    assert list(a.y) == pytest.approx([0.6 - 0.5, 0.8 - 0.5])  # their WT PQ at 0.5
    assert [list(d) for d in a.customdata] == [["a0"], ["a1"]]
    assert "RC Dice" in fig.layout.xaxis.title.text and "WT PQ (t = 0.5)" in fig.layout.yaxis.title.text


# --------------------------------------------------------------------------- beta_effect_lines


def test_beta_effect_lines_one_line_per_loss_and_alpha(results):
    fig = beta_effect_lines(results, threshold=0.5, region="WT")
    assert [t.name for t in fig.data] == ["blob, alpha=1", "cc, alpha=1"]
    blob, cc = fig.data
    assert list(blob.x) == [1.0, 2.0]
    assert list(blob.y) == pytest.approx([0.7 - 0.5, 0.5 - 0.5])  # runs a0, a1 at β 1; b0 at β 2
    assert list(cc.x) == [1.0] and list(cc.y) == pytest.approx([0.2])


def test_beta_effect_lines_without_dash_and_with_two_alphas(results):
    results.loc[results["run_id"] == "a1", "alpha"] = 0.5
    fig = beta_effect_lines(results, metric="dice", region="RC")
    assert [t.name for t in fig.data] == ["blob, alpha=1", "blob, alpha=0.5", "cc, alpha=1"]
    assert list(fig.data[1].y) == pytest.approx([0.6])
    fig = beta_effect_lines(results, metric="dice", region="RC", dash=None)
    assert [t.name for t in fig.data] == ["blob", "cc"]
    assert list(fig.data[0].y) == pytest.approx([0.5, 0.3])


# --------------------------------------------------------------------------- bad input


RESULT_FIGURES = {
    "metric_bars": lambda r: metric_bars(r, "dice"),
    "threshold_lines": lambda r: threshold_lines(r),
    "stratified_pq_bars": lambda r: stratified_pq_bars(r, 0.5),
    "rc_dice_vs_pq": lambda r: rc_dice_vs_pq(r, 0.5, pq_region="WT"),
    "beta_effect_lines": lambda r: beta_effect_lines(r, threshold=0.5, region="WT"),
}


@pytest.mark.parametrize("draw", RESULT_FIGURES.values(), ids=RESULT_FIGURES.keys())
@pytest.mark.parametrize("column", ["value", "region", "run_id", "config"])
def test_missing_column_is_named(results, draw, column):
    if column == "config" and draw is RESULT_FIGURES["beta_effect_lines"]:
        column = "beta"
    with pytest.raises(ValueError, match=rf"`results` is missing column\(s\) \['{column}'\]"):
        draw(results.drop(columns=column))


@pytest.mark.parametrize("draw", RESULT_FIGURES.values(), ids=RESULT_FIGURES.keys())
def test_empty_table_is_named(results, draw):
    with pytest.raises(ValueError, match=r"`results` is empty"):
        draw(results.iloc[:0])


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="Expected `results` to be a pandas DataFrame, but got dict"):
        metric_bars({"value": [1.0]})


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda r: metric_bars(r, "hd95"), r"no rows with metric == 'hd95'; metric values there: \['dice', 'pq', 'rq'\]"),
        (lambda r: metric_bars(r, "pq"), r"metric 'pq' have several matching thresholds \[0.1, 0.5\]; pass `threshold`"),
        (lambda r: metric_bars(r, "pq", threshold=0.3), r"no rows of metric 'pq' at threshold 0.3; thresholds there: \[0.1, 0.5\]"),
        (lambda r: metric_bars(r, "dice", stratum="tiny"), r"no rows with stratum == 'tiny'"),
        (lambda r: metric_bars(r, "dice", spread="folds"), r"Expected `spread` to be one of \('runs', 'cases'\), but got 'folds'"),
        (lambda r: threshold_lines(r, ()), r"Expected `metrics` to name at least one metric"),
        (lambda r: threshold_lines(r, ("pq", "sq")), r"no rows with metric == 'sq'"),
        (lambda r: stratified_pq_bars(r[r["stratum"] == "all"], 0.5), r"no size-stratified rows .* of metric 'pq'"),
        (lambda r: rc_dice_vs_pq(r, 0.5), r"no rows with region == 'mean'; region values there: \['RC', 'WT'\]"),
        (lambda r: beta_effect_lines(r, threshold=0.5, region="WT", dash="fold"), r"missing column\(s\) \['fold'\]"),
    ],
)
def test_bad_selection_is_named(results, draw, message):
    with pytest.raises(ValueError, match=message):
        draw(results)


def test_rc_dice_vs_pq_needs_runs_with_both(results):
    results = results[~((results["metric"] == "dice") & results["run_id"].isin(["a0", "a1"]))]
    assert [t.name for t in rc_dice_vs_pq(results, 0.5, pq_region="WT").data] == ["B", "C"]
    only_dice_runs = results[~((results["metric"] == "pq") & results["run_id"].isin(["b0", "c0"]))]
    with pytest.raises(ValueError, match=r"No run of `results` has both RC Dice and WT PQ \(t = 0.5\)"):
        rc_dice_vs_pq(only_dice_runs, 0.5, pq_region="WT")


# --------------------------------------------------------------------------- component_loss_bars


def _components(batches=(0, 0, 0)) -> pd.DataFrame:
    return pd.DataFrame({
        "batch": list(batches), "channel": ["WT", "WT", "ET"], "id": [1, 2, 1], "size": [50, 5, 20],
        "domain_size": [80, 20, 40], "weight": [1.0, 1.0, 1.0], "dice": [0.9, 0.2, 0.6], "ce": [0.1, 0.8, 0.3],
        "loss": [0.2, 1.0, 0.7],
    })


def test_component_loss_bars_one_bar_per_component_one_trace_per_channel():
    fig = component_loss_bars(_components())
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert [t.name for t in fig.data] == ["WT", "ET"]
    assert [list(t.x) for t in fig.data] == [["WT 1", "WT 2"], ["ET 1"]]
    assert [list(t.y) for t in fig.data] == [[0.2, 1.0], [0.7]]
    assert [list(t.y) for t in component_loss_bars(_components(), value="dice").data] == [[0.9, 0.2], [0.6]]


def test_component_loss_bars_labels_batches_and_channel_indices():
    table = _components(batches=(0, 1, 1)).assign(channel=[1, 1, 3])
    fig = component_loss_bars(table)
    assert [t.name for t in fig.data] == ["1", "3"]  # channel indices stay discrete: a trace each
    assert [list(t.x) for t in fig.data] == [["b0 1 1", "b1 1 2"], ["b1 3 1"]]


def test_component_loss_bars_bad_input():
    with pytest.raises(ValueError, match=r"`components` is missing column\(s\) \['loss'\]"):
        component_loss_bars(_components().drop(columns="loss"))
    with pytest.raises(ValueError, match=r"`components` is missing column\(s\) \['gradient'\]"):
        component_loss_bars(_components(), value="gradient")
    with pytest.raises(ValueError, match="`components` is empty"):
        component_loss_bars(_components().iloc[:0])


# --------------------------------------------------------------------------- gradient_slices


def test_gradient_slices_panels_and_shared_scale():
    image = np.arange(20.0).reshape(4, 5)
    reference = image > 10
    blob, dc_ce = np.full((4, 5), 0.5), np.zeros((4, 5))
    dc_ce[1, 2] = 2.0
    fig = gradient_slices(image, {"blob": blob, "dc_ce": dc_ce}, masks={"reference": reference}, image_title="t1c",
                          title="slice")
    assert [t.type for t in fig.data] == ["heatmap"] * 4
    assert [t.name for t in fig.data] == ["t1c", "reference", "blob", "dc_ce"]
    assert [a.text for a in fig.layout.annotations] == ["t1c", "reference", "blob", "dc_ce"]
    assert [t.xaxis for t in fig.data] == ["x", "x2", "x3", "x4"]
    np.testing.assert_array_equal(fig.data[0].z, image)
    np.testing.assert_array_equal(fig.data[1].z, reference.astype(float))
    np.testing.assert_array_equal(fig.data[3].z, dc_ce)
    assert [(t.zmin, t.zmax) for t in fig.data[2:]] == [(0.0, 2.0), (0.0, 2.0)]
    assert [t.showscale for t in fig.data] == [False, False, False, True]
    assert fig.layout.title.text == "slice"
    assert fig.layout.yaxis2.scaleanchor == "x2" and fig.layout.yaxis2.autorange == "reversed"


@pytest.mark.parametrize(
    ("image", "gradients", "masks", "message"),
    [
        (np.zeros((2, 3, 4)), {"blob": np.zeros((2, 3))}, None, r"`image` to be a 2-D array \(H, W\), but got shape \(2, 3, 4\)"),
        (np.zeros((2, 3)), {}, None, r"`gradients` to hold at least one"),
        (np.zeros((2, 3)), {"blob": np.zeros((3, 2))}, None, r"`gradients\['blob'\]` to have the image's shape \(2, 3\), but got \(3, 2\)"),
        (np.zeros((2, 3)), {"blob": np.zeros((2, 3))}, {"ref": np.zeros(6)}, r"`masks\['ref'\]` to have the image's shape"),
        (np.zeros((2, 3)), {"blob": -np.ones((2, 3))}, None, r"`gradients\['blob'\]` to be finite and ≥ 0"),
        (np.zeros((2, 3)), {"blob": np.full((2, 3), np.nan)}, None, r"`gradients\['blob'\]` to be finite and ≥ 0"),
    ],
)
def test_gradient_slices_bad_input(image, gradients, masks, message):
    with pytest.raises(ValueError, match=message):
        gradient_slices(image, gradients, masks=masks)


def test_pr_and_froc_curves_one_line_per_config_and_region():
    points = pd.DataFrame({
        "config": ["A", "A", "B", "B", "A"], "region": ["ET", "ET", "ET", "ET", "WT"],
        "threshold": [0.9, 0.5, 0.8, 0.4, 0.7], "precision": [1.0, 0.5, 1.0, 0.8, 0.6],
        "recall": [0.5, 1.0, 0.4, 0.9, 1.0], "fp_per_case": [0.0, 1.0, 0.0, 0.25, 2.0],
    })
    pr = pr_curves(points)
    assert sorted((t.name, len(t.x)) for t in pr.data) == [("A", 1), ("A", 2), ("B", 2)]
    froc = froc_curves(points)
    assert froc.layout.xaxis.type == "log"
    assert sorted(len(t.x) for t in froc.data) == [1, 1, 1]        # points at 0 FP/case cannot sit on a log axis
    with pytest.raises(ValueError, match="recall"):
        pr_curves(points.drop(columns="recall"))


def test_volume_bias_bars_with_a_reference_line_at_one():
    table = pd.DataFrame({"config": ["A", "B"], "region": ["ET", "ET"], "stratum": ["<100", "<100"],
                          "volume_ratio": [0.85, 1.0], "n": [3, 4], "median_ratio": [0.8, 1.0]})
    figure = volume_bias_bars(table)
    assert [t.type for t in figure.data] == ["bar", "bar"] and [t.y[0] for t in figure.data] == [0.85, 1.0]
    assert figure.layout.shapes[0].y0 == 1.0


# --------------------------------------------------------------------------- report: colours, training, strata


def test_loss_colours_follow_the_loss_registry_one_colour_each():
    from workbench.losses import LOSS_NAMES
    from workbench.viz.figures import LOSS_COLOURS, loss_colour

    assert tuple(LOSS_COLOURS) == LOSS_NAMES
    assert len(set(LOSS_COLOURS.values())) == len(LOSS_COLOURS)
    assert loss_colour("not_a_loss") == loss_colour("not_a_loss") and loss_colour("not_a_loss") not in LOSS_COLOURS.values()


def test_style_of_shades_and_dashes_further_configurations_of_a_loss():
    from workbench.viz.figures import LOSS_COLOURS, style_of

    styles = style_of({"dc": "dc_ce", "blob b=1": "blob", "blob b=2": "blob"})
    assert styles["dc"] == (LOSS_COLOURS["dc_ce"], "solid") and styles["blob b=1"] == (LOSS_COLOURS["blob"], "solid")
    colour, dash = styles["blob b=2"]
    assert dash == "dash" and colour != LOSS_COLOURS["blob"]
    assert int(colour[1:3], 16) > int(LOSS_COLOURS["blob"][1:3], 16)  # lighter


def _training_log() -> pd.DataFrame:
    rows = []
    for config, runs in (("dc_ce", ("d0", "d1")), ("blob", ("b0",))):
        for run_id in runs:
            for epoch in range(4):
                rows.append((config, run_id, epoch, "train", "", "loss", 1.0 / (epoch + 1)))
                if epoch % 2:
                    rows += [(config, run_id, epoch, "val", region, "dice", 0.5 + 0.1 * epoch) for region in ("WT", "ET", "mean")]
    return pd.DataFrame(rows, columns=["config", "run_id", "epoch", "phase", "region", "metric", "value"])


def test_training_curves_one_line_per_run_and_panel_in_the_loss_colour():
    from workbench.viz.figures import LOSS_COLOURS, style_of, training_curves

    figure = training_curves(_training_log(), styles=style_of({"dc_ce": "dc_ce", "blob": "blob"}))
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["train loss", "val Dice WT", "val Dice ET", "val Dice mean"]
    assert len(figure.data) == 3 * 4  # 3 runs × 4 panels
    for trace in figure.data:
        assert trace.line.color == LOSS_COLOURS[trace.name]
    assert [t.showlegend for t in figure.data if t.name == "dc_ce"].count(True) == 1
    seeds = [t.opacity for t in figure.data if t.name == "dc_ce"]
    assert 1.0 in seeds and min(seeds) < 1.0  # further seeds lighter
    val = [t for t in figure.data if t.name == "blob"][1]
    assert list(val.x) == [1, 3]  # validation every second epoch
    with pytest.raises(ValueError, match="no training loss"):
        training_curves(_training_log().assign(metric="grad_norm"))


def test_stratum_recall_bars_with_asymmetric_intervals():
    from workbench.viz.figures import apply_styles, stratum_recall_bars

    table = pd.DataFrame({
        "config": ["dc_ce", "dc_ce", "blob"], "region": ["WT", "WT", "WT"], "stratum": ["<100", ">=1000", "<100"],
        "recall": [0.5, 1.0, 0.75], "low": [0.2, 1.0, 0.5], "high": [0.8, 1.0, 1.0], "n_lesions": [4, 2, 4],
    })
    figure = stratum_recall_bars(table)
    assert [t.name for t in figure.data] == ["dc_ce", "blob"]
    assert list(figure.data[0].error_y.arrayminus) == pytest.approx([0.3, 0.0])
    assert list(figure.data[1].error_y.array) == pytest.approx([0.25])
    apply_styles(figure, {"blob": ("#123456", "dot")})
    assert figure.data[1].marker.color == "#123456"
    with pytest.raises(ValueError, match="empty"):
        stratum_recall_bars(table.iloc[:0])
