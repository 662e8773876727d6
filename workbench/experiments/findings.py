"""What a sweep found: every configuration against the DC+CE baseline, with intervals and verdicts.

Pure functions on the tables a sweep's runs write (no HTML; :mod:`workbench.experiments.report`
lays them out).

Findings
    For each configuration (the grid values other than seed and fold) and each measure of
    :data:`MEASURES`, the paired difference *configuration − baseline* with a 95 % percentile
    bootstrap interval over cases (:func:`paired_interval`): per case, a configuration's value is
    first averaged over its runs (seeds), then the two configurations are paired on ``case_id``.
    The verdict (:func:`verdict`) comes from the interval alone: ``better`` when it lies entirely
    on the good side of 0, ``worse`` when entirely on the bad side, else ``within the noise``
    (``cannot tell`` with fewer than two paired cases). Beside it, the spread over seeds: the
    standard deviation of a configuration's per-run means (over the same cases).

Measures (:data:`MEASURES`)
    * ``rc_dice``, ``mean_dice``, ``pq50`` from ``per_case.parquet``: RC Dice, the foreground-mean
      Dice (region ``mean``) and PQ at matching threshold 0.5 (region ``mean``), all lesion sizes.
    * ``small_recall``, ``precision``, ``volume_bias`` from ``lesions.parquet`` (the argmax lesion
      table, at its lowest matching threshold, as :func:`~workbench.metrics.detection_curves.volume_bias`
      reads it), pooling the lesions of :data:`LESION_REGIONS` (WT, TC, ET; RC is a cavity, not a
      lesion) within a case: recall of the reference lesions under 100 mm³ (TP / (TP + FN); cases
      without such a lesion are left out), lesion precision (TP / (TP + FP); cases without a
      predicted lesion left out), and the volume bias ``|log(Σ predicted / Σ reference volume)|`` of
      the matched (TP) lesions — lower is better: 0 is no bias, whichever its sign.
    * ``matched_recall``: recall at precision 0.85 of :data:`DETECTION_REGION` from the detection
      analysis (:func:`workbench.experiments.detection.paired_differences`); it is a statistic of a
      whole PR curve, so its interval is that analysis's paired bootstrap over (seed, fold, case)
      units rather than over seed-averaged cases, and its seed spread is the std of per-seed values.

Convergence (:func:`convergence`)
    A run's training log has not converged when its validation WT Dice at the last logged epoch is
    below 0.5, or its validation mean Dice still rose by more than 0.02 over the last fifth of
    training (read from a robust line through the values logged in the last half of the epochs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import theilslopes

__all__ = [
    "BASELINE_LOSS",
    "DETECTION_REGION",
    "LESION_REGIONS",
    "MEASURES",
    "Convergence",
    "Interval",
    "Measure",
    "compare_to_baseline",
    "convergence",
    "finding_sentence",
    "held_out_lesion_counts",
    "interval_text",
    "lesion_case_values",
    "matched_recall_findings",
    "ordered_findings",
    "paired_interval",
    "per_case_values",
    "recall_by_stratum",
    "result_case_values",
    "verdict",
]

BASELINE_LOSS = "dc_ce"
"""The loss every other configuration is compared with."""
LESION_REGIONS = ("WT", "TC", "ET")
"""Regions whose lesions are pooled within a case for the lesion-level measures."""
DETECTION_REGION = "WT"
"""Region of the recall at matched precision (each metastasis is a WT component)."""
SMALL_STRATUM = "<100"
MIN_WT_DICE = 0.5
MAX_LATE_RISE = 0.02
LATE_FRACTION = 0.2


class Interval(NamedTuple):
    """A paired difference of means with its bootstrap interval and the number of paired cases."""

    difference: float
    low: float
    high: float
    n_cases: int


class Measure(NamedTuple):
    """One row of the findings: its key, its label in the report and its good direction."""

    key: str
    label: str
    higher_is_better: bool


MEASURES = (
    Measure("rc_dice", "RC Dice", True),
    Measure("mean_dice", "mean Dice", True),
    Measure("pq50", "PQ@0.5", True),
    Measure("small_recall", "recall <100 mm³", True),
    Measure("matched_recall", "recall@P0.85 (WT)", True),
    Measure("precision", "lesion precision", True),
    Measure("volume_bias", "volume bias |log ratio|", False),
)
"""The findings' measures, in the order of the table and of the sentences."""


