"""Case pairing and the one parallel case runner behind ``workbench evaluate`` (with and without ``--preset``).

Predictions are given as either

* **a folder** of NIfTI label maps named ``<case_id>.nii.gz`` (also ``<case_id>-seg.nii.gz``,
  ``<case_id>.nii`` or ``<case_id>-seg.nii``; hidden files are ignored, other files are not
  allowed to be NIfTI files of other cases), or
* **a manifest** (``.yaml`` / ``.yml``) whose cases' ``label`` files are the predictions.

Matching is strict: a reference case without a prediction, a prediction without a reference
case, two prediction files for one case, and a prediction whose shape differs from the
reference's or whose affine differs by more than :data:`workbench.data.nifti.AFFINE_ATOL` mm in
any entry are errors, all listed at once and each naming its case (and files).

:func:`run_cases` applies one function to every pair, in this process or in a process pool,
with a progress bar; a data error in a case is re-raised as :class:`EvaluationError` naming the
case and its files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from workbench._process import guard_pool_worker
from workbench._validate import check_positive_int
from workbench.data.manifest import Manifest, load_manifest, read_manifest
from workbench.data.nifti import grid_mismatch, read_header

__all__ = [
    "CaseMatchError",
    "CasePair",
    "EvaluationError",
    "match_cases",
    "reference_manifest",
    "run_cases",
    "select_split",
]

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_SEG_SUFFIX = "-seg"
_MANIFEST_SUFFIXES = (".yaml", ".yml")

R = TypeVar("R")


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


def reference_manifest(reference: Manifest | str | os.PathLike[str]) -> Manifest:
    """A reference manifest as given, or loaded from its path without reading every label up
    front (the case runner checks label values) — its generator, if any, recreates missing files."""
    if isinstance(reference, Manifest):
        return reference
    return load_manifest(reference, validate=False)


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


def run_cases(
    pairs: Sequence[CasePair],
    work: Callable[[CasePair], R],
    *,
    workers: int = 1,
    progress: bool = True,
    desc: str = "evaluating",
) -> list[R]:
    """``work(pair)`` for every pair, in pair order; in this process when ``workers`` is 1, else in a pool.

    Parameters
    ----------
    pairs : sequence of CasePair
    work : callable
        A module-level function (it is pickled to the pool's processes) of one pair.
    workers : int, default 1
        Processes; at most one per pair.
    progress : bool, default True
        A tqdm bar over the cases (only when stderr is a terminal).
    desc : str
        The bar's label.

    Returns
    -------
    list
        The results in the order of ``pairs``.

    Raises
    ------
    ValueError
        If ``workers`` is not a positive int.
    EvaluationError
        A case's data is bad (``OSError`` or ``ValueError`` in ``work``); names the case and its
        files. The remaining cases are cancelled. Other exceptions (bugs) propagate with a note
        naming the case.
    """
    workers = check_positive_int("workers", workers)
    results: dict[str, R] = {}
    with tqdm(total=len(pairs), desc=desc, unit="case", disable=None if progress else True) as bar:
        if workers == 1:
            for pair in pairs:
                results[pair.case_id] = _in_context(pair, lambda pair=pair: work(pair))
                bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(pairs)), initializer=guard_pool_worker)
            try:
                futures = {pool.submit(work, pair): pair for pair in pairs}
                for future in as_completed(futures):
                    pair = futures[future]
                    results[pair.case_id] = _in_context(pair, future.result)
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return [results[pair.case_id] for pair in pairs]


def _in_context(pair: CasePair, call: Callable[[], R]) -> R:
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
