"""What to audit: the run and case with the most missed lesions, and a case's lesions in audit order.

Pure functions on run folders and tables (no napari, no Qt), shared by ``workbench demo`` (which
prints the audit command for the most-missed case of its sweep), ``workbench audit`` and
``notebooks/04_audit``. A run folder's ``lesions.parquet`` is the per-lesion table that
``workbench evaluate`` and the ``02_train_evaluate`` notebook write (one row per lesion, region
and matching threshold; ``status`` is TP, FP or FN).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from workbench.viz.sources import AuditSource

__all__ = [
    "STATUS_ORDER",
    "check_parameters",
    "miss_counts",
    "most_missed",
    "most_missed_case",
    "ordered_lesions",
    "region_counts",
    "representative_run",
    "status_counts",
]

STATUS_ORDER = ("FN", "FP", "TP")
"""The order an audit walks the lesions in: misses, then false positives, then detections."""

PathLike = str | os.PathLike[str]


def miss_counts(run_dirs: Iterable[PathLike], *, threshold: float = 0.5) -> pd.DataFrame:
    """Missed (FN) lesions per run and case, at one matching threshold.

    Parameters
    ----------
    run_dirs : iterable of str or PathLike
        Run folders; those without a ``lesions.parquet`` are skipped.
    threshold : float
        The Dice threshold of the lesion matching whose rows are counted.

    Returns
    -------
    DataFrame
        Columns ``run`` (Path), ``case_id`` (str), ``misses`` (int): one row per case of each
        run's lesion table (cases without misses included, with 0), runs in the given order and
        cases sorted within a run.
    """
    rows = []
    for run_dir in map(Path, run_dirs):
        table = run_dir / "lesions.parquet"
        if not table.is_file():
            continue
        lesions = pd.read_parquet(table, columns=["case_id", "status", "threshold"])
        misses = lesions[(lesions["status"] == "FN") & (lesions["threshold"] == threshold)].groupby("case_id").size()
        for case_id in sorted(lesions["case_id"].unique()):
            rows.append((run_dir, str(case_id), int(misses.get(case_id, 0))))
    return pd.DataFrame(rows, columns=["run", "case_id", "misses"]).astype({"misses": int})


def most_missed(sweep_dir: PathLike, *, threshold: float = 0.5) -> tuple[Path | None, str | None]:
    """The run folder and case with the most FN lesions among a sweep's runs (``sweep_dir/*/lesions.parquet``).

    Ties go to the first run and case in sorted order; with no misses anywhere, that is the
    first case of the first run. ``(None, None)`` when no run has a lesion table.
    """
    runs = sorted(table.parent for table in Path(sweep_dir).glob("*/lesions.parquet"))
    counts = miss_counts(runs, threshold=threshold)
    if counts.empty:
        return None, None
    best = counts.loc[counts["misses"].idxmax()]
    return best["run"], best["case_id"]


def representative_run(sweep_dir: PathLike, *, threshold: float = 0.5) -> tuple[Path | None, str | None]:
    """What the demo asks a researcher to audit: the best-trained instance-loss run and a case with a miss.

    The run is the complete one, among those whose loss has an instance term, with the highest
    held-out foreground-mean Dice (``per_case.parquet``, region ``mean``); without such a run,
    any complete run. The case is its case with the most missed lesions
    (:func:`most_missed_case`), or its first case when it missed none. ``(None, None)`` when no
    run has tables.
    """
    from workbench.losses import get_loss_spec
    from workbench.runs.record import read_run

    scored = []
    for table in sorted(Path(sweep_dir).glob("*/per_case.parquet")):
        run = read_run(table.parent)
        if run.get("status") != "complete":
            continue
        per_case = pd.read_parquet(table, columns=["region", "metric", "stratum", "value"])
        dice = per_case[(per_case["region"] == "mean") & (per_case["metric"] == "dice") & (per_case["stratum"] == "all")]
        loss = run.get("parameters", {}).get("loss")
        instance = loss is not None and _has_instance_term(loss, get_loss_spec)
        scored.append((instance, float(dice["value"].mean()) if len(dice) else -1.0, table.parent))
    if not scored:
        return None, None
    _, _, best = max(scored, key=lambda item: (item[0], item[1]))
    case = most_missed_case(best, threshold=threshold)
    if case is None:
        counts = miss_counts([best], threshold=threshold)
        case = counts["case_id"].iloc[0] if len(counts) else None
    return best, case


def _has_instance_term(loss: str, get_loss_spec: Any) -> bool:
    try:
        return bool(get_loss_spec(loss).instance_term)
    except ValueError:
        return False


def most_missed_case(run_dir: PathLike, *, threshold: float = 0.5) -> str | None:
    """The case of one run with the most FN lesions in ``run_dir/lesions.parquet`` (ties: first in sorted order).

    None when the run has no lesion table or nothing was missed; the audit then shows the run's
    first predicted case (:func:`~workbench.viz.sources.run_source`).
    """
    counts = miss_counts([run_dir], threshold=threshold)
    counts = counts[counts["misses"] > 0]
    if counts.empty:
        return None
    return counts.loc[counts["misses"].idxmax(), "case_id"]


def ordered_lesions(source: AuditSource, *, threshold: float = 0.5) -> pd.DataFrame:
    """The lesions of an audit source's case in audit order: FN, then FP, then TP, each largest first.

    One row per lesion (:func:`~workbench.viz.layers.lesion_features`, without its ``label``
    column): ``region``, ``status``, ``id``, ``size_mm3``, ``dice``, centroids in voxels.
    """
    from workbench.metrics import lesion_table
    from workbench.viz.layers import lesion_features

    case = source.case
    lesions = lesion_table(source.prediction, case.label, schema=source.schema, spacing=case.spacing,
                           threshold=threshold, connectivity=source.connectivity, case_id=case.id)
    features = lesion_features(lesions, case.label.ndim)
    features["order"] = features["status"].map({status: rank for rank, status in enumerate(STATUS_ORDER)})
    return features.sort_values(["order", "size_mm3"], ascending=[True, False]).drop(columns=["order", "label"])


def status_counts(lesions: pd.DataFrame) -> pd.Series:
    """Lesions per status, in :data:`STATUS_ORDER` (0 where there are none)."""
    return lesions["status"].value_counts().reindex(list(STATUS_ORDER), fill_value=0)


def region_counts(lesions: pd.DataFrame) -> pd.DataFrame:
    """Lesions per region (rows) and status (columns TP, FP, FN)."""
    return lesions.pivot_table(index="region", columns="status", values="id", aggfunc="count", fill_value=0).reindex(
        columns=["TP", "FP", "FN"], fill_value=0
    )


def check_parameters(
    *, run_dir: Any, case_id: Any, threshold: Any, open_viewer: Any, screenshot: Any
) -> None:
    """Check ``notebooks/04_audit``'s parameters as papermill injected them (any type).

    Raises
    ------
    ValueError
        Naming the first bad one: ``Parameter `threshold`: expected a number in (0, 1], but got 2 (int).``
    """
    if not isinstance(run_dir, str) or not Path(run_dir).is_dir():
        _fail("run_dir", "the path of an existing run folder", run_dir)
    if case_id is not None and not isinstance(case_id, str):
        _fail("case_id", "None or a case id", case_id)
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (0 < threshold <= 1)
            or not math.isfinite(threshold)):
        _fail("threshold", "a number in (0, 1]", threshold)
    if not isinstance(open_viewer, bool):
        _fail("open_viewer", "true or false", open_viewer)
    if screenshot is not None and not isinstance(screenshot, str):
        _fail("screenshot", "None or a .png path", screenshot)


def _fail(name: str, expected: str, value: Any) -> None:
    raise ValueError(f"Parameter `{name}`: expected {expected}, but got {value!r} ({type(value).__name__}).")