class Convergence(NamedTuple):
    """Whether a training log converged (:func:`convergence`).

    Attributes
    ----------
    converged : bool
    reason : str
        Why not (empty when converged).
    final_dice : dict
        Validation Dice per region at the last logged epoch.
    epochs : int
        Epochs logged.
    """

    converged: bool
    reason: str
    final_dice: dict[str, float]
    epochs: int


def paired_interval(
    a: pd.Series, b: pd.Series, *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of ``a − b`` over their common cases, with a percentile bootstrap interval over cases.

    Parameters
    ----------
    a, b : Series
        One value per case, indexed by case id; cases missing from either, or NaN in either, are
        left out.

    Examples
    --------
    >>> a = pd.Series([0.8, 0.9, 0.7, float("nan")], index=["c0", "c1", "c2", "c3"])
    >>> b = pd.Series([0.5, 0.6, 0.4, 0.5, 0.5], index=["c0", "c1", "c2", "c3", "c4"])
    >>> tuple(round(v, 6) for v in paired_interval(a, b))
    (0.3, 0.3, 0.3, 3)
    """
    a = a.groupby(level=0).mean()
    b = b.groupby(level=0).mean()
    pairs = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    differences = (pairs["a"] - pairs["b"]).to_numpy(dtype=np.float64)
    n = len(differences)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(differences.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(mean, float(low), float(high), n)


def verdict(interval: Interval, *, higher_is_better: bool = True) -> str:
    """``better`` / ``worse`` when the interval lies entirely on one side of 0, else ``within the
    noise``; ``cannot tell`` when it is undefined (NaN, fewer than two cases).

    Examples
    --------
    >>> verdict(Interval(0.1, 0.05, 0.15, 10)), verdict(Interval(0.1, 0.05, 0.15, 10), higher_is_better=False)
    ('better', 'worse')
    >>> verdict(Interval(0.0, -0.1, 0.1, 10)), verdict(Interval(0.2, float("nan"), float("nan"), 1))
    ('within the noise', 'cannot tell')
    """
    if interval.n_cases < 2 or not all(math.isfinite(v) for v in (interval.difference, interval.low, interval.high)):
        return "cannot tell"
    if interval.low > 0:
        return "better" if higher_is_better else "worse"
    if interval.high < 0:
        return "worse" if higher_is_better else "better"
    return "within the noise"


def convergence(
    metrics: pd.DataFrame,
    *,
    min_wt_dice: float = MIN_WT_DICE,
    max_late_rise: float = MAX_LATE_RISE,
    late_fraction: float = LATE_FRACTION,
) -> Convergence:
    """Whether a run's training log (``train/metrics.parquet``) shows a converged model.

    Not converged when (reasons joined by "; "):

    * no validation Dice is logged;
    * the validation WT Dice at the last logged epoch is below ``min_wt_dice``;
    * the validation mean Dice rose by more than ``max_late_rise`` over the last ``late_fraction``
      of training: the Theil–Sen slope (the median of the slopes between every pair of logged
      values) of the values logged in the last half of the epochs (at least the last four logged),
      times ``late_fraction · (last − first)`` epochs (needs two logged epochs). A robust line
      rather than two single values, because validation on a few cases dips and recovers by more
      than the tolerance from one epoch to the next: one dip just before the last fifth would
      otherwise read as a rise, one just after as a plateau.

    Parameters
    ----------
    metrics : DataFrame
        ``epoch, phase, region, metric, threshold, value``; rows of phase ``val``, metric ``dice``
        are read.

    Examples
    --------
    >>> log = pd.DataFrame({"epoch": [0, 1, 2, 3, 4] * 3, "phase": "val", "metric": "dice",
    ...                     "region": ["WT"] * 5 + ["ET"] * 5 + ["mean"] * 5,
    ...                     "value": [0.6] * 5 + [0.0, 0.2, 0.4, 0.4, 0.6] + [0.3, 0.4, 0.5, 0.5, 0.6]})
    >>> convergence(log).reason
    'validation mean Dice still rising: +0.047 over the last fifth of training (a line through epochs 1-4; most in ET: +0.093)'
    """
    dice = metrics[metrics["phase"].eq("val") & metrics["metric"].eq("dice")] if len(metrics) else metrics
    if not len(dice):
        return Convergence(False, "no validation Dice logged", {}, 0)
    dice = dice.groupby(["region", "epoch"], sort=True)["value"].mean()
    last_epoch = int(dice.index.get_level_values("epoch").max())
    final = {str(region): float(series.iloc[-1]) for region, series in dice.groupby(level="region", sort=False)}
    reasons = []
    if "WT" in final and not final["WT"] >= min_wt_dice:
        reasons.append(f"validation WT Dice at the last epoch {final['WT']:.3f} < {min_wt_dice:g}")
    if "mean" in final:
        rise, fitted = _late_rise(dice.loc["mean"], late_fraction)
        if rise > max_late_rise:
            by_region = {
                str(region): _late_rise(series.droplevel("region"), late_fraction)[0]
                for region, series in dice.groupby(level="region", sort=False) if region != "mean"
            }
            steepest = max(by_region, key=by_region.get) if by_region else None
            reasons.append(
                f"validation mean Dice still rising: {rise:+.3f} over the last fifth of training "
                f"(a line through epochs {int(fitted[0])}-{int(fitted[-1])}"
                + (f"; most in {steepest}: {by_region[steepest]:+.3f})" if steepest else ")")
            )
    return Convergence(not reasons, "; ".join(reasons), final, last_epoch + 1)


def _late_rise(series: pd.Series, late_fraction: float) -> tuple[float, np.ndarray]:
    """``(rise, fitted epochs)`` of :func:`convergence`'s rule for a validation series indexed by epoch."""
    epochs, values = series.index.to_numpy(dtype=np.float64), series.to_numpy(dtype=np.float64)
    if epochs.size < 2:
        return 0.0, epochs
    span = epochs[-1] - epochs[0]
    window = epochs >= epochs[0] + span / 2
    window[-4:] = True
    slope = theilslopes(values[window], epochs[window]).slope
    return float(slope * late_fraction * span), epochs[window]


# --------------------------------------------------------------------------- per-case values


def result_case_values(results: pd.DataFrame) -> pd.DataFrame:
    """``run_id, config, case_id, measure, value`` of the per-case measures from ``per_case.parquet``
    rows (tagged with ``run_id`` and ``config``): RC Dice, mean Dice, PQ@0.5 (region mean)."""
    columns = ["run_id", "config", "case_id", "measure", "value"]
    if not len(results):
        return pd.DataFrame(columns=columns)
    overall = results[results["stratum"].eq("all")]
    threshold = overall["threshold"].astype(float)
    picks = {
        "rc_dice": overall["region"].eq("RC") & overall["metric"].eq("dice"),
        "mean_dice": overall["region"].eq("mean") & overall["metric"].eq("dice"),
        "pq50": overall["region"].eq("mean") & overall["metric"].eq("pq") & np.isclose(threshold, 0.5),
    }
    frames = [overall[mask].assign(measure=key)[columns] for key, mask in picks.items()]
    return pd.concat(frames, ignore_index=True)


def lesion_case_values(lesions: pd.DataFrame, *, regions: Sequence[str] = LESION_REGIONS) -> pd.DataFrame:
    """``run_id, config, case_id, measure, value`` of the lesion measures from ``lesions.parquet``
    rows (tagged with ``run_id`` and ``config``): small-lesion recall, precision, volume bias."""
    columns = ["run_id", "config", "case_id", "measure", "value"]
    rows = _argmax_lesions(lesions, regions)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    rows = rows.assign(
        tp=rows["status"].eq("TP"), fn=rows["status"].eq("FN"), fp=rows["status"].eq("FP"),
        small=rows["status"].isin(["TP", "FN"]) & (rows["ref_mm3"].astype(float) < 100.0),
        ref=np.where(rows["status"].eq("TP"), rows["ref_mm3"].astype(float), 0.0),
        pred=np.where(rows["status"].eq("TP"), rows["pred_mm3"].astype(float), 0.0),
    )
    rows = rows.assign(small_tp=rows["small"] & rows["tp"])
    sums = rows.groupby(["run_id", "config", "case_id"], sort=False)[["tp", "fn", "fp", "small", "small_tp", "ref", "pred"]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        values = pd.DataFrame({
            "small_recall": sums["small_tp"] / sums["small"].where(sums["small"] > 0),
            "precision": sums["tp"] / (sums["tp"] + sums["fp"]).where(sums["tp"] + sums["fp"] > 0),
            "volume_bias": np.abs(np.log(sums["pred"] / sums["ref"].where(sums["ref"] > 0))),
        })
    long = values.reset_index().melt(id_vars=["run_id", "config", "case_id"], var_name="measure", value_name="value")
    return long[columns]


def per_case_values(results: pd.DataFrame, lesions: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`result_case_values` and :func:`lesion_case_values` together."""
    frames = [result_case_values(results)]
    if lesions is not None and len(lesions):
        frames.append(lesion_case_values(lesions))
    return pd.concat(frames, ignore_index=True)


def _argmax_lesions(lesions: pd.DataFrame, regions: Sequence[str]) -> pd.DataFrame:
    """The lesion rows of ``regions`` at the lowest matching threshold (as ``volume_bias`` reads them)."""
    if not len(lesions):
        return lesions
    rows = lesions[lesions["region"].isin(list(regions))]
    if "threshold" in rows and rows["threshold"].nunique() > 1:
        rows = rows[rows["threshold"] == rows["threshold"].min()]
    return rows


# --------------------------------------------------------------------------- comparison


FINDING_COLUMNS = [
    "config", "measure", "label", "higher_is_better", "value", "baseline_value", "difference", "low", "high",
    "n_cases", "verdict", "seed_sd", "baseline_seed_sd", "n_seeds",
]


def compare_to_baseline(
    values: pd.DataFrame,
    baseline: str,
    *,
    measures: Sequence[Measure] = MEASURES,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every configuration of ``values`` (:func:`per_case_values`) minus ``baseline``, per measure.

    Returns
    -------
    DataFrame
        :data:`FINDING_COLUMNS`: ``value`` / ``baseline_value`` the means over the paired cases (of
        the seed-averaged values), the :class:`Interval` fields, the :func:`verdict`, and
        ``seed_sd`` / ``baseline_seed_sd``: the std over runs of each run's mean over the paired
        cases (NaN with one run). Measures without values in both configurations are left out.
    """
    records = []
    by_measure = {key: part for key, part in values.groupby("measure", sort=False)}
    for config in [c for c in dict.fromkeys(values["config"]) if c != baseline]:
        for measure in measures:
            part = by_measure.get(measure.key)
            if part is None:
                continue
            other, base = part[part["config"].eq(config)], part[part["config"].eq(baseline)]
            if not len(other) or not len(base):
                continue
            a = other.groupby("case_id")["value"].mean()
            b = base.groupby("case_id")["value"].mean()
            interval = paired_interval(a, b, n_resamples=n_resamples, seed=seed)
            common = a.dropna().index.intersection(b.dropna().index)
            records.append({
                "config": config, "measure": measure.key, "label": measure.label,
                "higher_is_better": measure.higher_is_better,
                "value": float(a.loc[common].mean()), "baseline_value": float(b.loc[common].mean()),
                **interval._asdict(), "verdict": verdict(interval, higher_is_better=measure.higher_is_better),
                "seed_sd": _seed_sd(other, common), "baseline_seed_sd": _seed_sd(base, common),
                "n_seeds": int(other["run_id"].nunique()),
            })
    return pd.DataFrame(records, columns=FINDING_COLUMNS)


def _seed_sd(rows: pd.DataFrame, cases: pd.Index) -> float:
    """Std over runs of each run's mean over ``cases`` (NaN with fewer than two runs)."""
    per_run = rows[rows["case_id"].isin(cases)].groupby("run_id")["value"].mean().dropna()
    return float(per_run.std()) if len(per_run) > 1 else math.nan


def matched_recall_findings(
    rows: pd.DataFrame,
    baseline: str,
    *,
    precision: float = 0.85,
    region: str = DETECTION_REGION,
    n_resamples: int = 200,
) -> pd.DataFrame:
    """The ``matched_recall`` rows of the findings (:data:`FINDING_COLUMNS`) from detection rows
    tagged with ``config`` (and ``seed`` / ``fold`` where the sweep has them), through
    :func:`~workbench.experiments.detection.paired_differences` and, per run's seed,
    :func:`~workbench.experiments.detection.detection_table`."""
    from workbench.experiments.detection import detection_table, paired_differences

    rows = rows[rows["region"].eq(region)]
    if not len(rows) or baseline not in set(rows["config"]):
        return pd.DataFrame(columns=FINDING_COLUMNS)
    differences = paired_differences(rows, baseline, precision=precision, n_resamples=n_resamples)
    differences = differences[differences["statistic"].eq("matched_recall")]
    table = detection_table(rows, precision=precision, n_resamples=n_resamples, by_stratum=False).set_index("config")
    sd = _per_seed_matched_recall(rows, precision)
    label = f"recall@P{precision:g} ({region})"
    records = []
    for row in differences.itertuples():
        interval = Interval(row.difference, row.low, row.high, int(table.loc[row.config, "n_cases"]))
        records.append({
            "config": row.config, "measure": "matched_recall", "label": label, "higher_is_better": True,
            "value": float(table.loc[row.config, "matched_recall"]),
            "baseline_value": float(table.loc[baseline, "matched_recall"]),
            **interval._asdict(), "verdict": verdict(interval),
            "seed_sd": sd.get(row.config, math.nan), "baseline_seed_sd": sd.get(baseline, math.nan),
            "n_seeds": int(rows.loc[rows["config"].eq(row.config), "seed"].nunique()) if "seed" in rows else 1,
        })
    return pd.DataFrame(records, columns=FINDING_COLUMNS)


def _per_seed_matched_recall(rows: pd.DataFrame, precision: float) -> dict[str, float]:
    """Std over seeds of the recall at ``precision`` per configuration (NaN with one seed)."""
    from workbench.experiments.detection import detection_table

    if "seed" not in rows or rows["seed"].nunique() < 2:
        return {}
    values = []
    for seed_value, part in rows.groupby("seed", sort=False):
        table = detection_table(part, precision=precision, n_resamples=1, by_stratum=False)
        values.append(table[["config", "matched_recall"]].assign(seed=seed_value))
    per_seed = pd.concat(values, ignore_index=True)
    return {config: float(part["matched_recall"].std()) if part["matched_recall"].notna().sum() > 1 else math.nan
            for config, part in per_seed.groupby("config", sort=False)}


def ordered_findings(findings: pd.DataFrame, measures: Sequence[Measure] = MEASURES) -> pd.DataFrame:
    """Findings sorted by configuration (first appearance) then by the order of ``measures``."""
    if not len(findings):
        return findings
    rank = {m.key: i for i, m in enumerate(measures)}
    configs = {c: i for i, c in enumerate(dict.fromkeys(findings["config"]))}
    order = findings["config"].map(configs) * 100 + findings["measure"].map(rank).fillna(99)
    return findings.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def interval_text(row: Mapping) -> str:
    """``+0.120 [0.050, 0.190]`` of one finding (``–`` when undefined)."""
    if not math.isfinite(row["difference"]):
        return "–"
    if not (math.isfinite(row["low"]) and math.isfinite(row["high"])):
        return f"{row['difference']:+.3f}"
    return f"{row['difference']:+.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def finding_sentence(name: str, findings: pd.DataFrame, baseline_name: str) -> str:
    """One sentence of a configuration's findings, e.g. ``"blob: RC Dice +0.120 [0.050, 0.190] better
    than dc_ce; PQ@0.5 +0.010 [-0.020, 0.040] within the noise."``; its verdicts are those of
    ``findings`` (the configuration's rows of :func:`compare_to_baseline`)."""
    parts = []
    for row in findings.to_dict("records"):
        word = row["verdict"]
        if word in ("better", "worse"):
            word = f"{word} than {baseline_name}"
        elif word == "cannot tell":
            word += f" ({_why_undefined(row, name, baseline_name)})"
        parts.append(f"{row['label']} {interval_text(row)} {word}")
    if not parts:
        return f"{name}: nothing to compare with {baseline_name}."
    return f"{name}: " + "; ".join(parts) + "."


def _why_undefined(row: Mapping, name: str, baseline_name: str) -> str:
    """Why a finding has no verdict: a side without a value, or too few paired cases."""
    missing = [who for who, value in ((name, row["value"]), (baseline_name, row["baseline_value"]))
               if value is None or not math.isfinite(value)]
    if len(missing) == 2:
        return "neither has a value"
    if missing:
        return f"{missing[0]} has no value"
    return "fewer than two paired cases"


# --------------------------------------------------------------------------- recall per size stratum


def _reference_lesions(lesions: pd.DataFrame) -> pd.DataFrame:
    """The reference lesions (TP and FN rows) at the lowest matching threshold, with their size ``stratum``."""
    from workbench.metrics.panoptic import size_strata, stratum_names

    rows = _argmax_lesions(lesions, list(dict.fromkeys(lesions["region"]))) if len(lesions) else lesions
    rows = rows[rows["status"].isin(["TP", "FN"])] if len(rows) else rows
    if not len(rows):
        return rows
    names = np.array(stratum_names())
    return rows.assign(stratum=names[size_strata(rows["ref_mm3"].to_numpy(dtype=np.float64))])


def held_out_lesion_counts(lesions: pd.DataFrame) -> pd.DataFrame:
    """The reference lesions a sweep's held-out cases hold, per region and size stratum.

    Each case is counted once, from the first run that evaluated it (runs of other seeds see the
    same lesions; runs of other folds other cases).

    Parameters
    ----------
    lesions : DataFrame
        ``lesions.parquet`` rows tagged with ``run_id``; read at their lowest matching threshold.

    Returns
    -------
    DataFrame
        Index ``region`` (order of appearance); one integer column per stratum (size order), then
        ``all`` (lesions) and ``cases`` (held-out cases with at least one lesion of the region).
    """
    from workbench.metrics.panoptic import stratum_names

    names = stratum_names()
    rows = _reference_lesions(lesions)
    if not len(rows):
        return pd.DataFrame(columns=[*names, "all", "cases"], dtype=int).rename_axis("region")
    rows = rows[rows["run_id"].eq(rows.groupby("case_id")["run_id"].transform("first"))]
    strata = pd.Categorical(rows["stratum"], categories=names)
    table = pd.crosstab(pd.Categorical(rows["region"], categories=list(dict.fromkeys(rows["region"]))), strata,
                        dropna=False).rename_axis(index="region", columns=None)
    return table.assign(all=table.sum(axis=1), cases=rows.groupby("region", sort=False)["case_id"].nunique())


def recall_by_stratum(
    lesions: pd.DataFrame, *, n_resamples: int = 500, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Lesion recall at argmax per configuration, region and size stratum (reference volume), with a
    percentile bootstrap interval over the (run, case) units.

    Parameters
    ----------
    lesions : DataFrame
        ``lesions.parquet`` rows tagged with ``run_id`` and ``config``; read at their lowest
        matching threshold.

    Returns
    -------
    DataFrame
        ``config, region, stratum, recall, low, high, n_lesions``; strata in size order, regions
        and configurations in order of appearance; strata without a reference lesion left out.
    """
    from workbench.metrics.panoptic import stratum_names

    columns = ["config", "region", "stratum", "recall", "low", "high", "n_lesions"]
    rows = _reference_lesions(lesions)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    names = np.array(stratum_names())
    rows = rows.assign(unit=rows["run_id"].astype(str) + "/" + rows["case_id"].astype(str), hit=rows["status"].eq("TP"))
    rng = np.random.default_rng(seed)
    records = []
    regions = list(dict.fromkeys(rows["region"]))
    for (config, region, stratum), part in rows.groupby(["config", "region", "stratum"], sort=False):
        counts = part.groupby("unit")["hit"].agg(["sum", "count"]).to_numpy(dtype=np.float64)
        pick = rng.integers(0, len(counts), size=(n_resamples, len(counts)))
        resampled = counts[pick].sum(axis=1)
        ratios = resampled[:, 0] / resampled[:, 1]
        low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
        records.append({"config": config, "region": region, "stratum": stratum,
                        "recall": counts[:, 0].sum() / counts[:, 1].sum(), "low": float(low), "high": float(high),
                        "n_lesions": int(counts[:, 1].sum())})
    table = pd.DataFrame(records, columns=columns)
    order = {name: i for i, name in enumerate(names)}
    configs = {c: i for i, c in enumerate(dict.fromkeys(rows["config"]))}
    keys = table["config"].map(configs) * 10_000 + table["region"].map({r: i for i, r in enumerate(regions)}) * 100
    return table.assign(_k=keys + table["stratum"].map(order)).sort_values("_k").drop(columns="_k").reset_index(drop=True)
