"""A sweep's results: one tidy table over every finished run, and a self-contained HTML report."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from workbench._io import atomic_write
from workbench.runs.record import json_safe, package_versions, read_run, utc_now

__all__ = [
    "DetectionAnalysis",
    "collect_results",
    "collect_table",
    "compare_table",
    "detection_analysis",
    "run_table",
    "write_report",
]

_PER_CASE = "per_case.parquet"
_PER_CASE_COLUMNS = ("case_id", "region", "metric", "threshold", "stratum", "value")
_REPLICATES = ("seed", "fold")
MATCHED_PRECISION = 0.85
"""The precision at which the report compares losses (the multi-class study's range: 0.85–0.88)."""


def _sweep_info(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder: {path} does not exist.")
    return json.loads(path.read_text(encoding="utf-8"))


def run_table(folder: str | os.PathLike[str], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per run of a folder of run folders: ``run_id``, its parameters, ``status`` and ``error``.

    Parameters
    ----------
    folder : str or PathLike
        A sweep folder (holds ``sweep.json``: its runs, in sweep order, with their grid values),
        or any folder whose sub-folders hold a ``run.json`` (in name order, with the values of
        ``keys`` from each ``run.json``'s ``parameters``).
    keys : sequence of str, optional
        Parameters to tag each run with; default the sweep's grid keys (none without ``sweep.json``).

    Returns
    -------
    DataFrame
        ``run_id``, the ``keys`` (list values as strings), ``status`` (``"missing"`` when the run
        has no ``run.json``: never started) and ``error``.
    """
    folder = Path(folder)
    if (folder / "sweep.json").is_file():
        info = _sweep_info(folder)
        runs = [(run["run_id"], run["point"]) for run in info["runs"]]
        keys = list(info["grid"]) if keys is None else list(keys)
    else:
        runs = [(path.parent.name, read_run(path.parent).get("parameters", {})) for path in sorted(folder.glob("*/run.json"))]
        keys = list(keys or [])
    rows = []
    for run_id, values in runs:
        document = read_run(folder / run_id)
        rows.append({
            "run_id": run_id,
            **{key: _scalar(values.get(key)) for key in keys},
            "status": document.get("status", "missing"),
            "error": document.get("error"),
        })
    return pd.DataFrame(rows, columns=["run_id", *keys, "status", "error"])


def collect_results(sweep_dir: str | os.PathLike[str], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Every complete run's ``per_case.parquet``, each row tagged with its run's parameters.

    Parameters
    ----------
    sweep_dir : str or PathLike
        A folder written by :func:`workbench.experiments.run_sweep` (holds ``sweep.json``), or
        any folder of run folders (see :func:`run_table`).
    keys : sequence of str, optional
        As for :func:`run_table`.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id``, the parameters (list values as strings), then the per-case
        columns (``case_id, region, metric, threshold, stratum, value``). Runs that are not
        complete, or complete without ``per_case.parquet``, are left out. ``attrs`` holds the
        sweep's grid, fixed parameters and the runs' statuses.
    """
    return collect_table(sweep_dir, _PER_CASE, keys=keys, empty_columns=list(_PER_CASE_COLUMNS))


def collect_table(
    folder: str | os.PathLike[str],
    name: str,
    *,
    keys: Sequence[str] | None = None,
    empty_columns: list[str] | None = None,
) -> pd.DataFrame:
    """Every complete run's table ``name`` (a Parquet file in its folder), tagged with ``run_id``
    and the run's parameters (:func:`run_table`); runs without it are left out. ``attrs`` as
    :func:`collect_results` (grid and fixed parameters empty without ``sweep.json``)."""
    folder = Path(folder)
    runs = run_table(folder, keys)
    tags = [column for column in runs.columns if column not in ("status", "error")]
    frames = []
    for run in runs[runs["status"].eq("complete")].to_dict("records"):
        path = folder / run["run_id"] / name
        if path.is_file():
            table = pd.read_parquet(path)
            values = {key: run[key] for key in tags}
            frames.append(table.assign(**values)[[*tags, *table.columns]])
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*tags, *(empty_columns or [])])
    info = _sweep_info(folder) if (folder / "sweep.json").is_file() else {"grid": {}, "fixed": {}}
    results.attrs = json_safe(
        {"grid": info["grid"], "fixed": info["fixed"], "status": dict(zip(runs["run_id"], runs["status"]))}
    )
    return results


def compare_table(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per configuration (the values of ``keys``): the mean over cases of each run, then mean, std and
    count over the configuration's runs.

    Parameters
    ----------
    results : DataFrame
        :func:`collect_results` rows (``run_id``, ``keys``, the per-case columns).
    keys : sequence of str
        The parameters that make a configuration (e.g. loss, alpha, beta).

    Returns
    -------
    DataFrame
        ``*keys, region, metric, threshold, stratum, mean, std, n_runs``.
    """
    metric_keys = ["region", "metric", "threshold", "stratum"]
    per_run = results.groupby(["run_id", *keys, *metric_keys], dropna=False, sort=False)["value"].mean().reset_index()
    grouped = per_run.groupby([*keys, *metric_keys], dropna=False, sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_runs="count").reset_index()


def write_report(sweep_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``results.parquet`` and a self-contained ``report.html`` into ``sweep_dir``, atomically.

    The report holds the runs' statuses (with errors), tables of mean region Dice, PQ and RQ
    (all lesion sizes, one column per matching threshold) per configuration — the grid values
    other than ``seed`` and ``fold``, over which it averages cases and runs — and plotly
    figures (:mod:`workbench.viz.figures`): Dice per region per configuration (bars) and PQ
    against the matching threshold (lines, one panel per region), each the mean over cases, then
    over runs, with the standard deviation over runs. plotly.js is embedded once, so the file
    opens offline.

    Returns
    -------
    results, report : Path
    """
    sweep_dir = Path(sweep_dir)
    info = _sweep_info(sweep_dir)
    results = collect_results(sweep_dir)
    runs = run_table(sweep_dir)
    results_path = sweep_dir / "results.parquet"
    with atomic_write(results_path) as tmp:
        results.to_parquet(tmp, index=False)

    config_keys = [key for key in info["grid"] if key not in _REPLICATES]
    results = results.assign(config=_config_labels(results, config_keys))
    sections = [
        f"<h1>Sweep {html.escape(info['name'])}</h1>",
        f"<p>{len(runs)} runs: "
        + ", ".join(f"{n} {html.escape(str(s))}" for s, n in runs["status"].value_counts().items())
        + f". Notebook <code>{html.escape(info['notebook'])}</code>; report written {utc_now()} "
        f"with workbench {package_versions(['workbench'])['workbench']}.</p>",
        "<h2>Runs</h2>",
        runs.fillna({"error": ""}).to_html(index=False, classes="runs"),
        "<h2>Fixed parameters</h2>",
        f"<pre>{html.escape(json.dumps(info['fixed'], indent=2))}</pre>",
    ]
    metric_sections, figures = _metric_sections(results)
    sections += metric_sections
    if not len(results):
        sections.append("<p>No complete run has a per_case.parquet yet.</p>")
    detection_sections, detection_figures = _detection_sections(sweep_dir, config_keys)
    sections += detection_sections
    figures += detection_figures
    for index, figure in enumerate(figures):
        sections.append(figure.to_html(full_html=False, include_plotlyjs=index == 0))
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Sweep {html.escape(info['name'])}</title><style>"
        "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    report_path = sweep_dir / "report.html"
    with atomic_write(report_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return results_path, report_path


def _metric_sections(results: pd.DataFrame) -> tuple[list[str], list[Any]]:
    """Mean region Dice, PQ, RQ and SQ per configuration with bootstrap intervals, and their figures."""
    from workbench.viz.figures import metric_bars, threshold_lines

    sections: list[str] = []
    figures: list[Any] = []
    overall = results[results["stratum"].eq("all") & results["region"].ne("mean")] if len(results) else results
    dice = overall[overall["metric"].eq("dice")]
    if len(dice):
        table = _wide(_means_with_ci(dice, "region"), "region")
        table["runs"] = dice.groupby("config", sort=False)["run_id"].nunique().reindex(table.index)
        sections += [
            (
                "<h2>Mean region Dice</h2><p>Mean over cases and over the runs (seeds, folds) of each "
                "configuration; brackets: 95 % bootstrap interval over the (seed, fold, case) units.</p>"
            ),
            table.to_html(float_format="{:.3f}".format),
        ]
        figures.append(metric_bars(dice, "dice"))
    for metric, title in (("pq", "PQ"), ("rq", "RQ"), ("sq", "SQ")):
        rows = overall[overall["metric"].eq(metric)]
        if not len(rows):
            continue
        labelled = rows.assign(column=rows["region"] + "@" + rows["threshold"].map("{:g}".format))
        sections += [
            f"<h2>Mean {title} (region @ matching threshold)</h2>",
            _wide(_means_with_ci(labelled, "column"), "column").to_html(float_format="{:.3f}".format),
        ]
        if metric == "pq":
            figures.append(threshold_lines(rows, "pq"))
    return sections, figures


class DetectionAnalysis(NamedTuple):
    """Operating points of a sweep's configurations (:func:`detection_analysis`); empty frames when no
    run stored what they need.

    Attributes
    ----------
    operating : DataFrame
        :func:`~workbench.experiments.detection.detection_table` at the matched precision.
    baseline : str or None
        The configuration the differences are to (the first one).
    differences : DataFrame
        :func:`~workbench.experiments.detection.paired_differences` to ``baseline``.
    points : DataFrame
        :func:`~workbench.experiments.detection.curve_points`: the PR and FROC curves.
    volume_bias : DataFrame
        :func:`~workbench.metrics.detection_curves.volume_bias` per configuration.
    """

    operating: pd.DataFrame
    baseline: str | None
    differences: pd.DataFrame
    points: pd.DataFrame
    volume_bias: pd.DataFrame


def detection_analysis(
    folder: str | os.PathLike[str], keys: Sequence[str], *, precision: float = MATCHED_PRECISION
) -> DetectionAnalysis:
    """Operating points with CIs, paired differences to the first configuration, PR / FROC curves and
    volume bias, from the runs' ``detection_rows.parquet`` and ``lesions.parquet``.

    Parameters
    ----------
    folder : str or PathLike
        A sweep folder or a folder of run folders (:func:`run_table`).
    keys : sequence of str
        The parameters that make a configuration; replicates (seed, fold) are also read, as the
        resampling units.
    precision : float
        The matched precision.
    """
    from workbench.experiments.detection import DETECTION_ROWS, curve_points, detection_table, paired_differences
    from workbench.metrics.detection_curves import volume_bias

    tags = [*keys, *(k for k in _REPLICATES if k not in keys)]
    empty = pd.DataFrame()
    operating, differences, points, bias, baseline = empty, empty, empty, empty, None
    rows = collect_table(folder, DETECTION_ROWS, keys=tags)
    if len(rows):
        rows = rows.assign(config=_config_labels(rows, list(keys)))
        operating = detection_table(rows, precision=precision)
        baseline = _order_first(rows["config"])
        differences = paired_differences(rows, baseline, precision=precision)
        points = curve_points(rows)
    lesions = collect_table(folder, "lesions.parquet", keys=tags)
    if len(lesions):
        lesions = lesions.assign(config=_config_labels(lesions, list(keys)))
        parts = [volume_bias(part).assign(config=config) for config, part in lesions.groupby("config", sort=False)]
        bias = pd.concat(parts, ignore_index=True)
    return DetectionAnalysis(operating, baseline, differences, points, bias)


def _detection_sections(sweep_dir: Path, config_keys: list[str]) -> tuple[list[str], list[Any]]:
    """The report's HTML sections and figures of :func:`detection_analysis`."""
    from workbench.experiments.detection import ci_label
    from workbench.viz.figures import froc_curves, pr_curves, volume_bias_bars

    analysis = detection_analysis(sweep_dir, config_keys)
    sections: list[str] = []
    figures: list[Any] = []
    if len(analysis.operating):
        table = analysis.operating
        shown = ci_label(table, ["ap", "argmax_precision", "argmax_recall", "matched_recall"])
        shown.insert(3, "matched_threshold", table["matched_threshold"].round(3))
        shown.insert(3, "lesions", table["n_lesions"])
        sections += [
            f"<h2>Detection at argmax and at matched precision {MATCHED_PRECISION:g}</h2>",
            (
                "<p>Lesion candidates are the components of each region's probability above 0.1, scored by "
                "their maximum; argmax keeps those scoring ≥ 0.5. <i>matched_recall</i> is the largest recall "
                f"at precision ≥ {MATCHED_PRECISION:g} (– when never reached). Brackets: 95 % bootstrap intervals "
                "over cases (each run's cases pooled). Size strata: lesions by their reference volume (mm³), "
                "false positives by their own volume.</p>"
            ),
            shown.to_html(index=False),
        ]
        differences = analysis.differences
        if len(differences):
            differences = differences.assign(verdict=differences["within_noise"].map(
                {True: "within the noise", False: "beyond the noise", None: "undefined"}
            ))
            sections += [
                f"<h2>Differences to {html.escape(str(analysis.baseline))}</h2>",
                (
                    "<p>Paired bootstrap over the same (seed, fold, case) units; a difference is beyond the noise "
                    "when its 95 % interval excludes 0.</p>"
                ),
                differences.drop(columns="within_noise").to_html(index=False, float_format="{:.3f}".format),
            ]
        figures += [pr_curves(analysis.points), froc_curves(analysis.points)]
    if len(analysis.volume_bias):
        sections += [
            "<h2>Volume bias of detected lesions</h2>",
            (
                "<p>Predicted / true volume of the matched lesions at argmax (lowest matching threshold), "
                "per size stratum of the true volume.</p>"
            ),
            analysis.volume_bias.pivot_table(index="config", columns=["region", "stratum"], values="volume_ratio", sort=False)
            .to_html(float_format="{:.3f}".format),
        ]
        figures.append(volume_bias_bars(analysis.volume_bias))
    return sections, figures


def _means_with_ci(rows: pd.DataFrame, column: str, n_resamples: int = 1000) -> pd.DataFrame:
    """``config, <column>, value`` where value is "mean [low, high]" over the (seed, fold, case) units."""
    from workbench.experiments.detection import unit_ids
    from workbench.metrics.detection_curves import bootstrap_mean_ci

    rows = rows.assign(case_id=unit_ids(rows))
    records = []
    for (config, key), part in rows.groupby(["config", column], sort=False):
        units = part.groupby("case_id", sort=True)["value"].mean()  # one value per unit
        mean, low, high = bootstrap_mean_ci(units.to_numpy(), n_resamples=n_resamples)
        text = "–" if not pd.notna(mean) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"
        records.append({"config": config, column: key, "value": text})
    return pd.DataFrame(records, columns=["config", column, "value"])


def _order_first(values: pd.Series) -> str:
    return str(next(iter(dict.fromkeys(values))))


def _scalar(value: Any) -> Any:
    """Grid values as table cells: lists become strings so every column has one type."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple, dict)) else value


def _config_labels(results: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys or not len(results):
        return pd.Series("all", index=results.index, dtype=object)
    return results[keys].astype(str).agg(lambda row: " ".join(f"{k}={v}" for k, v in zip(keys, row)), axis=1)


def _wide(means: pd.DataFrame, column: str) -> pd.DataFrame:
    wide = means.pivot(index="config", columns=column, values="value")
    order = list(dict.fromkeys(means[column]))
    return wide.loc[list(dict.fromkeys(means["config"])), order].rename_axis(index=None, columns=None)
