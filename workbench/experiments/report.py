"""A sweep's results: one tidy table over every finished run, and a self-contained HTML report."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workbench._io import atomic_write
from workbench.experiments.paper import paper_sections
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

    The report leads with what the sweep found (:mod:`workbench.experiments.findings`), then shows
    the evidence, then the details:

    1. a *not converged* banner when a run's training log fails
       :func:`~workbench.experiments.findings.convergence` (headed "differences below are not
       findings" when a DC+CE baseline run is among them);
    2. **Findings**: every configuration (the grid values other than ``seed`` and ``fold``) against
       the ``dc_ce`` configuration — paired difference, 95 % bootstrap interval over cases, verdict
       and spread over seeds per measure — and one generated sentence per configuration;
    3. training curves (training loss, validation Dice per region, one line per run);
    4. lesion recall per size stratum with intervals;
    5. a gallery of the largest missed and false-positive lesions per configuration
       (:mod:`workbench.viz.gallery`);
    6. when the sweep holds two or more of the multi-class paper's configurations, its tables,
       claims and Figure 3 beside ours (:func:`workbench.experiments.paper.paper_sections`);
    7. the runs' statuses (with errors), the fixed parameters, tables of mean region Dice, PQ, RQ and
       SQ per configuration with their figures, and the detection analysis
       (:func:`detection_analysis`).

    Each loss keeps one colour in every figure (:data:`workbench.viz.figures.LOSS_COLOURS`); a
    section without data says why instead of drawing empty axes. plotly.js is embedded once, so
    the file opens offline.

    Returns
    -------
    results, report : Path
    """
    sweep_dir = Path(sweep_dir)
    info = _sweep_info(sweep_dir)
    results = collect_results(sweep_dir)
    results_path = sweep_dir / "results.parquet"
    with atomic_write(results_path) as tmp:
        results.to_parquet(tmp, index=False)
    sweep = _load_sweep(sweep_dir, info, results)
    items: list[Any] = [
        f"<h1>Sweep {html.escape(info['name'])}</h1>",
        f"<p>{len(sweep.runs)} runs: "
        + ", ".join(f"{n} {html.escape(str(s))}" for s, n in sweep.runs["status"].value_counts().items())
        + f". Notebook <code>{html.escape(info['notebook'])}</code>; report written {utc_now()} "
        f"with workbench {package_versions(['workbench'])['workbench']}.</p>",
    ]
    items += _convergence_banner(sweep)
    items += _findings_section(sweep)
    items += _training_section(sweep)
    items += _stratum_section(sweep)
    items += _gallery_section(sweep)
    paper_items, paper_figures = paper_sections(results)
    items += paper_items + paper_figures
    items += [
        "<h2>Runs</h2>",
        sweep.runs.drop(columns=["config", "loss"]).fillna({"error": ""}).to_html(index=False, classes="runs"),
        "<h2>Fixed parameters</h2>",
        f"<pre>{html.escape(json.dumps(info['fixed'], indent=2))}</pre>",
    ]
    metric_sections, figures = _metric_sections(sweep.results)
    items += metric_sections + figures
    if not len(sweep.results):
        items.append("<p>No complete run has a per_case.parquet yet.</p>")
    detection_sections, detection_figures = _detection_sections(sweep.analysis)
    items += detection_sections + detection_figures
    page = _page(info["name"], items, sweep.styles)
    report_path = sweep_dir / "report.html"
    with atomic_write(report_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return results_path, report_path


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "#not-converged{background:#fde2e1;border:2px solid #c0392b;padding:0.6em 1em;margin:1em 0}"
    "#not-converged h2{color:#c0392b;margin:0 0 0.3em 0}"
    "#findings td{text-align:left;vertical-align:top} .better{color:#1a7f37;font-weight:bold}"
    ".worse{color:#c0392b;font-weight:bold} .noise{color:#666} .sd{color:#666;font-size:85%}"
    ".swatch{display:inline-block;width:0.9em;height:0.9em;margin-right:0.3em;vertical-align:middle}"
    ".tiles{display:flex;flex-wrap:wrap;gap:6px} figure.tile{margin:0;font-size:75%;width:100px}"
    "figure.tile img{width:96px;height:96px;image-rendering:pixelated} .why{color:#666;font-style:italic}"
)


