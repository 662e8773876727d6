"""Plotly figures for the notebooks and the sweep report: plain functions returning a ``Figure``.

Two kinds of input:

* a loss's **component table**, ``InstanceLoss.components(logits, target)``: one row per
  reference component (``batch, channel, id, size, domain_size, weight, dice, ce, loss``), and
  2-D slices of an image and of per-voxel gradient magnitudes;
* a **results table**, tidy and long, as :func:`workbench.experiments.collect_results` returns it
  (and ``03_compare`` builds): one row per (run, case, region, metric, threshold, stratum) with
  columns ``run_id, region, metric, threshold, stratum, value`` plus a column naming each run's
  configuration (``by``, ``"config"`` unless told otherwise). Dice rows have ``threshold`` NaN;
  ``stratum`` is ``"all"`` or a lesion-size stratum.

Results figures average in two steps (``spread="runs"``, the default): the cases of each run,
then the runs (seeds, folds) of each configuration; error bars are the standard deviation over
runs (none with a single run). ``spread="cases"`` pools every case of every run instead, and the
error bars are the standard deviation over those cases. Categories (configurations, regions,
strata) keep the order in which they first appear in the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Literal

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "LOSS_COLOURS",
    "apply_styles",
    "beta_effect_lines",
    "component_loss_bars",
    "froc_curves",
    "gradient_slices",
    "metric_bars",
    "pr_curves",
    "loss_colour",
    "rc_dice_vs_pq",
    "stratified_pq_bars",
    "stratum_recall_bars",
    "style_of",
    "threshold_lines",
    "training_curves",
    "volume_bias_bars",
]

Spread = Literal["runs", "cases"]
_SPREADS = ("runs", "cases")
_RESULT_COLUMNS = ("region", "metric", "threshold", "stratum", "value")

LOSS_COLOURS = {
    "dc_ce": "#4d4d4d",
    "blob": "#1f77b4",
    "cc": "#d62728",
    "iwl_blob": "#2ca02c",
    "iwl_cc": "#9467bd",
    "invweight_global": "#ff7f0e",
    "invweight_local": "#8c564b",
}
"""One fixed colour per loss, in the order of :data:`workbench.losses.LOSS_NAMES` (a test keeps the two
in step; spelled out here so that drawing does not import torch). The DC+CE baseline is dark grey."""
_SPARE_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


# --------------------------------------------------------------------------- loss exploration


def component_loss_bars(components: pd.DataFrame, *, value: str = "loss") -> go.Figure:
    """One bar per component of a loss's instance term, one colour (trace) per class or region.

    Parameters
    ----------
    components : DataFrame
        ``InstanceLoss.components(...)``: one row per component with at least ``batch``,
        ``channel`` (class or region name, or index), ``id`` and the ``value`` column. ``size``,
        ``domain_size``, ``weight``, ``dice`` and ``ce`` are shown on hover when present.
    value : str, optional
        The column drawn as bar height (``"loss"``, ``"dice"``, ``"ce"``, ``"weight"``, ...).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` trace per channel, named after it; x is the component label ``"<channel> <id>"``
        (prefixed ``"b<batch> "`` when the table holds several batch elements), in table order.

    Raises
    ------
    ValueError
        When a column is missing or the table is empty.

    Examples
    --------
    >>> table = pd.DataFrame({"batch": [0, 0, 0], "channel": ["WT", "WT", "ET"], "id": [1, 2, 1],
    ...                       "loss": [0.1, 0.3, 0.2]})
    >>> [(t.name, list(t.x)) for t in component_loss_bars(table).data]
    [('WT', ['WT 1', 'WT 2']), ('ET', ['ET 1'])]
    """
    _check_table(components, ["batch", "channel", "id", value], "components")
    frame = components.assign(channel=components["channel"].astype(str))  # a name: discrete colours
    label = frame["channel"] + " " + frame["id"].astype(str)
    if frame["batch"].nunique() > 1:
        label = "b" + frame["batch"].astype(str) + " " + label
    frame = frame.assign(component=label)
    hover = [c for c in ("size", "domain_size", "weight", "dice", "ce", "loss") if c in frame and c != value]
    return px.bar(
        frame, x="component", y=value, color="channel", hover_data=hover,
        title=f"{value} per component", labels={"component": "component (channel id)"},
    )


def gradient_slices(
    image: np.ndarray,
    gradients: Mapping[str, np.ndarray],
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    image_title: str = "image",
    title: str | None = None,
) -> go.Figure:
    """A slice of the image, of some masks and of each loss's per-voxel gradient magnitude, side by side.

    Parameters
    ----------
    image : ndarray, (H, W) float
        The image slice; row 0 is drawn at the top.
    gradients : Mapping[str, ndarray]
        Loss name → (H, W) float gradient magnitude ``|∂L/∂logits|`` (finite, ≥ 0), one panel each.
        All panels share one colour scale (0 to the largest value), so losses compare directly.
    masks : Mapping[str, ndarray], optional
        Name → (H, W) bool or 0/1 mask (reference, prediction, ...), drawn between image and gradients.
    image_title : str, optional
        The image panel's title.
    title : str, optional
        The figure's title.

    Returns
    -------
    plotly.graph_objects.Figure
        One row of ``Heatmap`` traces: image, masks, gradients, each named after its panel;
        only the last gradient panel shows the (shared) colour bar.

    Raises
    ------
    ValueError
        When ``image`` is not 2-D, a slice's shape differs from the image's, ``gradients`` is
        empty, or a gradient magnitude is negative or not finite.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"Expected `image` to be a 2-D array (H, W), but got shape {image.shape}.")
    if not gradients:
        raise ValueError("Expected `gradients` to hold at least one loss name → (H, W) array, but got none.")
    panels = {name: _slice(mask, f"masks[{name!r}]", image.shape).astype(float) for name, mask in (masks or {}).items()}
    grads = {name: _slice(grad, f"gradients[{name!r}]", image.shape).astype(float) for name, grad in gradients.items()}
    for name, grad in grads.items():
        if not np.isfinite(grad).all() or (grad < 0).any():
            raise ValueError(f"Expected `gradients[{name!r}]` to be finite and ≥ 0 (a magnitude), but it is not.")
    zmax = max(float(grad.max()) for grad in grads.values()) or 1.0

    titles = [image_title, *panels, *grads]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.02)
    fig.add_trace(go.Heatmap(z=image, colorscale="gray", showscale=False, name=image_title), 1, 1)
    for col, (name, mask) in enumerate(panels.items(), start=2):
        fig.add_trace(go.Heatmap(z=mask, colorscale="gray", zmin=0, zmax=1, showscale=False, name=name), 1, col)
    for col, (name, grad) in enumerate(grads.items(), start=2 + len(panels)):
        fig.add_trace(
            go.Heatmap(z=grad, colorscale="viridis", zmin=0.0, zmax=zmax, showscale=col == len(titles), name=name,
                       colorbar={"title": {"text": "|∂L/∂logits|"}}),
            1, col,
        )
    for col in range(1, len(titles) + 1):
        fig.update_yaxes(scaleanchor=f"x{col if col > 1 else ''}", autorange="reversed", row=1, col=col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title=title, height=330)
    return fig


# --------------------------------------------------------------------------- sweep results


def metric_bars(
    results: pd.DataFrame,
    metric: str = "dice",
    *,
    by: str = "config",
    threshold: float | None = None,
    stratum: str = "all",
    spread: Spread = "runs",
) -> go.Figure:
    """A metric per region, one bar group per region and one bar (trace) per configuration.

    Parameters
    ----------
    results : DataFrame
        A results table (module docstring): ``by``, ``run_id`` (with ``spread="runs"``),
        ``region, metric, threshold, stratum, value``.
    metric : str, optional
        The ``metric`` value drawn (``"dice"``, ``"pq"``, ...).
    by : str, optional
        The column naming the configuration; one trace per value.
    threshold : float, optional
        The matching threshold; needed only when the metric's rows have several.
    stratum : str, optional
        The lesion-size stratum.
    spread : {"runs", "cases"}, optional
        Mean of run means ± std over runs, or mean ± std over all cases pooled.

    Returns
    -------
    plotly.graph_objects.Figure
        ``Bar`` traces named after the configurations: x the regions, y the means, ``error_y`` the
        standard deviations.

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, no row matches, the threshold is ambiguous,
        or ``spread`` is unknown.
    """
    _check_spread(spread)
    _check_table(results, _results_columns(by, spread))
    rows = _at_threshold(_where(results, metric=metric, stratum=stratum), threshold, metric)
    stats = _summarize(rows, [by, "region"], spread)
    suffix = "" if threshold is None else f" (t = {threshold:g})"
    return px.bar(
        stats, x="region", y="mean", error_y="std", color=by, barmode="group", hover_data=["n"],
        category_orders={"region": _order(rows["region"])}, title=f"{metric}{suffix} per region",
        labels={"mean": f"mean {metric}", "n": spread},
    )


def threshold_lines(
    results: pd.DataFrame,
    metrics: str | Sequence[str] = ("pq", "rq"),
    *,
    by: str = "config",
    stratum: str = "all",
    spread: Spread = "runs",
) -> go.Figure:
    """Metrics against the matching threshold: one panel per region (columns) and metric (rows).

    Parameters
    ----------
    results : DataFrame
        A results table (module docstring).
    metrics : str or sequence of str, optional
        The metrics drawn, one panel row each, in this order.
    by, stratum, spread
        As in :func:`metric_bars`.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (lines + markers) trace per (configuration, region, metric), named after the
        configuration: x the thresholds (ascending), y the means, ``error_y`` the standard deviations.

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, ``metrics`` is empty, a metric has no rows,
        or ``spread`` is unknown.
    """
    _check_spread(spread)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("Expected `metrics` to name at least one metric, but got none.")
    _check_table(results, _results_columns(by, spread))
    rows = pd.concat([_where(results, metric=metric, stratum=stratum) for metric in metrics])
    stats = _summarize(rows, [by, "metric", "region", "threshold"], spread).sort_values("threshold", kind="stable")
    return px.line(
        stats, x="threshold", y="mean", error_y="std", color=by, facet_col="region",
        facet_row="metric" if len(metrics) > 1 else None, markers=True, hover_data=["n"],
        category_orders={"region": _order(rows["region"]), "metric": metrics, by: _order(rows[by])},
        title=f"{' and '.join(metrics)} against the matching threshold",
        labels={"mean": "mean" if len(metrics) > 1 else f"mean {metrics[0]}", "n": spread},
    )


def stratified_pq_bars(
    results: pd.DataFrame,
    threshold: float,
    *,
    metric: str = "pq",
    by: str = "config",
    spread: Spread = "runs",
) -> go.Figure:
    """PQ (or ``metric``) per lesion-size stratum: one panel per region, one bar per configuration.

    Parameters
    ----------
    results : DataFrame
        A results table (module docstring) with size-stratified rows (``stratum`` other than ``"all"``).
    threshold : float
        The matching threshold.
    metric, by, spread
        As in :func:`metric_bars`.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` trace per (configuration, region), named after the configuration: x the strata
        (``"all"`` left out), y the means, ``error_y`` the standard deviations.

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, there is no stratified row of ``metric`` at
        ``threshold``, or ``spread`` is unknown.
    """
    _check_spread(spread)
    _check_table(results, _results_columns(by, spread))
    rows = _where(results, metric=metric)
    rows = rows[rows["stratum"].ne("all")]
    if rows.empty:
        raise ValueError(f"`results` has no size-stratified rows (stratum other than 'all') of metric {metric!r}.")
    rows = _at_threshold(rows, threshold, metric)
    stats = _summarize(rows, [by, "region", "stratum"], spread)
    return px.bar(
        stats, x="stratum", y="mean", error_y="std", color=by, barmode="group", facet_col="region",
        hover_data=["n"], category_orders={"region": _order(rows["region"]), "stratum": _order(rows["stratum"])},
        title=f"{metric} (t = {threshold:g}) per lesion-size stratum", labels={"mean": f"mean {metric}", "n": spread},
    )


def rc_dice_vs_pq(
    results: pd.DataFrame,
    threshold: float,
    *,
    by: str = "config",
    dice_region: str = "RC",
    pq_region: str = "mean",
) -> go.Figure:
    """Resection-cavity Dice against PQ, one point per run (the multi-class paper's Fig. 3).

    Parameters
    ----------
    results : DataFrame
        A results table (module docstring) with ``run_id``.
    threshold : float
        The matching threshold of PQ.
    by : str, optional
        The column naming the configuration; one trace per value.
    dice_region, pq_region : str, optional
        The regions whose Dice (x) and PQ (y) are drawn; both over all lesion sizes.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (markers) trace per configuration, named after it: a point per run with
        x its mean Dice over cases and y its mean PQ over cases (runs holding both).

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, no row matches, or no run has both values.
    """
    _check_table(results, [by, "run_id", *_RESULT_COLUMNS])
    dice = _where(results, metric="dice", region=dice_region, stratum="all")
    pq = _at_threshold(_where(results, metric="pq", region=pq_region, stratum="all"), threshold, "pq")
    keys = [by, "run_id"]
    points = pd.merge(
        dice.groupby(keys, sort=False)["value"].mean().rename("dice").reset_index(),
        pq.groupby(keys, sort=False)["value"].mean().rename("pq").reset_index(),
        on=keys,
    )
    if points.empty:
        raise ValueError(f"No run of `results` has both {dice_region} Dice and {pq_region} PQ (t = {threshold:g}).")
    x_label, y_label = f"{dice_region} Dice", f"{pq_region} PQ (t = {threshold:g})"
    return px.scatter(
        points, x="dice", y="pq", color=by, hover_data=["run_id"], labels={"dice": x_label, "pq": y_label},
        title=f"{x_label} against {y_label}, one point per run",
    )


def beta_effect_lines(
    results: pd.DataFrame,
    *,
    metric: str = "pq",
    threshold: float | None = None,
    region: str = "mean",
    stratum: str = "all",
    color: str = "loss",
    dash: str | None = "alpha",
    spread: Spread = "runs",
) -> go.Figure:
    """A metric against β: one line per loss, dashed by α (the multi-class paper's Fig. 4).

    Parameters
    ----------
    results : DataFrame
        A results table (module docstring) with ``beta`` and the ``color`` and ``dash`` columns;
        the runs sharing (``color``, ``dash``, ``beta``) are averaged together.
    metric, threshold, stratum, spread
        As in :func:`metric_bars`.
    region : str, optional
        The region drawn.
    color : str, optional
        The column with one line colour per value.
    dash : str or None, optional
        The column with one dash style per value; ``None``: lines by ``color`` only.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (lines + markers) trace per (``color``, ``dash``) pair, named
        ``"<color value>, <dash>=<dash value>"`` (or the colour value alone): x the β values
        (ascending), y the means, ``error_y`` the standard deviations.

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, no row matches, the threshold is ambiguous,
        or ``spread`` is unknown.
    """
    _check_spread(spread)
    keys = [color, *([dash] if dash is not None else []), "beta"]
    _check_table(results, [*keys, *_results_columns(None, spread)])
    rows = _at_threshold(_where(results, metric=metric, region=region, stratum=stratum), threshold, metric)
    stats = _summarize(rows, keys, spread).sort_values("beta", kind="stable")
    if dash is not None:
        stats[dash] = [f"{dash}={v:g}" if isinstance(v, Real) else f"{dash}={v}" for v in stats[dash]]
    suffix = "" if threshold is None else f" (t = {threshold:g})"
    return px.line(
        stats, x="beta", y="mean", error_y="std", color=color, line_dash=dash, markers=True, hover_data=["n"],
        category_orders={color: _order(rows[color])}, title=f"{region} {metric}{suffix} against β",
        labels={"beta": "β", "mean": f"mean {metric}", "n": spread},
    )


# --------------------------------------------------------------------------- helpers


def pr_curves(points: pd.DataFrame, *, by: str = "config") -> go.Figure:
    """Lesion-level precision against recall: one panel per region, one line per configuration.

    Parameters
    ----------
    points : DataFrame
        ``workbench.experiments.detection.curve_points``: columns ``by, region, recall,
        precision, threshold``.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (lines) trace per (configuration, region), points in descending threshold.
    """
    _check_table(points, [by, "region", "recall", "precision", "threshold"], "points")
    return px.line(
        points, x="recall", y="precision", color=by, facet_col="region", hover_data=["threshold"],
        category_orders={"region": _order(points["region"]), by: _order(points[by])},
        title="lesion precision–recall (each point an operating threshold)", range_y=[0, 1.02], range_x=[0, 1.02],
    )


def froc_curves(points: pd.DataFrame, *, by: str = "config") -> go.Figure:
    """Lesion sensitivity against false positives per case (FROC), one panel per region.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` (lines) trace per (configuration, region); x on a log scale.
    """
    _check_table(points, [by, "region", "recall", "fp_per_case", "threshold"], "points")
    shown = points[points["fp_per_case"] > 0]
    return px.line(
        shown, x="fp_per_case", y="recall", color=by, facet_col="region", hover_data=["threshold"], log_x=True,
        category_orders={"region": _order(points["region"]), by: _order(points[by])},
        title="FROC: lesion sensitivity against false positives per case",
        labels={"recall": "sensitivity", "fp_per_case": "false positives per case"},
    )


def volume_bias_bars(table: pd.DataFrame, *, by: str = "config") -> go.Figure:
    """Predicted / true volume of detected lesions per size stratum, one panel per region.

    Parameters
    ----------
    table : DataFrame
        :func:`workbench.metrics.detection_curves.volume_bias` rows with a ``by`` column.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` trace per (configuration, region); a dashed line at 1 (no bias).
    """
    _check_table(table, [by, "region", "stratum", "volume_ratio", "n"], "volume bias")
    figure = px.bar(
        table, x="stratum", y="volume_ratio", color=by, barmode="group", facet_col="region", hover_data=["n"],
        category_orders={"region": _order(table["region"]), by: _order(table[by])},
        title="predicted / true volume of detected lesions (1 = unbiased)",
        labels={"volume_ratio": "volume ratio"},
    )
    figure.add_hline(y=1.0, line_dash="dash", line_color="grey")
    return figure


# --------------------------------------------------------------------------- report: styles, training, strata


def loss_colour(loss: str) -> str:
    """The fixed colour of a loss (:data:`LOSS_COLOURS`); other names get a spare colour chosen from
    their name, the same in every figure.

    Examples
    --------
    >>> loss_colour("blob"), loss_colour("dc_ce")
    ('#1f77b4', '#4d4d4d')
    """
    if loss in LOSS_COLOURS:
        return LOSS_COLOURS[loss]
    return _SPARE_COLOURS[sum(map(ord, str(loss))) % len(_SPARE_COLOURS)]


def _shade(colour: str, k: int) -> str:
    """``colour`` mixed with white: 0 for ``k = 0``, more for each further configuration (at most 60 %)."""
    mix = min(0.6, 0.3 * k)
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * mix):02x}" for c in rgb)


def style_of(configs: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Colour and dash of each configuration: its loss's colour (:func:`loss_colour`); further
    configurations of the same loss (other α, β) get lighter shades and other dashes.

    Parameters
    ----------
    configs : Mapping[str, str]
        Configuration label → its loss name, in report order.

    Returns
    -------
    dict
        Configuration label → ``(colour, dash)``.

    Examples
    --------
    >>> style_of({"blob a=1": "blob", "blob a=2": "blob", "cc": "cc"})
    {'blob a=1': ('#1f77b4', 'solid'), 'blob a=2': ('#62a0ca', 'dash'), 'cc': ('#d62728', 'solid')}
    """
    seen: dict[str, int] = {}
    styles = {}
    for config, loss in configs.items():
        k = seen.get(loss, 0)
        seen[loss] = k + 1
        styles[config] = (_shade(loss_colour(loss), k), _DASHES[k % len(_DASHES)])
    return styles


def apply_styles(figure: go.Figure, styles: Mapping[str, tuple[str, str]]) -> go.Figure:
    """Recolour (in place) every trace named after a configuration of ``styles``: bars and markers
    take its colour, lines its colour and dash. Returns ``figure``."""
    for trace in figure.data:
        style = styles.get(trace.name)
        if style is None:
            continue
        colour, dash = style
        if isinstance(trace, go.Bar):
            trace.marker.color = colour
        elif isinstance(trace, go.Scatter):
            trace.line.color = colour
            trace.line.dash = dash
            trace.marker.color = colour
    return figure


def training_curves(
    log: pd.DataFrame, *, by: str = "config", styles: Mapping[str, tuple[str, str]] | None = None
) -> go.Figure:
    """Training loss and validation Dice per region against the epoch: one panel each, one line per run.

    Parameters
    ----------
    log : DataFrame
        Runs' ``train/metrics.parquet`` rows tagged with ``run_id`` and ``by``: ``epoch, phase,
        region, metric, value``. Rows of phase ``train`` / metric ``loss`` and of phase ``val`` /
        metric ``dice`` are drawn (validation may be logged every k epochs: lines with markers).
    by : str
        The column naming the configuration: one colour (and dash) per value.
    styles : Mapping, optional
        Configuration → ``(colour, dash)`` (:func:`style_of`); default one colour per loss name.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Scatter`` per (run, panel), named after the configuration; a configuration's first
        run is drawn solid, its further runs (seeds) lighter, and only the first shows in the legend.

    Raises
    ------
    ValueError
        When a column is missing or there is neither a training loss nor a validation Dice row.
    """
    _check_table(log, [by, "run_id", "epoch", "phase", "region", "metric", "value"], "log")
    loss = log[log["phase"].eq("train") & log["metric"].eq("loss")]
    dice = log[log["phase"].eq("val") & log["metric"].eq("dice")]
    if loss.empty and dice.empty:
        raise ValueError("`log` has no training loss (phase 'train', metric 'loss') nor validation Dice row.")
    regions = sorted(set(dice["region"]), key=lambda r: ("WT", "TC", "ET", "RC", "mean").index(r)
                     if r in ("WT", "TC", "ET", "RC", "mean") else 9)
    panels = ([("train loss", loss)] if len(loss) else []) + [(f"val Dice {r}", dice[dice["region"].eq(r)]) for r in regions]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[title for title, _ in panels],
                           horizontal_spacing=0.06, vertical_spacing=0.12)
    styles = dict(styles or style_of({c: c for c in dict.fromkeys(log[by])}))
    shown: set[str] = set()
    for index, (title, part) in enumerate(panels):
        for (config, run_id), run in part.groupby([by, "run_id"], sort=False):
            run = run.groupby("epoch", sort=True)["value"].mean()
            colour, dash = styles.get(config, (loss_colour(str(config)), "solid"))
            first = run_id == log.loc[log[by].eq(config), "run_id"].iloc[0]
            figure.add_trace(
                go.Scatter(x=run.index, y=run.to_numpy(), mode="lines+markers", name=str(config), legendgroup=str(config),
                           showlegend=config not in shown, opacity=1.0 if first else 0.45,
                           line={"color": colour, "dash": dash, "width": 2 if first else 1.5}, marker={"size": 4},
                           hovertext=str(run_id), hovertemplate=f"{run_id}<br>epoch %{{x}}: %{{y:.3f}}<extra>{title}</extra>"),
                index // cols + 1, index % cols + 1,
            )
            shown.add(config)
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(title="training loss and validation Dice per epoch (one line per run; further seeds lighter)",
                         height=330 * rows)
    return figure


def stratum_recall_bars(
    table: pd.DataFrame, *, by: str = "config", styles: Mapping[str, tuple[str, str]] | None = None
) -> go.Figure:
    """Lesion recall per size stratum with its interval: one panel per region, one bar per configuration.

    Parameters
    ----------
    table : DataFrame
        :func:`workbench.experiments.findings.recall_by_stratum`: ``by, region, stratum, recall,
        low, high, n_lesions``.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` per (configuration, region), named after the configuration: x the strata, y the
        recall, asymmetric error bars the interval.

    Raises
    ------
    ValueError
        When a column is missing or the table is empty.
    """
    _check_table(table, [by, "region", "stratum", "recall", "low", "high", "n_lesions"], "recall table")
    regions = _order(table["region"])
    strata = _order(table["stratum"])
    figure = make_subplots(rows=1, cols=len(regions), subplot_titles=regions, shared_yaxes=True, horizontal_spacing=0.03)
    styles = dict(styles or style_of({c: c for c in dict.fromkeys(table[by])}))
    for col, region in enumerate(regions, start=1):
        part = table[table["region"].eq(region)]
        for config, rows in part.groupby(by, sort=False):
            colour = styles.get(config, (loss_colour(str(config)), "solid"))[0]
            figure.add_trace(
                go.Bar(x=rows["stratum"], y=rows["recall"], name=str(config), legendgroup=str(config), showlegend=col == 1,
                       marker={"color": colour}, customdata=rows["n_lesions"],
                       error_y={"type": "data", "array": rows["high"] - rows["recall"],
                                "arrayminus": rows["recall"] - rows["low"]},
                       hovertemplate="%{x}: recall %{y:.3f} (%{customdata} lesions)<extra>" + str(config) + "</extra>"),
                1, col,
            )
    figure.update_xaxes(categoryorder="array", categoryarray=strata, title_text="reference volume (mm³)")
    figure.update_yaxes(range=[0, 1.05])
    figure.update_yaxes(title_text="lesion recall at argmax", col=1)
    figure.update_layout(barmode="group", title="lesion recall per size stratum (95 % bootstrap interval over cases)")
    return figure


def _check_table(table: pd.DataFrame, columns: Sequence[str], name: str = "results") -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected `{name}` to be a pandas DataFrame, but got {type(table).__name__}.")
    missing = [column for column in dict.fromkeys(columns) if column not in table.columns]
    if missing:
        raise ValueError(f"`{name}` is missing column(s) {missing}; it has {list(table.columns)}.")
    if table.empty:
        raise ValueError(f"`{name}` is empty (no rows).")


def _check_spread(spread: str) -> None:
    if spread not in _SPREADS:
        raise ValueError(f"Expected `spread` to be one of {_SPREADS}, but got {spread!r}.")


def _results_columns(by: str | None, spread: str) -> list[str]:
    return [*([by] if by is not None else []), *(["run_id"] if spread == "runs" else []), *_RESULT_COLUMNS]


def _slice(array: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"Expected `{name}` to have the image's shape {shape}, but got {array.shape}.")
    return array


def _where(results: pd.DataFrame, **equal: str) -> pd.DataFrame:
    """The rows whose columns equal the given values; names the first condition no row meets."""
    rows = results
    for column, value in equal.items():
        kept = rows[rows[column].eq(value)]
        if kept.empty:
            present = sorted(map(str, rows[column].unique()))
            raise ValueError(f"`results` has no rows with {column} == {value!r}; {column} values there: {present}.")
        rows = kept
    return rows


def _at_threshold(rows: pd.DataFrame, threshold: float | None, metric: str) -> pd.DataFrame:
    """The rows at ``threshold``; with None, the rows must share one threshold (NaN for Dice)."""
    present = rows["threshold"].astype(float)
    if threshold is None:
        if present.nunique(dropna=False) > 1:
            values = sorted(present.dropna().unique().tolist())
            raise ValueError(f"Rows of metric {metric!r} have several matching thresholds {values}; pass `threshold`.")
        return rows
    kept = rows[np.isclose(present, threshold)]
    if kept.empty:
        values = sorted(present.dropna().unique().tolist())
        raise ValueError(f"`results` has no rows of metric {metric!r} at threshold {threshold:g}; thresholds there: {values}.")
    return kept


def _summarize(rows: pd.DataFrame, keys: list[str], spread: str) -> pd.DataFrame:
    """Columns ``keys`` + ``mean, std, n``: over run means (``"runs"``) or over pooled cases (``"cases"``)."""
    if spread == "runs":
        rows = rows.groupby([*keys, "run_id"], sort=False, dropna=False)["value"].mean().reset_index()
    return rows.groupby(keys, sort=False, dropna=False)["value"].agg(mean="mean", std="std", n="count").reset_index()


def _order(values: pd.Series) -> list:
    return list(dict.fromkeys(values))
