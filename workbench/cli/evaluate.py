"""``workbench evaluate``: all metrics per region and threshold, or (``--preset``) a challenge's scoring."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from workbench._validate import DEFAULT_CONNECTIVITY, DEFAULT_THRESHOLDS
from workbench.cli._options import FORMATS_DOC, add_manifest_option

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_evaluate", "run_evaluate"]

# `workbench evaluate`'s defaults, which `--preset` replaces (so it can tell whether they were given)
_THRESHOLDS = DEFAULT_THRESHOLDS
_CONNECTIVITY = DEFAULT_CONNECTIVITY

_KEY_METRICS = ("dice", "pq", "f1", "cc_dice", "surface_dice", "hd95")


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate predicted label maps against a reference manifest",
        description="Match predictions to the reference cases by case id, check every pair's grid, evaluate the "
        "cases in parallel processes (all metrics per region and matching threshold) and write per-case, "
        "per-lesion and summary tables (Parquet and CSV) plus run.json into OUT; print the summary. "
        "Predictions: a folder of <case_id>.nii.gz files (<case_id>-seg.nii.gz and .nii also accepted) or a "
        "manifest whose cases' label files are the predictions. Inputs and the tables' columns: "
        f"{FORMATS_DOC}#prediction-folder, {FORMATS_DOC}#evaluate-outputs.",
    )
    evaluate.add_argument("--pred", type=Path, required=True, help="prediction folder or manifest (.yaml)")
    add_manifest_option(evaluate, "the reference cases' manifest", required=True)
    evaluate.add_argument("-o", "--out", type=Path, required=True, help="output folder for the tables and run.json")
    evaluate.add_argument(
        "--schema", default=None,
        help="label schema (a unique prefix works, e.g. brats_mets); default: the reference manifest's",
    )
    evaluate.add_argument("--regions", nargs="+", default=None, help="regions to evaluate; default all of the schema's")
    evaluate.add_argument("--split", default=None, help="only the reference cases of this split (e.g. val); default all")
    evaluate.add_argument(
        "--thresholds", type=float, nargs="+", default=list(_THRESHOLDS), help="pair-Dice matching thresholds"
    )
    evaluate.add_argument(
        "--connectivity", type=int, default=_CONNECTIVITY, help=f"6/18/26 (3D), 4/8 (2D); default {_CONNECTIVITY}"
    )
    evaluate.add_argument(
        "--workers", type=int, default=_available_cores(), help="worker processes (default: the usable CPU cores)"
    )
    evaluate.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier result in OUT (its tables, of either kind, are removed first); without it a "
        "non-empty OUT is refused",
    )
    evaluate.add_argument(
        "--preset", default=None,
        help="score as a challenge does instead (brats_mets_2025, brats_gli_2025, brats_ped_2025, brats_menrt_2025, "
        "brats_menpre_2025, brats_goat_2025): the official brats-evaluation rules and leaderboard columns; writes "
        "scores, leaderboard.csv, summary and lesions",
    )
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the summary's key metrics; with ``--preset``, :func:`_run_preset` instead."""
    if args.preset is not None:
        return _run_preset(args)
    import pandas as pd

    from workbench.runs.evaluate import run_evaluation

    result = run_evaluation(
        args.pred, args.manifest, args.out, schema=args.schema, regions=args.regions, thresholds=args.thresholds,
        connectivity=args.connectivity, workers=args.workers, split=args.split, overwrite=args.overwrite,
    )
    print(f"evaluated {len(result.seconds)} cases; tables and run.json in {args.out}")
    print()
    print("Mean over cases, all lesion sizes (pq@t: panoptic quality at matching threshold t; hd95 in mm):")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(_summary_view(result.summary).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def _run_preset(args: argparse.Namespace) -> int:
    """Score as the ``--preset`` challenge does; the options it fixes must keep their defaults."""
    import pandas as pd

    from workbench.metrics.challenge import get_preset
    from workbench.runs.scoring import run_scoring

    fixed = [name for name, value, default in (
        ("--schema", args.schema, None), ("--regions", args.regions, None),
        ("--thresholds", args.thresholds, list(_THRESHOLDS)), ("--connectivity", args.connectivity, _CONNECTIVITY),
    ) if value != default]
    if fixed:
        raise ValueError(f"--preset fixes the regions, matching and connectivity; drop {', '.join(fixed)}.")
    preset = get_preset(args.preset)
    result = run_scoring(
        args.pred, args.manifest, args.out, preset=preset, split=args.split, workers=args.workers, overwrite=args.overwrite
    )
    print(f"scored {len(result.seconds)} cases with {preset.name} (brats-evaluation config {preset.config!r}, "
          f"{preset.parser} parser); tables, leaderboard.csv and run.json in {args.out}")
    print()
    keys = ["lesionwise_dsc_mean", "lesionwise_nsd_mean", "lesionwise_hd95_mean", "global_dsc", "all_instance_f1"]
    if preset.parser == "mets":
        keys += ["small_instance_f1", "large_instance_f1"]
    view = result.summary[result.summary["metric"].isin(keys)].pivot(index="region", columns="metric", values="mean")
    print("Mean over cases (lesion-wise: official penalties included; hd95 in mm):")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(view.reindex(index=list(preset.groups), columns=keys).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def _summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Regions × key metrics (mean over cases), all lesion sizes; one column per threshold for
    metrics that depend on the matching threshold (``pq@0.5``)."""
    import pandas as pd

    rows = summary[summary["metric"].isin(_KEY_METRICS) & summary["stratum"].isin(("all",))]
    column = rows["metric"] + rows["threshold"].map(lambda t: "" if pd.isna(t) else f"@{t:g}")
    view = rows.assign(column=column).pivot(index="region", columns="column", values="mean")
    order = sorted(view.columns, key=lambda c: (_KEY_METRICS.index(c.split("@")[0]), c))
    regions = list(dict.fromkeys(rows["region"]))
    return view.loc[regions, order].rename_axis(index=None, columns=None)


def _available_cores() -> int:
    """CPU cores this process may run on (respects ``taskset``), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
