"""Evaluate a cohort of predicted label maps against a reference manifest (``workbench evaluate``).

Predictions are matched to the reference cases by case id, every pair's voxel grid is checked
from the headers, then the cases run in parallel processes through
:func:`workbench.metrics.evaluate_case` and :func:`workbench.metrics.lesion_table`, and the
results are gathered into three tidy tables:

``per_case``
    One row per (case, region, metric, threshold, stratum): the output of ``evaluate_case``.
``lesions``
    One row per reference or predicted lesion per region and matching threshold: the output of
    ``lesion_table``, one block per threshold.
``summary``
    ``per_case`` aggregated over cases: mean, standard deviation and the number of cases with a
    value (not NaN) per (region, metric, threshold, stratum).

Predictions are given as either

* **a folder** of NIfTI label maps named ``<case_id>.nii.gz`` (also ``<case_id>-seg.nii.gz``,
  ``<case_id>.nii`` or ``<case_id>-seg.nii``; hidden files are ignored, other files are not
  allowed to be NIfTI files of other cases), or
* **a manifest** (``.yaml`` / ``.yml``) whose cases' ``label`` files are the predictions.

Matching is strict: a reference case without a prediction, a prediction without a reference
case, two prediction files for one case, and a prediction whose shape differs from the
reference's or whose affine differs by more than :data:`workbench.data.nifti.AFFINE_ATOL` mm in
any entry are errors, all listed at once and each naming its case (and files). Voxel spacing
comes from the reference header. Label values of both maps are checked against the schema.

:func:`run_evaluation` does all of it and writes the tables as Parquet and CSV plus a
``run.json`` (parameters, package versions, timings, status) into one folder, each file
atomically. The tables carry the run's parameters in their Parquet metadata as well
(``pandas.read_parquet(path).attrs["run"]``).
"""

from __future__ import annotations


import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from workbench._io import atomic_write
from workbench._runinfo import json_safe, package_versions, utc_now, write_json
from workbench.data.manifest import Manifest, load_manifest, read_manifest
from workbench.data.nifti import AFFINE_ATOL, grid_mismatch, load_label, read_header
from workbench.labels import SCHEMAS, LabelSchema, get_schema
from workbench.metrics import evaluate_case, lesion_table

__all__ = [
    "SUMMARY_KEYS",
    "TABLES",
    "CaseMatchError",
    "CasePair",
    "CohortEvaluation",
    "EvaluationError",
    "evaluate_cohort",
    "match_cases",
    "resolve_schema",
    "run_evaluation",
    "select_split",
    "summarise",
    "write_tables",
]

TABLES: tuple[str, ...] = ("per_case", "lesions", "summary")
"""Table names; each is written as ``<name>.parquet`` and ``<name>.csv``."""

SUMMARY_KEYS: tuple[str, ...] = ("region", "metric", "threshold", "stratum")
"""Columns of ``per_case`` that ``summary`` groups by."""

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_SEG_SUFFIX = "-seg"
_MANIFEST_SUFFIXES = (".yaml", ".yml")
_CONNECTIVITIES = (4, 6, 8, 18, 26)
_VERSIONED_PACKAGES = (
    "workbench", "numpy", "scipy", "pandas", "pyarrow", "connected-components-3d", "nibabel", "numba",
)

T = TypeVar("T")


class CaseMatchError(ValueError):
    """Predictions and reference cases do not pair up; the message lists every problem."""


class EvaluationError(ValueError):
    """Evaluating one case failed on its data (unreadable file, label values outside the schema)."""


@dataclass(frozen=True)
class CasePair:
    """The prediction and reference label files of one case."""

    case_id: str
    prediction: Path
    reference: Path


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


def resolve_schema(name: str | LabelSchema) -> LabelSchema:
    """A registered schema by name, or by a unique prefix of its name (``brats_mets`` ->
    ``brats_mets_2025``).

    Raises
    ------
    ValueError
        If no registered name equals ``name`` or starts with it, or several start with it; the
        message lists the registered names.
    """
    if isinstance(name, LabelSchema) or name in SCHEMAS:
        return get_schema(name)
    candidates = sorted(s for s in SCHEMAS if s.startswith(name))
    if len(candidates) == 1:
        return SCHEMAS[candidates[0]]
    reason = f"it is a prefix of several ({candidates})" if candidates else "no schema has that name"
    raise ValueError(f"Unknown label schema {name!r}: {reason}; known schemas: {sorted(SCHEMAS)}.")


