"""Train → predict → evaluate one loss into one folder: the run a sweep executes (notebook 02).

:func:`train_and_evaluate` checks every parameter before anything is written, splits the cases
(:func:`held_out_split`), trains with :func:`workbench.training.train` (resuming when the folder
already holds a checkpoint), evaluates the held-out predictions
(:func:`workbench.runs.evaluate.evaluate_cohort`), matches the stored probabilities' lesion
candidates with the reference lesions (:func:`detection_rows`), and writes into ``out_dir``:

=============================  =====================================================================
file                           content
=============================  =====================================================================
``train/``                     the training run folder (config, its own ``run.json``,
                               ``metrics.parquet``, checkpoint, predictions and probabilities)
``per_case.parquet`` / .csv    ``case_id, region, metric, threshold, stratum, value`` per held-out case
``lesions.parquet`` / .csv     one row per reference or predicted lesion
``summary.parquet`` / .csv     ``per_case`` aggregated over cases
``detection_rows.parquet``     lesion candidates of the stored probabilities against the reference
                               lesions, per region (operating points)
``run.json``                   :class:`~workbench.runs.record.RunRecord`: ``complete`` vouches for
                               every output
=============================  =====================================================================
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from workbench._validate import check_finite, check_positive_int
from workbench.data.cohort import default_manifest_path
from workbench.data.manifest import Manifest, load_case, load_manifest
from workbench.experiments.detection import DETECTION_ROWS
from workbench.losses import LOSS_NAMES, get_loss_spec
from workbench.metrics.detection_curves import region_rows
from workbench.runs.evaluate import CohortEvaluation, evaluate_cohort
from workbench.runs.record import RunRecord
from workbench.runs.tables import write_table, write_tables
from workbench.training import ConfigError, RunResult, TrainConfig, train, validate
from workbench.training.probabilities import PROBABILITY_SUFFIX, load_probabilities

__all__ = [
    "PipelineResult", "check_parameters", "detection_rows", "held_out_split", "train_and_evaluate", "validation_cases",
]

_VERSIONED_PACKAGES = ("workbench", "torch", "monai", "numpy", "pandas", "pyarrow", "papermill")


class PipelineResult(NamedTuple):
    """What :func:`train_and_evaluate` returns.

    Attributes
    ----------
    out_dir : Path
    run : RunResult
        The training run (``out_dir/train``).
    evaluation : CohortEvaluation
        The held-out cases' tables.
    detection_rows : DataFrame
        :func:`detection_rows` of the held-out cases.
    train_cases, held_out_cases : tuple of str
    train_seconds : float
    """

    out_dir: Path
    run: RunResult
    evaluation: CohortEvaluation
    detection_rows: pd.DataFrame
    train_cases: tuple[str, ...]
    held_out_cases: tuple[str, ...]
    train_seconds: float


def train_and_evaluate(
    out_dir: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    loss: str = "blob",
    alpha: float = 1.0,
    beta: float = 1.0,
    mode: str = "sigmoid",
    seed: int = 0,
    fold: int = 0,
    n_folds: int = 0,
    epochs: int = 12,
    steps_per_epoch: int = 30,
    val_every: int = 1,
    patch_size: Sequence[int] = (48, 48, 48),
    filters: Sequence[int] = (8, 16, 32),
    batch_size: int = 2,
    optimizer: str = "adamw",
    learning_rate: float = 0.01,
    sw_overlap: float = 0.25,
    device: str = "auto",
    workers: int = 0,
    eval_workers: int = 1,
    progress: bool = False,
) -> PipelineResult:
    """Train one loss, predict and evaluate its held-out cases; write ``out_dir`` (module docstring).

    Parameters
    ----------
    out_dir : str or PathLike
        Created after every parameter passed its check.
    manifest : str or PathLike, optional
        Dataset manifest; None: the built-in phantom cohort.
    loss : str
        A :data:`workbench.losses.LOSS_NAMES` entry.
    alpha, beta : float
        Weights of the global DC+CE and of the instance term; given to the loss only when it has
        an instance term.
    mode : {"sigmoid", "softmax"}
    seed : int
    fold, n_folds : int
        ``n_folds`` 0: the manifest's train / val split; ≥ 2: fold ``fold`` of a round-robin
        k-fold over the train + val cases (:func:`held_out_split`).
    epochs, steps_per_epoch, val_every, patch_size, filters, batch_size, optimizer, learning_rate, sw_overlap, device, workers, progress
        Fields of :class:`~workbench.training.TrainConfig`; the defaults are the demo's CPU recipe
        (:data:`workbench.experiments.demo.RECIPE`; its measurements in benchmarks/RESULTS.md).
    eval_workers : int
        Processes evaluating the held-out cases.

    Returns
    -------
    PipelineResult

    Raises
    ------
    ValueError
        A parameter is invalid; the message starts with ``Parameter `name```.
    """
    parameters = {
        "manifest": manifest, "loss": loss, "alpha": alpha, "beta": beta, "mode": mode, "seed": seed, "fold": fold,
        "n_folds": n_folds, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "val_every": val_every,
        "patch_size": patch_size, "filters": filters, "batch_size": batch_size, "optimizer": optimizer,
        "learning_rate": learning_rate, "sw_overlap": sw_overlap, "device": device, "workers": workers,
        "eval_workers": eval_workers, "progress": progress,
    }
    config, data, train_ids, held_out = check_parameters(out_dir, **parameters)
    out = Path(out_dir)
    parameters = _as_recorded(parameters, out_dir)
    with RunRecord(
        out, parameters=parameters, packages=_VERSIONED_PACKAGES, manifest=config.manifest,
        train_cases=list(train_ids), held_out_cases=list(held_out),
    ) as record:
        tick = time.perf_counter()
        run = train(config, resume=(Path(config.out_dir) / "checkpoints" / "last.pt").is_file())
        train_seconds = time.perf_counter() - tick
        evaluation, rows, outputs = _evaluate_held_out(out, run, data, held_out, parameters)
        record.finish(train_seconds=train_seconds, outputs=outputs)
    return PipelineResult(out, run, evaluation, rows, tuple(train_ids), tuple(held_out), train_seconds)


def _as_recorded(parameters: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked parameters as run.json records them: paths as text, numbers as floats, lists."""
    manifest = parameters["manifest"]
    return {
        **parameters, "manifest": None if manifest is None else str(manifest), "out_dir": str(out_dir),
        **{name: float(parameters[name]) for name in ("alpha", "beta", "learning_rate", "sw_overlap")},
        **{name: list(parameters[name]) for name in ("patch_size", "filters")},
    }


