"""Experiment subcommands: ``demo`` (the main job), ``sweep`` (papermill over a grid) and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.cli._options import FORMATS_DOC, add_manifest_option

__all__ = ["add_demo", "add_report", "add_sweep", "run_demo", "run_report", "run_sweep"]


def add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job: compare losses on the built-in phantoms, from cohort to report (~9 min on 2 cores)",
        description="Summarise the dataset (the built-in phantom cohort: 52 cases of 64×80×64 voxels, generated into "
        "the cache on first use, under a minute), then train DC+CE, blob, CC and IWL-blob (alpha = beta = 1) with a small 3D "
        "DynUNet on the CPU (420 steps each, ~4 min per run with two runs sharing 2 cores), predict and "
        "evaluate the 24 held-out test cases, one papermill run of notebooks/02_train_evaluate.ipynb each, and write "
        "the report: OUT/losses/report.html (default OUT: runs/demo), findings first. The whole job takes about 9 "
        "minutes on 2 cores (benchmarks/RESULTS.md); --quick about a minute. An earlier demo folder is never "
        "overwritten; an explicit --out that holds an unfinished demo is resumed.",
    )
    demo.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: runs/demo, runs/demo-2, ...)")
    demo.add_argument("--quick", action="store_true", help="a minute-long run on a 6-case 32³ cohort (untrained models)")
    demo.add_argument("--losses", nargs="+", default=None, metavar="LOSS",
                      help="losses to compare (default: dc_ce blob cc iwl_blob; dc_ce is the baseline of the findings)")
    demo.add_argument("--seeds", type=int, default=1, help="training seeds per loss (default 1; the report shows their spread)")
    demo.add_argument("--epochs", type=int, default=None, help="epochs of 30 steps (default 14)")
    demo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device (default auto)")
    demo.add_argument("--workers", type=int, default=2, help="runs at a time, sharing the cores (default 2)")
    add_manifest_option(demo, "a dataset to compare the losses on instead of the phantoms")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Summary (unless ``--quick``), the four-loss sweep and its report, a results table, an audit command."""
    import pandas as pd

    from workbench.cli.data import run_summary
    from workbench.experiments import demo
    from workbench.experiments.report import collect_results
    from workbench.viz.selection import representative_run

    if not args.quick:
        run_summary(args)
        print()
    losses = tuple(args.losses or demo.DEMO_LOSSES)
    print(f"Training and evaluating {', '.join(losses)} × {args.seeds} seed(s) ({'quick' if args.quick else 'CPU recipe'}) ...")
    try:
        sweep_dir, report = demo.run_demo(
            args.out, quick=args.quick, workers=args.workers, manifest=args.manifest, losses=losses, seeds=args.seeds,
            epochs=args.epochs, device=args.device,
        )
    except ValueError as error:
        print(f"workbench demo: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # failed runs: their run.json holds the tracebacks; rerunning resumes
        print(f"workbench demo: error: {error} Run the same command again to redo only those.", file=sys.stderr)
        return 1
    results = collect_results(sweep_dir)
    overall = results[(results["region"] == "mean") & (results["stratum"] == "all")]
    dice = overall[overall["metric"] == "dice"].groupby("loss")["value"].mean()
    pq = overall[(overall["metric"] == "pq") & (overall["threshold"] == 0.5)].groupby("loss")["value"].mean()
    table = pd.DataFrame({"dice (mean region)": dice, "pq@0.5 (mean region)": pq}).reindex(list(losses))
    print()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    print(f"report: {report}")
    print(f"runs:   {sweep_dir} (per case and per lesion tables in each run folder)")
    audit_run, audit_case = representative_run(sweep_dir)
    if audit_run is not None:
        print(f"audit:  workbench audit {audit_run} --case {audit_case}")
        print("        (napari: the instance loss with the best held-out Dice, at its case with the most missed lesions)")
    return 0


def add_sweep(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a notebook over a parameter grid (papermill), resumable",
        description="Execute the sweep file's notebook once per grid point into <out>/<name>/<run-id>/ "
        "(the executed notebook kept as notebook.ipynb). Runs whose run.json says complete are skipped, so a "
        "killed sweep started again redoes only the unfinished runs; a failed run records its error and "
        f"traceback in its run.json and the others go on. Sweep file: {FORMATS_DOC}#sweep-file; the folder it "
        f"writes: {FORMATS_DOC}#sweep-folder.",
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
        "and write SWEEP_DIR/report.html (findings first: not-converged banner, paired differences against DC+CE "
        "with bootstrap intervals and verdicts; then curves, detection, galleries and tables; self-contained), both "
        f"atomically ({FORMATS_DOC}#sweep-folder).",
    )
    report.add_argument("sweep_dir", type=Path, help="a sweep folder (holds sweep.json)")
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from workbench.experiments import write_report

    results, report = write_report(args.sweep_dir)
    print(f"wrote {results} and {report}")
    return 0