def match_cases(pred: str | os.PathLike[str], reference: Manifest) -> list[CasePair]:
    """Pair every reference case with its prediction file and check that their grids agree.

    Parameters
    ----------
    pred : str or PathLike
        A folder of ``<case_id>[-seg].nii[.gz]`` files, or a manifest whose cases' ``label``
        files are the predictions.
    reference : Manifest
        Every case must have a label.

    Returns
    -------
    pairs : list of CasePair
        In the reference's case order.

    Raises
    ------
    FileNotFoundError
        If ``pred`` does not exist.
    CaseMatchError
        Listing every problem: reference cases without a label; a prediction manifest's cases
        without a label; two prediction files for one case; case ids without a prediction
        (missing) or without a reference case (extra); per case, an unreadable or missing file,
        or a shape or affine that differs between prediction and reference (both files and
        shapes or affines named).
    """
    pred = Path(pred)
    unlabelled = [case.id for case in reference.cases if case.label is None]
    if unlabelled:
        raise CaseMatchError(
            f"Reference manifest {_where(reference)} has cases without a label, which cannot be evaluated: "
            f"{unlabelled}."
        )
    references = {case.id: case.label for case in reference.cases}
    predictions = _prediction_files(pred, set(references))
    missing = [cid for cid in references if cid not in predictions]
    extra = sorted(cid for cid in predictions if cid not in references)
    if missing or extra:
        raise CaseMatchError(_mismatch_message(pred, reference, missing, extra, predictions))
    pairs = [CasePair(cid, predictions[cid], ref) for cid, ref in references.items()]
    problems = [p for pair in pairs if (p := _grid_problem(pair))]
    if problems:
        raise CaseMatchError(_listing(f"Predictions {pred} do not match the reference grids", problems))
    return pairs


