"""Evaluate a cohort of predicted label maps against a reference manifest (``workbench evaluate``).

Predictions are paired with the reference cases and checked (:func:`workbench.runs.cases.match_cases`),
then every case runs through :func:`workbench.metrics.evaluate_case` and
:func:`workbench.metrics.lesion_table` (:func:`workbench.runs.cases.run_cases`, in parallel
processes), and the results are gathered into three tidy tables:

``per_case``
    One row per (case, region, metric, threshold, stratum): the output of ``evaluate_case``.
``lesions``
    One row per reference or predicted lesion per region and matching threshold: the output of
    ``lesion_table``, one block per threshold.
``summary``
    ``per_case`` aggregated over cases: mean, standard deviation and the number of cases with a
    value (not NaN) per (region, metric, threshold, stratum).

Voxel spacing comes from the reference header. Label values of both maps are checked against
the schema. :func:`run_evaluation` does all of it and writes the tables as Parquet and CSV plus
a ``run.json`` (:class:`~workbench.runs.record.RunRecord`) into one folder, each file
atomically. The tables carry the run's parameters in their Parquet metadata as well
(``pandas.read_parquet(path).attrs["run"]``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from workbench._validate import DEFAULT_CONNECTIVITY, DEFAULT_THRESHOLDS, check_connectivity, check_positive_int, check_thresholds
from workbench.data.manifest import Manifest
from workbench.data.nifti import AFFINE_ATOL, load_label
from workbench.labels import LabelSchema, resolve_schema
from workbench.metrics import evaluate_case, lesion_table
from workbench.runs.cases import CasePair, match_cases, reference_manifest, run_cases, select_split
from workbench.runs.record import RunRecord, json_safe
from workbench.runs.tables import claim_results_folder, write_tables

__all__ = [
    "SUMMARY_KEYS",
    "TABLES",
    "CohortEvaluation",
    "evaluate_cohort",
    "run_evaluation",
    "summarise",
]

TABLES: tuple[str, ...] = ("per_case", "lesions", "summary")
"""Table names; each is written as ``<name>.parquet`` and ``<name>.csv``."""

SUMMARY_KEYS: tuple[str, ...] = ("region", "metric", "threshold", "stratum")
"""Columns of ``per_case`` that ``summary`` groups by."""

_VERSIONED_PACKAGES = (
    "workbench", "numpy", "scipy", "pandas", "pyarrow", "connected-components-3d", "nibabel", "numba",
)


class CohortEvaluation(NamedTuple):
    """What :func:`evaluate_cohort` returns: the three tables and the time each case took.

    Attributes
    ----------
    per_case : DataFrame
        Columns ``case_id, region, metric, threshold, stratum, value``; cases in reference order.
    lesions : DataFrame
        The per-lesion rows of every case and threshold (columns of ``lesion_table``).
    summary : DataFrame
        Columns ``region, metric, threshold, stratum, mean, std, count`` (see :func:`summarise`).
    seconds : dict of str to float
        Case id -> wall time of its evaluation (loading both files included), in seconds.
    spacing : dict of str to tuple of float
        Case id -> voxel size in mm (from the reference header) that the metrics used.
    config : dict
        The metrics' options (``evaluate_case``'s ``attrs["config"]`` without the spacing):
        matching rule, thresholds, size strata, surface tolerance, empty-case policy, version.
    """

    per_case: pd.DataFrame
    lesions: pd.DataFrame
    summary: pd.DataFrame
    seconds: dict[str, float]
    spacing: dict[str, tuple[float, ...]]
    config: dict[str, Any]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three tables by name, in :data:`TABLES` order."""
        return {name: getattr(self, name) for name in TABLES}


@dataclass(frozen=True)
class _Options:
    schema: LabelSchema
    regions: tuple[str, ...] | None
    thresholds: tuple[float, ...]
    connectivity: int


class _CaseResult(NamedTuple):
    per_case: pd.DataFrame
    lesions: pd.DataFrame
    seconds: float
    spacing: tuple[float, ...]
    config: dict[str, Any]