def _evaluate_held_out(
    out: Path, run: RunResult, data: Manifest, held_out: Sequence[str], parameters: dict[str, Any]
) -> tuple[CohortEvaluation, pd.DataFrame, list[str]]:
    """Evaluate the run's held-out predictions and store their lesion candidates in ``out``.

    Returns the evaluation, the detection rows and the names of the files written.
    """
    predictions = run.run_dir / "predictions"
    reference = dataclasses.replace(data, cases=tuple(data.case(cid) for cid in held_out))
    evaluation = evaluate_cohort(
        predictions, reference, workers=parameters["eval_workers"], progress=parameters["progress"]
    )
    tables = write_tables(out, evaluation.tables(), attrs={"parameters": parameters, "metrics": evaluation.config})
    rows = detection_rows(predictions, data, held_out, mode=parameters["mode"])
    write_table(out / DETECTION_ROWS, rows)
    return evaluation, rows, [str(p.relative_to(out)) for p in tables] + [DETECTION_ROWS, "train/"]


def check_parameters(
    out_dir: str | os.PathLike[str], *, manifest: str | os.PathLike[str] | None, loss: str, alpha: float,
    beta: float, fold: int, n_folds: int, eval_workers: int, **fields: Any,
) -> tuple[TrainConfig, Manifest, list[str], list[str]]:
    """Check :func:`train_and_evaluate`'s parameters; load the manifest and split its cases.

    ``fields`` are the parameters that are :class:`~workbench.training.TrainConfig` fields of the
    same name; they are checked by :func:`workbench.training.validate`.

    Returns
    -------
    config : TrainConfig
        Training into ``out_dir/train`` on the training cases, validating on the held-out ones.
    manifest : Manifest
    train_ids, held_out_ids : list of str

    Raises
    ------
    ValueError
        ``Parameter `name`: ...`` naming the first invalid parameter.
    """
    alpha = _parameter(check_finite, "alpha", alpha, minimum=0.0)
    beta = _parameter(check_finite, "beta", beta, minimum=0.0)
    _parameter(check_positive_int, "eval_workers", eval_workers)
    _parameter(check_positive_int, "n_folds", n_folds, minimum=0)
    _parameter(check_positive_int, "fold", fold, minimum=0)
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ValueError(f"Parameter `out_dir`: expected a non-empty path, but got {out_dir!r}.")
    if manifest is not None and not (isinstance(manifest, (str, os.PathLike)) and Path(manifest).is_file()):
        raise ValueError(f"Parameter `manifest`: expected None or the path of an existing manifest file, but got {manifest!r}.")
    manifest_path = default_manifest_path() if manifest is None else Path(manifest)
    data = load_manifest(manifest_path)
    try:
        train_ids, held_out = held_out_split(data, n_folds, fold)
    except ValueError as error:
        raise ValueError(f"Parameter `n_folds` / `fold`: {error}") from None
    has_instance_term = loss in LOSS_NAMES and get_loss_spec(loss).instance_term
    document = {
        "out_dir": str(Path(out_dir) / "train"), "manifest": str(manifest_path), "train_cases": train_ids,
        "val_cases": validation_cases(data, n_folds, held_out), "predict_cases": held_out, "loss": loss,
        "loss_options": {"alpha": alpha, "beta": beta} if has_instance_term else {}, **fields,
    }
    try:
        config = validate(document)
    except ConfigError as error:
        raise ValueError(f"Parameter `{error.field}`: {error}") from None
    return config, data, train_ids, held_out


