"""Experiment subcommands: ``demo`` (the main job), ``sweep`` (papermill over a grid) and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_demo", "add_report", "add_sweep", "run_demo", "run_report", "run_sweep"]


def add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job: compare four losses on the built-in phantoms, from cohort to report",
        description="Summarise the dataset (the built-in phantom cohort, generated into the cache on first use), "
        "then train and evaluate DC+CE, blob, CC and IWL-blob (alpha = beta = 1, a tiny DynUNet, CPU) through "
        "notebooks/02_train_evaluate.ipynb, one papermill run each, and write the sweep's report.html. "
        "An earlier demo folder is never overwritten.",
    )
    demo.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: runs/demo, runs/demo-2, ...)")
    demo.add_argument("--quick", action="store_true", help="seconds-long version on a 6-case 32³ cohort")
    demo.add_argument("--workers", type=int, default=2, help="runs at a time (default 2)")
    demo.add_argument("--manifest", type=Path, default=None, help="a dataset manifest instead of the phantoms")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Summary (unless ``--quick``), the four-loss sweep and its report, a results table, an audit command."""
    import pandas as pd

    from workbench.cli.data import run_summary
    from workbench.experiments import demo
    from workbench.experiments.report import collect_results
    from workbench.viz.selection import most_missed

    if not args.quick:
        run_summary(args)
        print()
    print(f"Training and evaluating {', '.join(demo.DEMO_LOSSES)} ({'quick' if args.quick else 'CPU-sized'}) ...")
    try:
        sweep_dir, report = demo.run_demo(args.out, quick=args.quick, workers=args.workers, manifest=args.manifest)
    except RuntimeError as error:  # failed runs: their run.json holds the tracebacks; rerunning resumes
        print(f"workbench demo: error: {error} Run the same command again to redo only those.", file=sys.stderr)
        return 1
    results = collect_results(sweep_dir)
    overall = results[(results["region"] == "mean") & (results["stratum"] == "all")]
    dice = overall[overall["metric"] == "dice"].groupby("loss")["value"].mean()
    pq = overall[(overall["metric"] == "pq") & (overall["threshold"] == 0.5)].groupby("loss")["value"].mean()
    table = pd.DataFrame({"dice (mean region)": dice, "pq@0.5 (mean region)": pq}).reindex(list(demo.DEMO_LOSSES))
    print()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    print(f"report: {report}")
    print(f"runs:   {sweep_dir} (per case and per lesion tables in each run folder)")
    audit_run, audit_case = most_missed(sweep_dir)
    if audit_run is not None:
        print(f"audit:  workbench audit {audit_run} --case {audit_case}    (napari; the case with the most missed lesions)")
    return 0


def add_sweep(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a notebook over a parameter grid (papermill), resumable",
        description="Execute the sweep file's notebook once per grid point into <out>/<name>/<run-id>/ "
        "(the executed notebook kept as notebook.ipynb). Runs whose run.json says complete are skipped, so a "
        "killed sweep started again redoes only the unfinished runs; a failed run records its error and "
        "traceback in its run.json and the others go on. Format: see workbench.experiments.sweep.",
    )
    sweep.add_argument("sweep_file", type=Path, help="sweep file (.yaml)")
    sweep.add_argument("--workers", type=int, default=1, help="runs at a time (default 1)")
    sweep.add_argument(
        "--dask", default=None, metavar="ADDRESS",
        help="run on dask.distributed: 'local' (a LocalCluster of --workers workers) or a scheduler address "
        "such as tcp://scheduler:8786; default: a local process pool",
    )
    sweep.add_argument("-o", "--out", type=Path, default=None, help="folder holding the sweep folder (overrides `out`)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep; exit status 1 if a run failed (each named with its run.json)."""
    from workbench import experiments

    overrides = {} if args.out is None else {"out": str(args.out.resolve())}
    spec = experiments.load_sweep(args.sweep_file, **overrides)
    result = experiments.run_sweep(spec, workers=args.workers, dask=args.dask, progress=not args.no_progress)
    done = len(result.status) - len(result.failed)
    print(f"sweep {spec.name}: {done} of {len(result.status)} runs complete ({len(result.skipped)} already were); "
          f"folder {result.sweep_dir}")
    for run in result.failed:
        print(f"failed: {run} (see {result.sweep_dir / run / 'run.json'})")
    return 1 if result.failed else 0


def add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="aggregate a sweep's runs into results.parquet and report.html",
        description="Join every complete run's per_case.parquet with its grid values into SWEEP_DIR/results.parquet "
        "and write SWEEP_DIR/report.html (run statuses, Dice/PQ/RQ tables per configuration, plotly figures; "
        "self-contained), both atomically.",
    )
    report.add_argument("sweep_dir", type=Path, help="a sweep folder (holds sweep.json)")
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from workbench.experiments import write_report

    results, report = write_report(args.sweep_dir)
    print(f"wrote {results} and {report}")
    return 0