def evaluate_cohort(
    pred: str | os.PathLike[str],
    reference: Manifest | str | os.PathLike[str],
    *,
    schema: str | LabelSchema | None = None,
    regions: Sequence[str] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    connectivity: int = DEFAULT_CONNECTIVITY,
    workers: int = 1,
    progress: bool = True,
) -> CohortEvaluation:
    """Match predictions to a reference manifest and evaluate every case, in parallel processes.

    Parameters
    ----------
    pred : str or PathLike
        A folder of ``<case_id>[-seg].nii[.gz]`` files, or a manifest whose cases' ``label``
        files are the predictions (see :func:`~workbench.runs.cases.match_cases`).
    reference : Manifest, str or PathLike
        The reference manifest; a path is loaded without reading every label up front (the
        workers check label values) and its generator, if any, recreates missing files.
    schema : str or LabelSchema, optional
        Label schema of both label maps (a unique name prefix is accepted); default the
        reference manifest's.
    regions : sequence of str, optional
        Regions to evaluate; default all of the schema's.
    thresholds : sequence of float, default (0.1, 0.3, 0.5)
        Pair-Dice thresholds of the one-to-one matching.
    connectivity : int, default 26
        Connected-component connectivity (6, 18, 26 in 3D; 4, 8 in 2D).
    workers : int, default 1
        Processes; 1 runs in this process without a pool.
    progress : bool, default True
        Show a tqdm bar over the cases (only when stderr is a terminal).

    Returns
    -------
    CohortEvaluation

    Raises
    ------
    ValueError
        If ``workers`` < 1, ``thresholds`` is empty or outside ``(0, 1]``, ``connectivity`` is
        not one of 4, 6, 8, 18, 26, or a region is not the schema's.
    CaseMatchError
        If predictions and reference cases do not pair up.
    EvaluationError
        If a case's data is bad (unreadable file, label values outside the schema); names the
        case and its files. Remaining cases are cancelled. Other exceptions (bugs) propagate
        with a note naming the case.

    Examples
    --------
    With a folder ``predictions/`` of ``<case_id>.nii.gz`` files::

        result = evaluate_cohort("predictions/", "data_manifests/mine.yaml", workers=4)
        result.summary.query("metric == 'pq' and threshold == 0.5 and stratum == 'all'")
    """
    manifest = reference_manifest(reference)
    options = _checked_options(manifest.schema if schema is None else schema, regions, thresholds, connectivity, workers)
    return _evaluate(match_cases(pred, manifest), options, workers, progress)


def summarise(per_case: pd.DataFrame) -> pd.DataFrame:
    """Aggregate a per-case table over cases.

    Parameters
    ----------
    per_case : DataFrame
        Columns ``region, metric, threshold, stratum, value`` (and any others, ignored).

    Returns
    -------
    summary : DataFrame
        One row per (region, metric, threshold, stratum) in order of first appearance; NaN keys
        (a metric without a threshold) form their own groups. ``mean`` and ``std`` (ddof 1) skip
        NaN values; ``count`` is the number of cases with a value.
    """
    grouped = per_case.groupby(list(SUMMARY_KEYS), dropna=False, sort=False)["value"]
    return grouped.agg(mean="mean", std="std", count="count").reset_index()


def run_evaluation(
    pred: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    schema: str | LabelSchema | None = None,
    regions: Sequence[str] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    connectivity: int = DEFAULT_CONNECTIVITY,
    workers: int = 1,
    progress: bool = True,
    split: str | None = None,
    overwrite: bool = False,
) -> CohortEvaluation:
    """Evaluate a prediction folder or manifest and write the tables and ``run.json`` into ``out_dir``.

    Inputs are matched and checked before anything is written; then ``run.json`` follows the
    :class:`~workbench.runs.record.RunRecord` lifecycle (``running`` → ``complete`` or
    ``failed``). The tables in ``out_dir`` belong to the run that ``run.json`` describes only
    when its status is complete.

    Parameters
    ----------
    pred, reference, schema, regions, thresholds, connectivity, workers, progress
        As for :func:`evaluate_cohort`; ``reference`` is a manifest path here.
    out_dir : str or PathLike
        Output folder; created if missing. One that holds files is refused unless ``overwrite``.
    split : str, optional
        Evaluate only the reference cases of this split (e.g. ``"val"``, whose cases a training run
        predicts); None: every case.
    overwrite : bool, default False
        Replace an earlier result in ``out_dir``: its tables (of either kind of evaluation) are
        removed before the new run starts (:func:`~workbench.runs.tables.claim_results_folder`).

    Returns
    -------
    CohortEvaluation

    Raises
    ------
    FileExistsError
        ``out_dir`` holds files and ``overwrite`` is off.

    Notes
    -----
    ``run.json`` keys: ``status``; ``started``, ``finished`` (UTC, ISO 8601); ``parameters``
    (pred, reference, schema, regions, thresholds, connectivity, workers, affine tolerance,
    case ids); ``versions`` (Python and packages); when complete ``metrics`` (the metrics'
    options: matching rule, size strata, surface tolerance, empty-case policy), ``spacing_mm``
    per case, ``timings`` (seconds: total, matching, evaluation, writing, per case) and
    ``outputs``; when failed ``error``. NaN values are written as ``null``.
    """
    start = time.perf_counter()
    manifest = select_split(reference_manifest(reference), split)
    options = _checked_options(manifest.schema if schema is None else schema, regions, thresholds, connectivity, workers)
    pairs = match_cases(pred, manifest)
    parameters = _run_parameters(pred, reference, split, options, workers, pairs)
    claim_results_folder(out_dir, overwrite=overwrite, what="evaluation")
    with RunRecord(out_dir, parameters=parameters, packages=_VERSIONED_PACKAGES) as record:
        evaluated = time.perf_counter()
        result = _evaluate(pairs, options, workers, progress)
        written = time.perf_counter()
        record.update(metrics=result.config, spacing_mm=result.spacing)
        attrs = json_safe({key: record.info[key] for key in ("parameters", "metrics", "spacing_mm", "versions")})
        paths = write_tables(out_dir, result.tables(), attrs=attrs)
        record.finish(
            outputs=[p.name for p in paths],
            timings={
                "total_s": time.perf_counter() - start,
                "match_s": evaluated - start,
                "evaluate_s": written - evaluated,
                "write_s": time.perf_counter() - written,
                "case_s": result.seconds,
            },
        )
    return result