def _page(name: str, items: list[Any], styles: dict[str, tuple[str, str]]) -> str:
    """The HTML page of ``items`` (HTML strings and plotly figures, in order; plotly.js with the first
    drawn figure; a figure without data replaced by a line saying so)."""
    from workbench.viz.figures import apply_styles

    parts = []
    first = True
    for item in items:
        if isinstance(item, str):
            parts.append(item)
        elif not _has_data(item):
            parts.append(f"<p class='why'>Figure “{html.escape(_title(item))}” left out: it has no data.</p>")
        else:
            apply_styles(item, styles)
            parts.append(item.to_html(full_html=False, include_plotlyjs=first))
            first = False
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Sweep {html.escape(name)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _has_data(figure: Any) -> bool:
    for trace in figure.data:
        for axis in ("x", "y", "z"):
            values = getattr(trace, axis, None)
            if values is not None and len(values):
                return True
    return False


def _title(figure: Any) -> str:
    return str(figure.layout.title.text or "figure")


class _Sweep(NamedTuple):
    """Everything the report's sections read, loaded once."""

    sweep_dir: Path
    runs: pd.DataFrame            # run_table + config, loss
    results: pd.DataFrame         # per_case rows + config
    lesions: pd.DataFrame         # lesions.parquet rows + config
    detection: pd.DataFrame       # detection rows + config
    log: pd.DataFrame             # train/metrics.parquet rows + config
    convergence: dict[str, Any]   # run_id -> Convergence (runs with a training log)
    baseline: str | None
    names: dict[str, str]         # config label -> short name
    styles: dict[str, tuple[str, str]]  # config label and short name -> (colour, dash)
    analysis: DetectionAnalysis


_TRAINING_LOG = "train/metrics.parquet"


def _load_sweep(sweep_dir: Path, info: dict[str, Any], results: pd.DataFrame) -> _Sweep:
    from workbench.experiments.detection import DETECTION_ROWS
    from workbench.experiments.findings import convergence
    from workbench.viz.figures import style_of

    keys = [key for key in info["grid"] if key not in _REPLICATES]
    runs = run_table(sweep_dir)
    runs = runs.assign(config=_config_labels(runs, keys), loss=_losses(sweep_dir, runs, info))
    results = results.assign(config=_config_labels(results, keys))
    lesions = _tagged_table(sweep_dir, "lesions.parquet", keys)
    detection = _tagged_table(sweep_dir, DETECTION_ROWS, keys)
    log = _tagged_table(sweep_dir, _TRAINING_LOG, keys)
    complete = runs[runs["status"].eq("complete")]
    baseline = _baseline_config(complete.assign(loss=complete["loss"].astype(str)))
    if baseline is not None and not complete.loc[complete["config"].eq(baseline), "loss"].eq(_baseline_loss()).any():
        baseline = None  # findings compare with DC+CE only
    states = {run_id: convergence(part) for run_id, part in log.groupby("run_id", sort=False)} if len(log) else {}
    names = _short_names(complete, keys)
    config_loss = dict(zip(complete["config"], complete["loss"].astype(str)))
    styles = style_of(config_loss)
    styles.update({names[c]: style for c, style in styles.items() if c in names})
    analysis = _analyse(detection, lesions, baseline, MATCHED_PRECISION)
    return _Sweep(sweep_dir, runs, results, lesions, detection, log, states, baseline, names, styles, analysis)


def _baseline_loss() -> str:
    from workbench.experiments.findings import BASELINE_LOSS

    return BASELINE_LOSS


def _losses(sweep_dir: Path, runs: pd.DataFrame, info: dict[str, Any]) -> list[str]:
    """Each run's loss: its grid value, else the fixed one, else its run.json's parameters."""
    if "loss" in runs:
        return runs["loss"].astype(str).tolist()
    fixed = info.get("fixed", {}).get("loss")
    if fixed is not None:
        return [str(fixed)] * len(runs)
    return [str(read_run(sweep_dir / run_id).get("parameters", {}).get("loss", "")) for run_id in runs["run_id"]]


def _short_names(runs: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """Configuration label → its loss plus the other keys that vary between configurations (``blob``,
    ``blob beta=2``); the full label where those would not be unique."""
    varying = [k for k in keys if k != "loss" and k in runs and runs[k].astype(str).nunique() > 1]
    names = {}
    for row in runs.drop_duplicates("config").to_dict("records"):
        names[row["config"]] = " ".join([str(row["loss"]), *(f"{k}={row[k]}" for k in varying)]).strip() or row["config"]
    if len(set(names.values())) < len(names):
        names = {config: config for config in names}
    return names


def _convergence_banner(sweep: _Sweep) -> list[str]:
    """The not-converged banner (nothing when every run with a training log converged)."""
    failing = [(run_id, state) for run_id, state in sweep.convergence.items() if not state.converged]
    if not failing:
        return []
    config_of = dict(zip(sweep.runs["run_id"], sweep.runs["config"]))
    baseline_failing = [run_id for run_id, _ in failing if config_of.get(run_id) == sweep.baseline]
    if baseline_failing or sweep.baseline is None:
        head = "not converged: differences below are not findings"
    else:
        shown = sorted({sweep.names.get(config_of.get(r), str(config_of.get(r))) for r, _ in failing})
        head = f"not converged: differences below are not findings for {', '.join(shown)}"
    items = "".join(
        f"<li><b>{html.escape(run_id)}</b> ({html.escape(sweep.names.get(config_of.get(run_id), ''))}): "
        f"{html.escape(state.reason)}</li>"
        for run_id, state in failing
    )
    return [
        f"<div id='not-converged'><h2>{html.escape(head)}</h2><p>A run has not converged when its validation WT "
        "Dice at the last epoch is below 0.5, or its validation mean Dice rose by more than 0.02 over the last "
        f"fifth of training.</p><ul>{items}</ul></div>"
    ]


def _findings(sweep: _Sweep) -> pd.DataFrame:
    """The findings table of the sweep (:func:`~workbench.experiments.findings.compare_to_baseline`
    and the matched-precision recall), in report order."""
    from workbench.experiments.findings import compare_to_baseline, matched_recall_findings, ordered_findings, per_case_values

    values = per_case_values(sweep.results, sweep.lesions)
    frames = [compare_to_baseline(values, sweep.baseline)]
    if len(sweep.detection):
        frames.append(matched_recall_findings(sweep.detection, sweep.baseline, precision=MATCHED_PRECISION))
    frames = [frame for frame in frames if len(frame)]
    return ordered_findings(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def _findings_section(sweep: _Sweep) -> list[str]:
    """Findings first: the table of verdicts and one sentence per configuration."""
    from workbench.experiments.findings import MEASURES, finding_sentence

    head = "<h2 id='findings-heading'>Findings</h2>"
    if sweep.baseline is None:
        return [head, "<p class='why'>No findings: the sweep has no complete dc_ce (DC+CE) run to compare with.</p>"]
    base = sweep.names.get(sweep.baseline, sweep.baseline)
    findings = _findings(sweep)
    if not len(findings):
        return [head, f"<p class='why'>No findings: no other configuration shares cases with {html.escape(base)}.</p>"]
    labels = list(dict.fromkeys([m.label for m in MEASURES if m.key in set(findings["measure"])] + list(findings["label"])))
    rows = []
    for config, part in findings.groupby("config", sort=False):
        cells = {row["label"]: _finding_cell(row) for row in part.to_dict("records")}
        name = sweep.names.get(config, config)
        rows.append(f"<tr><th>{_swatch(sweep.styles.get(config))}{html.escape(name)}</th>"
                    + "".join(cells.get(label, "<td>–</td>") for label in labels) + "</tr>")
    table = ("<table id='findings'><tr><th>vs " + html.escape(base) + "</th>"
             + "".join(f"<th>{html.escape(label)}</th>" for label in labels) + "</tr>" + "".join(rows) + "</table>")
    sentences = "".join(
        f"<li>{html.escape(finding_sentence(sweep.names.get(config, config), part, base))}</li>"
        for config, part in findings.groupby("config", sort=False)
    )
    return [
        head,
        table,
        f"<ul class='sentences'>{sentences}</ul>",
        (
            f"<p>Each cell: the paired difference (configuration − {html.escape(base)}) with its 95 % percentile "
            "bootstrap interval over cases (per case, the mean over a configuration's seeds first; paired on the "
            "case), the verdict read from the interval alone (better / worse: entirely on one side of 0; within "
            "the noise: it contains 0), the two means, and the standard deviation over seeds of each "
            "configuration's per-seed mean (– with one seed). Dice and PQ from per_case.parquet (RC; region mean = "
            "foreground mean; PQ at matching threshold 0.5). Lesion measures from lesions.parquet at argmax "
            "(lowest matching threshold), WT, TC and ET lesions pooled within a case: recall of reference lesions "
            "under 100 mm³, lesion precision, and volume bias |log(Σ predicted / Σ reference volume)| of matched "
            "lesions (lower is better). Recall at precision "
            f"{MATCHED_PRECISION:g} (WT) from the detection analysis, bootstrapped over (seed, fold, case) units; "
            "it has no value (–) when a configuration's precision–recall curve never reaches that precision.</p>"
        ),
    ]


def _finding_cell(row: dict[str, Any]) -> str:
    from workbench.experiments.findings import interval_text

    css = {"better": "better", "worse": "worse"}.get(row["verdict"], "noise")
    sd = [f"{v:.3f}" if pd.notna(v) else "–" for v in (row["seed_sd"], row["baseline_seed_sd"])]
    means = [f"{v:.3f}" if pd.notna(v) else "–" for v in (row["value"], row["baseline_value"])]
    return (
        f"<td><span class='{css}'>{html.escape(row['verdict'])}</span><br>{html.escape(interval_text(row))}"
        f"<br><span class='sd'>{means[0]} vs {means[1]} · seed sd {sd[0]} / {sd[1]} "
        f"(n={row['n_cases']} cases, {row['n_seeds']} seeds)</span></td>"
    )


def _swatch(style: tuple[str, str] | None) -> str:
    colour = style[0] if style else "#000000"
    return f"<span class='swatch' style='background:{colour}'></span>"


def _training_section(sweep: _Sweep) -> list[Any]:
    """Training curves of every run and a table of each run's convergence."""
    from workbench.viz.figures import training_curves

    head = "<h2>Training curves</h2>"
    if not len(sweep.log):
        return [head, "<p class='why'>No training curves: no complete run has a train/metrics.parquet.</p>"]
    log = sweep.log.assign(name=sweep.log["config"].map(sweep.names).fillna(sweep.log["config"]))
    items: list[Any] = [head]
    try:
        items.append(training_curves(log, by="name", styles=sweep.styles))
    except ValueError:
        items.append("<p class='why'>No training curves: the training logs hold neither a training loss nor a "
                     "validation Dice.</p>")
    if not (log["phase"].eq("val") & log["metric"].eq("dice")).any():
        items.append("<p class='why'>No validation Dice logged: convergence cannot be judged.</p>")
    records = []
    for run_id, state in sweep.convergence.items():
        records.append({"run": run_id, "epochs": state.epochs,
                        **{f"final Dice {r}": round(v, 3) for r, v in state.final_dice.items()},
                        "converged": "yes" if state.converged else "no", "reason": state.reason})
    if records:
        items.append(pd.DataFrame(records).to_html(index=False, na_rep="–"))
    return items


def _stratum_section(sweep: _Sweep) -> list[Any]:
    """Recall per lesion-size stratum with intervals, or why there is none."""
    from workbench.experiments.findings import SMALL_STRATUM, held_out_lesion_counts, recall_by_stratum
    from workbench.viz.figures import stratum_recall_bars

    head = "<h2>Lesion recall by size stratum</h2>"
    table = recall_by_stratum(sweep.lesions) if len(sweep.lesions) else pd.DataFrame()
    if not len(table):
        return [head, "<p class='why'>No recall by size stratum: no complete run has a lesions.parquet with a "
                      "reference lesion.</p>"]
    table = table.assign(name=table["config"].map(sweep.names).fillna(table["config"]))
    counts = held_out_lesion_counts(sweep.lesions)
    items: list[Any] = [
        head,
        "<p>The held-out reference lesions per region and volume stratum (mm³), each case counted once; "
        "<code>cases</code>: held-out cases with a lesion of the region.</p>",
        counts.to_html(classes="lesion-counts"),
        ("<p>Recall of the reference lesions at argmax (lowest matching threshold), per region and reference "
         "volume (mm³); error bars: 95 % bootstrap interval over the (run, case) units.</p>"),
    ]
    if SMALL_STRATUM not in set(table["stratum"]):
        items.append(f"<p class='why'>No run has a reference lesion in stratum {html.escape(SMALL_STRATUM)} mm³.</p>")
    items.append(stratum_recall_bars(table, by="name", styles=sweep.styles))
    return items


_TILES_PER_KIND = 6
_GALLERY_CHANNEL = 1  # T1c in the BraTS order (t1n, t1c, t2w, t2f)


def _gallery_section(sweep: _Sweep) -> list[str]:
    """Per configuration, tiles of its largest missed and largest false-positive lesions."""
    from workbench.viz.gallery import pick_lesions

    head = "<h2>Gallery: largest missed and false-positive lesions</h2>"
    needed = {"status", "region", "case_id", "ref_mm3", "pred_mm3", "centroid_z", "centroid_y", "centroid_x"}
    if not len(sweep.lesions) or not needed <= set(sweep.lesions.columns):
        return [head, "<p class='why'>No gallery: no complete run has a lesions.parquet with lesion centroids.</p>"]
    loader = _TileLoader(sweep.sweep_dir)
    items = [head, (
        "<p>Slice through each lesion's centroid along the last array axis (axial), 32 voxels around it, "
        "second image channel (T1c); <span style='color:#00b400'>reference outline green</span>, "
        "<span style='color:#d000d0'>prediction outline magenta</span>, of the lesion's region.</p>"
    )]
    for config, part in sweep.lesions.groupby("config", sort=False):
        picked = pick_lesions(part, per_kind=_TILES_PER_KIND)
        name = html.escape(sweep.names.get(config, config))
        if not len(picked):
            items.append(f"<h3>{_swatch(sweep.styles.get(config))}{name}</h3>"
                         "<p class='why'>No missed and no false-positive lesion.</p>")
            continue
        tiles = [tile for row in picked.to_dict("records") if (tile := loader.tile(row))]
        body = "".join(tiles) if tiles else "<p class='why'>No tile: the predictions or images could not be read.</p>"
        items.append(f"<h3>{_swatch(sweep.styles.get(config))}{name}</h3><div class='tiles'>{body}</div>")
    if loader.problems:
        items.append("<p class='why'>Left out: " + html.escape("; ".join(sorted(set(loader.problems))[:10])) + "</p>")
    return items


class _TileLoader:
    """Reads what a lesion tile needs, once per file: a run's manifest, the reference image channel and
    label of a case, a run's prediction of a case."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = sweep_dir
        self.manifests: dict[str, Any] = {}
        self.cases: dict[tuple[str, str], Any] = {}
        self.predictions: dict[tuple[str, str], Any] = {}
        self.problems: list[str] = []

    def tile(self, row: dict[str, Any]) -> str | None:
        from workbench.viz.gallery import centre_of, lesion_tile, png_bytes, tile_html

        centre = centre_of(row)
        run_id, case_id = str(row["run_id"]), str(row["case_id"])
        if centre is None:
            return None
        try:
            manifest = self._manifest(run_id)
            image, label = self._case(manifest, case_id)
            pred = self._prediction(run_id, case_id)
        except (OSError, ValueError, KeyError) as error:
            self.problems.append(f"{run_id}/{case_id}: {error}")
            return None
        if pred.shape != label.shape:
            self.problems.append(f"{run_id}/{case_id}: prediction shape {pred.shape} ≠ reference {label.shape}")
            return None
        members = list(manifest.schema.regions.get(row["region"], ()))
        rgb = lesion_tile(image, np.isin(label, members), np.isin(pred, members), centre)
        caption = f"{row['kind']} {row['region']} {row['volume']:.0f} mm³ · {case_id} · {run_id}"
        return tile_html(png_bytes(rgb), caption)

    def _manifest(self, run_id: str) -> Any:
        from workbench.data.cohort import default_manifest_path
        from workbench.data.manifest import read_manifest

        path = read_run(self.sweep_dir / run_id).get("parameters", {}).get("manifest") or default_manifest_path()
        key = str(path)
        if key not in self.manifests:
            self.manifests[key] = read_manifest(path)
        return self.manifests[key]

    def _case(self, manifest: Any, case_id: str) -> tuple[Any, Any]:
        from workbench.data.nifti import load_image, load_label

        key = (str(manifest.root), case_id)
        if key not in self.cases:
            entry = manifest.case(case_id)
            if entry.label is None:
                raise ValueError("the case has no reference label")
            modality = manifest.modalities[min(_GALLERY_CHANNEL, len(manifest.modalities) - 1)]
            self.cases[key] = (load_image([entry.images[modality]])[0][0], load_label(entry.label)[0])
        return self.cases[key]

    def _prediction(self, run_id: str, case_id: str) -> Any:
        from workbench.data.nifti import load_label

        key = (run_id, case_id)
        if key not in self.predictions:
            run_dir = self.sweep_dir / run_id
            paths = [run_dir / "predictions" / f"{case_id}.nii.gz", run_dir / "train" / "predictions" / f"{case_id}.nii.gz"]
            path = next((p for p in paths if p.is_file()), None)
            if path is None:
                raise FileNotFoundError(f"no predictions/{case_id}.nii.gz")
            self.predictions[key] = load_label(path)[0]
        return self.predictions[key]


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
        The configuration the differences are to (the first of loss ``dc_ce``, else the first one).
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
    folder: str | os.PathLike[str],
    keys: Sequence[str],
    *,
    precision: float = MATCHED_PRECISION,
    baseline: str | None = None,
) -> DetectionAnalysis:
    """Operating points with CIs, paired differences to the baseline configuration, PR / FROC curves and
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
    baseline : str, optional
        The configuration label the differences are to; default the first configuration of loss
        ``dc_ce`` (:data:`~workbench.experiments.findings.BASELINE_LOSS`), else the first one.
    """
    from workbench.experiments.detection import DETECTION_ROWS

    rows = _tagged_table(folder, DETECTION_ROWS, keys)
    lesions = _tagged_table(folder, "lesions.parquet", keys)
    return _analyse(rows, lesions, baseline, precision)


def _tagged_table(folder: str | os.PathLike[str], name: str, keys: Sequence[str]) -> pd.DataFrame:
    """:func:`collect_table` of ``name`` tagged with the configuration keys, the replicates and ``config``."""
    tags = [*keys, *(k for k in _REPLICATES if k not in keys)]
    table = collect_table(folder, name, keys=tags)
    return table.assign(config=_config_labels(table, list(keys))) if len(table) else table


def _analyse(rows: pd.DataFrame, lesions: pd.DataFrame, baseline: str | None, precision: float) -> DetectionAnalysis:
    """:class:`DetectionAnalysis` of tagged detection rows and lesion tables."""
    from workbench.experiments.detection import curve_points, detection_table, paired_differences
    from workbench.metrics.detection_curves import volume_bias

    empty = pd.DataFrame()
    operating, differences, points, bias = empty, empty, empty, empty
    if len(rows):
        baseline = baseline if baseline in set(rows["config"]) else _baseline_config(rows)
        operating = detection_table(rows, precision=precision)
        differences = paired_differences(rows, baseline, precision=precision)
        points = curve_points(rows)
    if len(lesions):
        parts = [volume_bias(part).assign(config=config) for config, part in lesions.groupby("config", sort=False)]
        bias = pd.concat(parts, ignore_index=True)
    return DetectionAnalysis(operating, baseline if len(rows) else None, differences, points, bias)


def _baseline_config(table: pd.DataFrame) -> str | None:
    """The first configuration of loss ``dc_ce`` of a table with ``config`` (and ``loss``), else its first one."""
    from workbench.experiments.findings import BASELINE_LOSS

    if not len(table):
        return None
    if "loss" in table:
        matches = table.loc[table["loss"].astype(str).eq(BASELINE_LOSS), "config"]
        if len(matches):
            return str(matches.iloc[0])
    return _order_first(table["config"])


def _detection_sections(analysis: DetectionAnalysis) -> tuple[list[str], list[Any]]:
    """The report's HTML sections and figures of :func:`detection_analysis`."""
    from workbench.experiments.detection import ci_label
    from workbench.viz.figures import froc_curves, pr_curves, volume_bias_bars

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
    parts = [f"{key}=" + results[key].map(str).astype(str) for key in keys]
    return parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]


def _wide(means: pd.DataFrame, column: str) -> pd.DataFrame:
    wide = means.pivot(index="config", columns=column, values="value")
    order = list(dict.fromkeys(means[column]))
    return wide.loc[list(dict.fromkeys(means["config"])), order].rename_axis(index=None, columns=None)
