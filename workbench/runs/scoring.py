"""``workbench evaluate --preset NAME``: a challenge's official scoring over a prediction folder.

Cases are paired and checked exactly as for ``workbench evaluate``
(:func:`workbench.runs.cases.match_cases`: a missing or extra prediction is an error, where the
official parser would instead score a missing case 0 and HD95 373), then scored in parallel
processes (:func:`workbench.runs.cases.run_cases`) with
:func:`workbench.metrics.challenge.score_case`. Written into the output folder, atomically:

- ``scores.parquet`` / ``.csv``: one row per case, the official leaderboard columns (those of
  ``brats-parse-metrics``, ``subject_id`` = case id) and the FP-by-size extras;
- ``leaderboard.csv``: the same rows followed by the ``mean``, ``std`` and ``median`` rows, the
  layout of the official parser's CSV;
- ``summary.parquet`` / ``.csv``: tidy, one row per (region, metric): mean, std (ddof 1),
  median and count of cases with a value;
- ``lesions.parquet`` / ``.csv``: every lesion of every case and region with its size class,
  match, Dice/NSD/HD95, status and the values it was scored with;
- ``run.json``: parameters, versions, status and timings (:class:`~workbench.runs.record.RunRecord`).
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from workbench._io import atomic_write
from workbench.data.nifti import load_label
from workbench.metrics.challenge import ChallengePreset, get_preset, score_case, summarize_scores
from workbench.runs.cases import CasePair, match_cases, reference_manifest, run_cases, select_split
from workbench.runs.record import RunRecord, json_safe
from workbench.runs.tables import claim_results_folder, write_tables

__all__ = ["ScoredCohort", "run_scoring", "score_cohort", "tidy_summary"]

_VERSIONED_PACKAGES = ("workbench", "numpy", "scipy", "pandas", "connected-components-3d", "nibabel")


class ScoredCohort(NamedTuple):
    """What :func:`score_cohort` returns.

    Attributes
    ----------
    scores : DataFrame
        One row per case, in reference order (:func:`~workbench.metrics.challenge.score_case` rows).
    lesions : DataFrame
        The per-lesion rows of every case.
    summary : DataFrame
        :func:`tidy_summary` of ``scores``.
    seconds : dict of str to float
        Case id -> wall time (both files loaded and scored).
    """

    scores: pd.DataFrame
    lesions: pd.DataFrame
    summary: pd.DataFrame
    seconds: dict[str, float]


def tidy_summary(scores: pd.DataFrame, preset: str | ChallengePreset) -> pd.DataFrame:
    """Mean, std (ddof 1), median and count over cases of every score column, per region.

    Parameters
    ----------
    scores : DataFrame
        :func:`score_case` rows.
    preset : str or ChallengePreset
        Gives the region names that end the column names.

    Returns
    -------
    DataFrame
        Columns ``region, metric, mean, std, median, count`` in the order of ``scores``' columns.
    """
    regions = tuple(get_preset(preset).groups)
    rows = []
    for column in scores.columns.drop("subject_id"):
        metric, region = column.rsplit("_", 1)
        if region not in regions:
            continue
        values = pd.to_numeric(scores[column], errors="coerce")
        # all-NaN columns (no case has that lesion class) stay NaN; a std over ∞ (seg parser: a
        # case without a matched lesion has lesion-wise HD95 ∞) is NaN
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = {"mean": values.mean(), "std": values.std(), "median": values.median()}
        rows.append({"region": region, "metric": metric, **stats, "count": int(values.count())})
    return pd.DataFrame(rows, columns=["region", "metric", "mean", "std", "median", "count"])


def score_cohort(
    pairs: list[CasePair], preset: str | ChallengePreset, *, workers: int = 1, progress: bool = True
) -> ScoredCohort:
    """Score every case pair with ``preset``; in this process when ``workers`` is 1, else in a pool.

    Raises
    ------
    EvaluationError
        A case's files could not be read or hold label values the preset does not use (the case
        is named).
    """
    preset = get_preset(preset)
    ordered = run_cases(
        pairs, partial(_score_pair, preset=preset), workers=workers, progress=progress, desc=f"scoring ({preset.name})"
    )
    scores = pd.DataFrame([row for row, _, _ in ordered])
    lesions = pd.concat([table for _, table, _ in ordered], ignore_index=True)
    seconds = {pair.case_id: result[2] for pair, result in zip(pairs, ordered)}
    return ScoredCohort(scores, lesions, tidy_summary(scores, preset), seconds)


def run_scoring(
    pred: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    preset: str | ChallengePreset,
    split: str | None = None,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> ScoredCohort:
    """Score a prediction folder or manifest against a reference manifest; write the tables (module docstring).

    Parameters
    ----------
    pred : path
        A folder of ``<case_id>.nii.gz`` files or a manifest of predictions.
    reference : path
        The reference manifest, loaded without reading every label up front: each case's files
        are read and checked once, when it is scored.
    out_dir : path
        Created if missing; ``run.json`` says ``running`` until the tables are written. One that
        holds files is refused unless ``overwrite``.
    preset : str or ChallengePreset
        A :data:`workbench.metrics.challenge.PRESETS` name.
    split : str, optional
        Only the reference cases of this split.
    workers : int
    progress : bool
    overwrite : bool, default False
        Replace an earlier result in ``out_dir``: its tables (of either kind of evaluation, e.g. a
        plain ``per_case.*``) are removed before the new run starts.

    Returns
    -------
    ScoredCohort

    Raises
    ------
    CaseMatchError
        Predictions and reference cases do not pair up, or the split does not exist.
    EvaluationError
        A case's files cannot be read or hold label values the preset does not use (the case is
        named).
    ValueError
        An unknown preset.
    FileExistsError
        ``out_dir`` holds files and ``overwrite`` is off.
    """
    start = time.perf_counter()
    preset = get_preset(preset)
    pairs = match_cases(pred, select_split(reference_manifest(reference), split))
    parameters = {
        "pred": str(Path(pred).resolve()),
        "reference": str(Path(reference).resolve()),
        "split": split,
        "preset": preset.name,
        "official_config": preset.config,
        "parser": preset.parser,
        "reverse_spacing": preset.reverse_spacing,
        "workers": int(workers),
        "cases": [pair.case_id for pair in pairs],
    }
    claim_results_folder(out_dir, overwrite=overwrite, what="evaluation")
    with RunRecord(out_dir, parameters=parameters, packages=_VERSIONED_PACKAGES) as record:
        result = score_cohort(pairs, preset, workers=workers, progress=progress)
        attrs = json_safe({"parameters": parameters, "versions": record.info["versions"]})
        tables = {"scores": result.scores, "summary": result.summary, "lesions": result.lesions}
        written = [path.name for path in write_tables(out_dir, tables, attrs=attrs)]
        with atomic_write(Path(out_dir) / "leaderboard.csv") as tmp:
            summarize_scores(result.scores).to_csv(tmp, index=False)
        record.finish(
            outputs=[*written, "leaderboard.csv"], timings={"total_s": time.perf_counter() - start, "case_s": result.seconds}
        )
    return result


def _score_pair(pair: CasePair, preset: ChallengePreset) -> tuple[dict[str, Any], pd.DataFrame, float]:
    start = time.perf_counter()
    ref, _, spacing = load_label(pair.reference)
    pred = load_label(pair.prediction)[0]
    row, lesions = score_case(pred, ref, preset=preset, spacing=spacing, case_id=pair.case_id)
    return row, lesions, time.perf_counter() - start