def _run_parameters(
    pred: str | os.PathLike[str], reference: str | os.PathLike[str], split: str | None, options: _Options, workers: int,
    pairs: Sequence[CasePair],
) -> dict[str, Any]:
    """The ``parameters`` of an evaluation's ``run.json``."""
    return {
        "pred": str(Path(pred).resolve()),
        "reference": str(Path(reference).resolve()),
        "split": split,
        "schema": options.schema.name,
        "regions": list(options.regions or options.schema.region_names),
        "thresholds": list(options.thresholds),
        "connectivity": options.connectivity,
        "workers": int(workers),
        "affine_atol_mm": AFFINE_ATOL,
        "cases": [pair.case_id for pair in pairs],
    }


def _checked_options(
    schema: str | LabelSchema,
    regions: Sequence[str] | None,
    thresholds: Sequence[float],
    connectivity: int,
    workers: int,
) -> _Options:
    """Validate the options once, before any case runs, with messages naming the argument."""
    schema = resolve_schema(schema)
    if regions is not None:
        regions = tuple(regions)
        unknown = [r for r in regions if r not in schema.region_names]
        if not regions or unknown:
            raise ValueError(
                f"Expected `regions` to be regions of schema {schema.name!r} {list(schema.region_names)}, "
                f"but got {list(regions)}."
            )
    options = _Options(schema, regions, check_thresholds(thresholds), check_connectivity(connectivity))
    check_positive_int("workers", workers)
    return options


def _evaluate(pairs: Sequence[CasePair], options: _Options, workers: int, progress: bool) -> CohortEvaluation:
    ordered = run_cases(pairs, partial(_evaluate_pair, options=options), workers=workers, progress=progress)
    per_case = pd.concat([r.per_case for r in ordered], ignore_index=True)
    lesions = pd.concat([r.lesions for r in ordered], ignore_index=True)
    return CohortEvaluation(
        per_case=per_case,
        lesions=lesions,
        summary=summarise(per_case),
        seconds={pair.case_id: r.seconds for pair, r in zip(pairs, ordered)},
        spacing={pair.case_id: r.spacing for pair, r in zip(pairs, ordered)},
        config=ordered[0].config,
    )


def _evaluate_pair(pair: CasePair, options: _Options) -> _CaseResult:
    """Load one case's two label maps and compute its per-case and per-lesion tables."""
    start = time.perf_counter()
    ref, _, spacing = load_label(pair.reference)
    pred = load_label(pair.prediction)[0]
    common = {
        "schema": options.schema,
        "regions": options.regions,
        "spacing": spacing,
        "connectivity": options.connectivity,
        "case_id": pair.case_id,
    }
    per_case = evaluate_case(pred, ref, thresholds=options.thresholds, **common)
    lesions = lesion_table(pred, ref, threshold=options.thresholds, **common)
    config = {key: value for key, value in per_case.attrs.get("config", {}).items() if key != "spacing"}
    return _CaseResult(per_case, lesions, time.perf_counter() - start, spacing, config)