def held_out_split(manifest: Manifest, n_folds: int, fold: int) -> tuple[list[str], list[str]]:
    """Training and held-out case ids.

    Parameters
    ----------
    manifest : Manifest
    n_folds : int
        0: the manifest's ``train`` split against its ``test`` split — or, when it has no labelled
        ``test`` case, its ``val`` split. ≥ 2: a round-robin k-fold over the ``train`` + ``val``
        cases in manifest order; fold ``fold`` is held out.
    fold : int
        In ``[0, n_folds - 1]`` (0 when ``n_folds`` is 0).

    Returns
    -------
    train_ids, held_out_ids : list of str

    Raises
    ------
    ValueError
        ``n_folds`` is 1 or more than the train + val cases, or ``fold`` is out of range.

    Examples
    --------
    >>> from workbench.data.manifest import CaseEntry
    >>> from workbench.labels import BINARY
    >>> cases = [CaseEntry(id=f"c{i}", images={"t1": f"c{i}.nii.gz"}, split="train") for i in range(5)]
    >>> held_out_split(Manifest(name="m", schema=BINARY, modalities=("t1",), cases=cases, root="."), 2, 1)
    (['c0', 'c2', 'c4'], ['c1', 'c3'])
    """
    if n_folds == 1:
        raise ValueError(f"Expected `n_folds` to be 0 (the manifest's split) or at least 2, but got {n_folds}.")
    if fold >= max(n_folds, 1):
        raise ValueError(f"Expected `fold` to be an integer in [0, {max(n_folds, 1) - 1}] (n_folds = {n_folds}), but got {fold}.")
    if n_folds == 0:
        held_out = "test" if any(case.split == "test" and case.label is not None for case in manifest.cases) else "val"
        return [case.id for case in manifest.split("train")], [case.id for case in manifest.split(held_out) if case.label is not None]
    pool = [case.id for case in manifest.cases if case.split in ("train", "val")]
    if len(pool) < n_folds:
        raise ValueError(f"Expected `n_folds` to be at most the {len(pool)} train + val cases, but got {n_folds}.")
    held_out = pool[fold::n_folds]
    return [cid for cid in pool if cid not in held_out], held_out


def validation_cases(manifest: Manifest, n_folds: int, held_out: Sequence[str]) -> list[str]:
    """The cases a run validates on every epoch (its training curves): the manifest's labelled ``val``
    cases when they are not held out (``n_folds`` 0 with a ``test`` split), else the held-out cases.

    Validation never selects a model here (every loss trains the same steps), so validating on
    the held-out cases, where no other cases are free, only draws curves.
    """
    if n_folds == 0:
        val = [case.id for case in manifest.cases if case.split == "val" and case.label is not None]
        if val and not set(val) & set(held_out):
            return val
    return list(held_out)


def detection_rows(
    predictions: str | os.PathLike[str], manifest: Manifest, case_ids: Sequence[str], *, mode: str
) -> pd.DataFrame:
    """Lesion candidates of each case's stored probabilities against its reference lesions.

    Parameters
    ----------
    predictions : str or PathLike
        A training run's ``predictions/`` folder, holding ``<case_id>.probabilities.npz``.
    manifest : Manifest
        Gives each case's reference label map, spacing and the schema.
    case_ids : sequence of str
    mode : {"softmax", "sigmoid"}

    Returns
    -------
    DataFrame
        :func:`workbench.metrics.detection_curves.region_rows` of every case, concatenated.
    """
    parts = []
    for case_id in case_ids:
        probabilities, channels = load_probabilities(Path(predictions) / f"{case_id}{PROBABILITY_SUFFIX}")
        case = load_case(manifest, case_id)
        parts.append(region_rows(
            probabilities, channels, case.label, schema=manifest.schema, mode=mode, case_id=case_id, spacing=case.spacing,
        ))
    return pd.concat(parts, ignore_index=True)


def _parameter(check: Callable[..., Any], name: str, *args: Any, **options: Any) -> Any:
    """``check(...)``, its ValueError prefixed with ``Parameter `name`: ``."""
    try:
        return check(name, *args, **options)
    except ValueError as error:
        raise ValueError(f"Parameter `{name}`: {error}") from None