def evaluate_cohort(
    pred: str | os.PathLike[str],
    reference: Manifest | str | os.PathLike[str],
    *,
    schema: str | LabelSchema | None = None,
    regions: Sequence[str] | None = None,
    thresholds: Sequence[float] = (0.1, 0.3, 0.5),
    connectivity: int = 26,
    workers: int = 1,
    progress: bool = True,
) -> CohortEvaluation:
    """Match predictions to a reference manifest and evaluate every case, in parallel processes.

    Parameters
    ----------
    pred : str or PathLike
        A folder of ``<case_id>[-seg].nii[.gz]`` files, or a manifest whose cases' ``label``
        files are the predictions (see :func:`match_cases`).
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
        If predictions and reference cases do not pair up (:func:`match_cases`).
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
    manifest = _reference_manifest(reference)
    options = _checked_options(
        manifest.schema if schema is None else schema, regions, thresholds, connectivity, workers
    )
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


def write_tables(
    out_dir: str | os.PathLike[str], result: CohortEvaluation, *, attrs: dict[str, Any] | None = None
) -> list[Path]:
    """Write the three tables as ``<name>.parquet`` and ``<name>.csv`` into ``out_dir``, atomically.

    Parameters
    ----------
    out_dir : str or PathLike
        Must exist; files of an earlier run are replaced.
    result : CohortEvaluation
    attrs : dict, optional
        JSON-serialisable run parameters, stored as ``attrs["run"]`` in each Parquet file.

    Returns
    -------
    paths : list of Path
        The six files, Parquet then CSV per table, in :data:`TABLES` order.
    """
    out_dir = Path(out_dir)
    paths = []
    for name in TABLES:
        table = getattr(result, name).copy()
        table.attrs = {"run": attrs or {}}
        parquet, csv = out_dir / f"{name}.parquet", out_dir / f"{name}.csv"
        with atomic_write(parquet) as tmp:
            table.to_parquet(tmp, index=False)
        with atomic_write(csv) as tmp:
            table.to_csv(tmp, index=False)
        paths += [parquet, csv]
    return paths


def run_evaluation(
    pred: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    schema: str | LabelSchema | None = None,
    regions: Sequence[str] | None = None,
    thresholds: Sequence[float] = (0.1, 0.3, 0.5),
    connectivity: int = 26,
    workers: int = 1,
    progress: bool = True,
    split: str | None = None,
) -> CohortEvaluation:
    """Evaluate a prediction folder or manifest and write the tables and ``run.json`` into ``out_dir``.

    Inputs are matched and checked (:func:`match_cases`) before anything is written. Then
    ``out_dir`` is created and ``run.json`` is written with ``"status": "running"``, replaced at
    the end by ``"complete"`` (with timings) or ``"failed"`` (with the error). The tables in
    ``out_dir`` belong to the run that ``run.json`` describes only when its status is complete.

    Parameters
    ----------
    pred, reference, schema, regions, thresholds, connectivity, workers, progress
        As for :func:`evaluate_cohort`; ``reference`` is a manifest path here.
    out_dir : str or PathLike
        Output folder; created if missing.
    split : str, optional
        Evaluate only the reference cases of this split (e.g. ``"val"``, whose cases a training run
        predicts); None: every case.

    Returns
    -------
    CohortEvaluation

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
    manifest = select_split(_reference_manifest(reference), split)
    options = _checked_options(
        manifest.schema if schema is None else schema, regions, thresholds, connectivity, workers
    )
    pairs = match_cases(pred, manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {
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
    info: dict[str, Any] = {
        "status": "running",
        "started": utc_now(),
        "parameters": parameters,
        "versions": package_versions(_VERSIONED_PACKAGES),
    }
    write_json(out_dir / "run.json", info)
    try:
        evaluated = time.perf_counter()
        result = _evaluate(pairs, options, workers, progress)
        written = time.perf_counter()
        info.update(metrics=result.config, spacing_mm=result.spacing)
        attrs = json_safe({key: info[key] for key in ("parameters", "metrics", "spacing_mm", "versions")})
        paths = write_tables(out_dir, result, attrs=attrs)
    except BaseException as exc:
        info.update(status="failed", finished=utc_now(), error=f"{type(exc).__name__}: {exc}")
        write_json(out_dir / "run.json", info)
        raise
    end = time.perf_counter()
    info.update(
        status="complete",
        finished=utc_now(),
        outputs=[p.name for p in paths],
        timings={
            "total_s": end - start,
            "match_s": evaluated - start,
            "evaluate_s": written - evaluated,
            "write_s": end - written,
            "case_s": result.seconds,
        },
    )
    write_json(out_dir / "run.json", info)
    return result


# --------------------------------------------------------------------------- matching


def select_split(manifest: Manifest, split: str | None) -> Manifest:
    """``manifest`` restricted to the cases of ``split`` (unchanged for None).

    Raises
    ------
    CaseMatchError
        If no case is in that split; the message lists the splits there are.
    """
    if split is None:
        return manifest
    try:
        return replace(manifest, cases=manifest.split(split))
    except KeyError as error:
        raise CaseMatchError(error.args[0]) from None


def _reference_manifest(reference: Manifest | str | os.PathLike[str]) -> Manifest:
    if isinstance(reference, Manifest):
        return reference
    return load_manifest(reference, validate=False)


def _prediction_files(pred: Path, reference_ids: set[str]) -> dict[str, Path]:
    if not pred.exists():
        raise FileNotFoundError(f"Predictions {pred} do not exist (expected a folder of NIfTI files or a manifest).")
    if pred.is_dir():
        return _folder_predictions(pred, reference_ids)
    if pred.name.lower().endswith(_MANIFEST_SUFFIXES):
        return _manifest_predictions(pred)
    raise CaseMatchError(
        f"Predictions {pred} must be a folder of <case_id>.nii.gz files or a manifest ending in "
        f"{' or '.join(_MANIFEST_SUFFIXES)}."
    )


def _folder_predictions(folder: Path, reference_ids: set[str]) -> dict[str, Path]:
    """Case id -> file for every NIfTI file in ``folder``.

    ``<stem>-seg`` names the case ``<stem>`` unless ``<stem>-seg`` is itself a reference case id.
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in _NIFTI_SUFFIXES if path.name.lower().endswith(s)), None)
        if suffix is None or path.name.startswith(".") or not path.is_file():
            continue
        stem = path.name[: -len(suffix)]
        if stem.endswith(_SEG_SUFFIX) and stem not in reference_ids:
            stem = stem[: -len(_SEG_SUFFIX)]
        found.setdefault(stem, []).append(path)
    duplicates = [f"case {cid!r}: {[p.name for p in paths]}" for cid, paths in found.items() if len(paths) > 1]
    if duplicates:
        raise CaseMatchError(_listing(f"Predictions {folder} hold several files for one case", duplicates))
    return {cid: paths[0] for cid, paths in found.items()}


def _manifest_predictions(path: Path) -> dict[str, Path]:
    manifest = read_manifest(path)
    unlabelled = [case.id for case in manifest.cases if case.label is None]
    if unlabelled:
        raise CaseMatchError(
            f"Prediction manifest {path}: cases without a label file (the label files are the predictions): "
            f"{unlabelled}."
        )
    return {case.id: case.label for case in manifest.cases}


def _mismatch_message(
    pred: Path, reference: Manifest, missing: list[str], extra: list[str], predictions: dict[str, Path]
) -> str:
    problems = []
    if missing:
        problems.append(f"{len(missing)} reference case(s) have no prediction (missing): {missing}")
    if extra:
        names = [predictions[cid].name for cid in extra]
        problems.append(f"{len(extra)} prediction(s) have no reference case (extra): {extra} (files {names})")
    return _listing(f"Predictions {pred} do not match the cases of reference manifest {_where(reference)}", problems)


def _grid_problem(pair: CasePair) -> str | None:
    try:
        problem = grid_mismatch(read_header(pair.reference), read_header(pair.prediction))
    except (OSError, ValueError) as exc:  # the message names the file
        return f"case {pair.case_id!r}: {exc}"
    return None if problem is None else f"case {pair.case_id!r}: prediction and reference grids differ: {problem}"


def _where(manifest: Manifest) -> str:
    return str(manifest.source) if manifest.source is not None else repr(manifest.name)


def _listing(head: str, problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"{head}: {problems[0]}."
    return f"{head}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


# --------------------------------------------------------------------------- running cases


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
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"Expected `thresholds` to be one or more values in (0, 1], but got {list(thresholds)}.")
    if connectivity not in _CONNECTIVITIES:
        raise ValueError(f"Expected `connectivity` to be one of {_CONNECTIVITIES}, but got {connectivity!r}.")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"Expected `workers` to be a positive int, but got {workers!r}.")
    return _Options(schema, regions, thresholds, int(connectivity))


def _evaluate(pairs: Sequence[CasePair], options: _Options, workers: int, progress: bool) -> CohortEvaluation:
    results = _run_cases(pairs, options, workers, progress)
    ordered = [results[pair.case_id] for pair in pairs]
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


def _run_cases(pairs: Sequence[CasePair], options: _Options, workers: int, progress: bool) -> dict[str, _CaseResult]:
    """Case id -> result; in this process when ``workers`` is 1, else in a process pool."""
    bar = tqdm(total=len(pairs), desc="evaluating", unit="case", disable=None if progress else True)
    results: dict[str, _CaseResult] = {}
    with bar:
        if workers == 1:
            for pair in pairs:
                results[pair.case_id] = _in_context(pair, lambda: _evaluate_pair(pair, options))
                bar.update()
            return results
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pairs)))
        try:
            futures = {pool.submit(_evaluate_pair, pair, options): pair for pair in pairs}
            for future in as_completed(futures):
                pair = futures[future]
                results[pair.case_id] = _in_context(pair, future.result)
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def _in_context(pair: CasePair, call: Callable[[], T]) -> T:
    """``call()``, with data errors re-raised as :class:`EvaluationError` naming the case."""
    try:
        return call()
    except (OSError, ValueError) as exc:
        raise EvaluationError(
            f"Case {pair.case_id!r} (prediction {pair.prediction}, reference {pair.reference}): {exc}"
        ) from exc
    except Exception as exc:
        exc.add_note(f"while evaluating case {pair.case_id!r} (prediction {pair.prediction})")
        raise


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


# --------------------------------------------------------------------------- run.json
