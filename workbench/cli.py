"""The ``workbench`` command line: one subcommand per job, each with ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["main"]

# `workbench evaluate`'s defaults, which `--preset` replaces (so it can tell whether they were given)
_THRESHOLDS = (0.1, 0.3, 0.5)
_CONNECTIVITY = 26


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"workbench {args.command}: error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    from workbench import __version__

    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Instance-aware, multi-class segmentation losses on 3D medical images.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    demo.set_defaults(run=_run_demo)

    summary = commands.add_parser(
        "summary",
        help="a dataset's instance statistics per region",
        description="Check every file of a manifest (default: the built-in phantom cohort, generated into the cache "
        "on first use) and print its instance statistics per region (the multi-class paper's Table 1).",
    )
    summary.add_argument("--manifest", type=Path, default=None, help="manifest to summarise (default: the phantoms)")
    summary.set_defaults(run=_run_summary)

    phantoms = commands.add_parser(
        "phantoms",
        help="write a synthetic BraTS-METS-like cohort (NIfTI + manifest)",
        description="Write N phantom cases as NIfTI files and a manifest.yaml into OUT.",
    )
    phantoms.add_argument("n", type=int, help="number of cases")
    phantoms.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    phantoms.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    phantoms.add_argument("--shape", type=int, nargs=3, default=(96, 96, 96), metavar=("Z", "Y", "X"))
    phantoms.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("Z", "Y", "X"), help="mm per voxel")
    phantoms.set_defaults(run=_run_phantoms)

    manifest = commands.add_parser("manifest", help="write a manifest for a dataset folder")
    layouts = manifest.add_subparsers(dest="layout", metavar="LAYOUT", required=True)
    brats = layouts.add_parser(
        "brats-mets",
        help="BraTS-METS 2025 layout",
        description="Scan ROOT/BraTS-MET-XXXXX-XXX/BraTS-MET-XXXXX-XXX-{t1n,t1c,t2w,t2f,seg}.nii.gz and "
        "write a manifest; every file is checked.",
    )
    brats.add_argument("root", type=Path, help="folder holding the case folders")
    brats.add_argument("-o", "--out", type=Path, required=True, help="manifest file to write (.yaml)")
    brats.add_argument("--name", default="brats_mets_2025", help="dataset name")
    brats.add_argument("--split", default=None, help="split name given to every case (e.g. train)")
    brats.add_argument("--no-validate", action="store_true", help="skip reading every file's header")
    brats.set_defaults(run=_run_manifest_brats)

    instances = commands.add_parser(
        "instances",
        help="list the connected components of a label map",
        description="Print one row per connected component of each class or region of a label NIfTI; "
        "optionally write the component and Voronoi-cell maps as NIfTI files.",
    )
    instances.add_argument("label", type=Path, help="label map (.nii.gz)")
    instances.add_argument("--schema", default="brats_mets_2025", help="label schema (default brats_mets_2025)")
    instances.add_argument("--mode", choices=("sigmoid", "softmax"), default="sigmoid", help="regions or classes")
    instances.add_argument("--connectivity", type=int, default=None, help="6/18/26 (3D), 4/8 (2D); default full")
    instances.add_argument("--out", type=Path, default=None, help="folder for <channel>-components/-cells NIfTI files")
    instances.set_defaults(run=_run_instances)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate predicted label maps against a reference manifest",
        description="Match predictions to the reference cases by case id, check every pair's grid, evaluate the "
        "cases in parallel processes (all metrics per region and matching threshold) and write per-case, "
        "per-lesion and summary tables (Parquet and CSV) plus run.json into OUT; print the summary. "
        "Predictions: a folder of <case_id>.nii.gz files (<case_id>-seg.nii.gz and .nii also accepted) or a "
        "manifest whose cases' label files are the predictions.",
    )
    evaluate.add_argument("--pred", type=Path, required=True, help="prediction folder or manifest (.yaml)")
    evaluate.add_argument("--ref", type=Path, required=True, help="reference manifest (.yaml)")
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
        "--preset", default=None,
        help="score as a challenge does instead (brats_mets_2025, brats_gli_2025, brats_ped_2025, brats_menrt_2025, "
        "brats_menpre_2025, brats_goat_2025): the official brats-evaluation rules and leaderboard columns; writes "
        "scores, leaderboard.csv, summary and lesions",
    )
    evaluate.set_defaults(run=_run_evaluate)

    perturb = commands.add_parser(
        "perturb",
        help="write imperfect predictions made from a manifest's labels",
        description="For every labelled case of a manifest, drop, dilate or erode some lesions and add "
        "false-positive blobs; write OUT/<case_id>.nii.gz with the reference affine (input for evaluate --pred).",
    )
    perturb.add_argument("--ref", type=Path, required=True, help="reference manifest (.yaml)")
    perturb.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    perturb.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    perturb.set_defaults(run=_run_perturb)

    train = commands.add_parser(
        "train",
        help="train a 3D U-Net with one of the losses",
        description="Train a patch-based 3D U-Net (MONAI DynUNet, nnU-Net-style defaults) with the loss, data and "
        "schedule of a YAML or JSON config; write config.yaml, run.json, metrics.parquet, checkpoints/last.pt and "
        "predictions/ into the config's out_dir. Fields: see workbench.training.TrainConfig.",
    )
    train.add_argument("--config", type=Path, required=True, help="config file (.yaml, .yml or .json)")
    train.add_argument("--resume", action="store_true", help="continue the run in out_dir from its last checkpoint")
    train.add_argument("-o", "--out", type=Path, default=None, help="run folder (overrides the config's out_dir)")
    train.set_defaults(run=_run_train)

    predict = commands.add_parser(
        "predict",
        help="predict a manifest's cases with a trained run",
        description="Load RUN_DIR/checkpoints/last.pt, run sliding-window inference on every selected case of the "
        "manifest and write OUT/<case_id>.nii.gz label maps with the cases' affines (input for evaluate --pred).",
    )
    predict.add_argument("run_dir", type=Path, help="a run folder written by `workbench train`")
    predict.add_argument("--manifest", type=Path, required=True, help="manifest of the cases (.yaml)")
    predict.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    predict.add_argument("--split", default=None, help="only the cases of this split (default: all)")
    predict.add_argument("--cases", nargs="+", default=None, help="only these case ids")
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if available")
    predict.set_defaults(run=_run_predict)

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
    sweep.set_defaults(run=_run_sweep)

    report = commands.add_parser(
        "report",
        help="aggregate a sweep's runs into results.parquet and report.html",
        description="Join every complete run's per_case.parquet with its grid values into SWEEP_DIR/results.parquet "
        "and write SWEEP_DIR/report.html (run statuses, Dice/PQ/RQ tables per configuration, plotly figures; "
        "self-contained), both atomically.",
    )
    report.add_argument("sweep_dir", type=Path, help="a sweep folder (holds sweep.json)")
    report.set_defaults(run=_run_report)

    audit = commands.add_parser(
        "audit",
        help="open napari on a case: TP/FP/FN lesions, components, Voronoi cells, loss weights",
        description="Open the napari audit view of one case of a run (`workbench audit RUN_DIR --case ID`; RUN_DIR "
        "is a `workbench train` run or a run folder of `workbench sweep` / `demo`) or of plain NIfTI files "
        "(`workbench audit --image T1C.nii.gz [...] --label SEG.nii.gz [--pred PRED.nii.gz]`). A dock widget lists "
        "the lesions, misses first; selecting one moves the view to it; keys n / p step through misses and false "
        "positives. Needs a display (on a headless machine: xvfb-run).",
    )
    audit.add_argument("run_dir", type=Path, nargs="?", default=None, help="a run folder")
    audit.add_argument("--case", default=None, help="case id (default: the run's first predicted case)")
    audit.add_argument("--image", type=Path, nargs="+", default=None, help="image files, one per channel")
    audit.add_argument("--label", type=Path, default=None, help="reference label map (with --image)")
    audit.add_argument("--pred", type=Path, default=None, help="predicted label map (with --image)")
    audit.add_argument("--schema", default="brats_mets_2025", help="label schema of --label/--pred (default brats_mets_2025)")
    audit.add_argument("--loss", default=None, help="show this loss's voxel weights (iwl_blob, iwl_cc, invweight_local, "
                       "invweight_global; default: the run's loss if it weights voxels)")
    audit.add_argument("--threshold", type=float, default=0.5, help="Dice threshold of the lesion matching (default 0.5)")
    audit.add_argument("--screenshot", type=Path, default=None, metavar="PNG",
                       help="go to the first lesion in the table, save a screenshot of the window and exit")
    audit.set_defaults(run=_run_audit)

    lab = commands.add_parser(
        "lab",
        help="JupyterLab on the notebooks, with this environment as their kernel",
        description="Start JupyterLab on the workbench notebooks (the checkout's notebooks/ folder) with this "
        "Python environment as the notebooks' python3 kernel, and print its address (127.0.0.1, with a token). "
        "Kernels start in the current directory, so relative paths in a notebook (runs/...) mean what they mean "
        "on the command line. Ctrl-C stops the server and its kernels.",
    )
    lab.add_argument("--dir", type=Path, default=None, help="notebooks folder (default: the checkout's notebooks/)")
    lab.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(run=_run_lab)

    export = commands.add_parser(
        "export-nnunet",
        help="write a manifest as an nnU-Net v2 raw dataset",
        description="Write MANIFEST as RAW_DIR/DatasetID_NAME (imagesTr/labelsTr, imagesTs/labelsTs for the test "
        "split, dataset.json). Region mode (default) trains the schema's regions with sigmoid outputs, as nnU-Net "
        "trains BraTS (labels WT/TC/ET/RC and regions_class_order); --mode label trains one softmax class per label. "
        "A generated cohort's missing files are created first.",
    )
    export.add_argument("manifest", type=Path, help="a manifest (e.g. data_manifests/phantoms_default.yaml)")
    export.add_argument("raw_dir", type=Path, help="nnU-Net's raw folder (nnUNet_raw)")
    export.add_argument("--id", type=int, required=True, dest="dataset_id", help="dataset id, 1..999 (e.g. 901)")
    export.add_argument("--name", default=None, help="dataset name (default: the manifest's name)")
    export.add_argument("--mode", choices=("region", "label"), default="region", help="region (sigmoid) or label (softmax) training")
    export.add_argument("--test-split", default="test", help="split exported to imagesTs (default test; 'none' for none)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing dataset of this id and name")
    export.set_defaults(run=_run_export_nnunet)

    trainers = commands.add_parser(
        "nnunet-trainers",
        help="list the nnU-Net trainers of the workbench losses and where nnU-Net finds them",
        description="List the nnU-Net v2 trainer classes (one per workbench loss) and print the nnUNet_extTrainer "
        "setting that makes nnUNetv2_train/-predict find them; --dir prints only the folder, for "
        "`export nnUNet_extTrainer=$(workbench nnunet-trainers --dir)`. Needs `pip install \"workbench[nnunet]\"`.",
    )
    trainers.add_argument("--dir", action="store_true", help="print only the folder for nnUNet_extTrainer")
    trainers.set_defaults(run=_run_nnunet_trainers)
    return parser


def _run_export_nnunet(args: argparse.Namespace) -> int:
    from workbench.data.manifest import load_manifest
    from workbench.integrations.nnunet.export import export_dataset

    manifest = load_manifest(args.manifest)
    test_split = None if args.test_split.lower() == "none" else args.test_split
    folder = export_dataset(
        manifest, args.raw_dir, args.dataset_id, name=args.name, mode=args.mode, test_split=test_split,
        overwrite=args.overwrite,
    )
    training = len(list((folder / "labelsTr").glob("*.nii.gz")))
    testing = len({p.name.rsplit("_", 1)[0] for p in (folder / "imagesTs").glob("*.nii.gz")})
    print(f"wrote {folder}: {training} training cases, {testing} test cases")
    print("next (with nnUNet_raw, nnUNet_preprocessed, nnUNet_results set):")
    print(f"  nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 3d_fullres --verify_dataset_integrity")
    print("  export nnUNet_extTrainer=$(workbench nnunet-trainers --dir)")
    print(f"  nnUNetv2_train {args.dataset_id} 3d_fullres 0 -tr nnUNetTrainer_Blob")
    return 0


def _run_nnunet_trainers(args: argparse.Namespace) -> int:
    from workbench.integrations.nnunet import TRAINER_DIR

    if args.dir:
        print(TRAINER_DIR)
        return 0
    try:
        from workbench.integrations.nnunet.trainers import TRAINERS, describe
    except ImportError as error:
        raise ValueError(f"nnU-Net is not installed ({error}); pip install \"workbench[nnunet]\"") from error
    width = max(map(len, TRAINERS))
    for name, trainer in TRAINERS.items():
        print(f"{name:<{width}}  {describe(trainer)}")
    print(f"\nexport nnUNet_extTrainer={TRAINER_DIR}")
    return 0


def _run_summary(args: argparse.Namespace) -> int:
    from workbench.data.cohort import default_manifest_path
    from workbench.data.manifest import load_manifest
    from workbench.data.summary import summarise

    path = args.manifest or default_manifest_path()
    print(f"manifest: {path}")
    manifest = load_manifest(path)
    print(f"dataset {manifest.name!r}: {len(manifest.cases)} cases under {manifest.root}")
    per_case, per_region = summarise(manifest)
    splits = per_case.drop_duplicates("case")["split"].value_counts(dropna=False).to_dict()
    print("splits: " + ", ".join(f"{k}: {v}" for k, v in splits.items()))
    print()
    print("Instances per region (connected components, 26-connectivity):")
    print(per_region.to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
    print()
    print("Components per case:")
    wide = per_case.pivot(index=["case", "split"], columns="region", values="components")
    print(wide[list(manifest.schema.region_names)].to_string())
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from workbench.experiments.demo import DEMO_LOSSES, run_demo
    from workbench.experiments.report import collect_results

    if not args.quick:
        _run_summary(args)
        print()
    print(f"Training and evaluating {', '.join(DEMO_LOSSES)} ({'quick' if args.quick else 'CPU-sized'}) ...")
    try:
        sweep_dir, report = run_demo(args.out, quick=args.quick, workers=args.workers, manifest=args.manifest)
    except RuntimeError as error:  # failed runs: their run.json holds the tracebacks; rerunning resumes
        print(f"workbench demo: error: {error} Run the same command again to redo only those.", file=sys.stderr)
        return 1
    results = collect_results(sweep_dir)
    overall = results[(results["region"] == "mean") & (results["stratum"] == "all")]
    dice = overall[overall["metric"] == "dice"].groupby("loss")["value"].mean()
    pq = overall[(overall["metric"] == "pq") & (overall["threshold"] == 0.5)].groupby("loss")["value"].mean()
    table = pd.DataFrame({"dice (mean region)": dice, "pq@0.5 (mean region)": pq}).reindex(list(DEMO_LOSSES))
    print()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    print(f"report: {report}")
    print(f"runs:   {sweep_dir} (per case and per lesion tables in each run folder)")
    audit_run, audit_case = _most_missed(sweep_dir)
    if audit_run is not None:
        print(f"audit:  workbench audit {audit_run} --case {audit_case}    (napari; the case with the most missed lesions)")
    return 0


def _most_missed(sweep_dir: Path) -> tuple[Path | None, str | None]:
    """The run folder and case with the most FN lesions (at Dice 0.5) among a sweep's runs."""
    best: tuple[int, Path | None, str | None] = (-1, None, None)
    for table in sorted(sweep_dir.glob("*/lesions.parquet")):
        lesions = pd.read_parquet(table, columns=["case_id", "status", "threshold"])
        misses = lesions[(lesions["status"] == "FN") & (lesions["threshold"] == 0.5)].groupby("case_id").size()
        for case_id in sorted(lesions["case_id"].unique()):
            if misses.get(case_id, 0) > best[0]:
                best = (int(misses.get(case_id, 0)), table.parent, str(case_id))
    return best[1], best[2]


def _run_audit(args: argparse.Namespace) -> int:
    import dataclasses

    from workbench.viz.sources import files_source, run_source

    if (args.run_dir is None) == (args.image is None):
        raise ValueError("give either a RUN_DIR or --image (with --label), not both")
    if args.image is not None:
        if args.label is None:
            raise ValueError("--image needs --label (the reference label map)")
        source = files_source(args.image, args.label, args.pred, schema=args.schema)
    else:
        if args.label or args.pred:
            raise ValueError("--label and --pred go with --image; a run brings its own")
        source = run_source(args.run_dir, args.case)
    if args.loss is not None:
        source = dataclasses.replace(source, loss=args.loss, loss_options={})
    print(f"Opening napari on {source.title} ...")
    from workbench.viz.audit import audit_viewer, save_screenshot

    viewer = audit_viewer(source, threshold=args.threshold, show=True)
    if args.screenshot is not None:
        save_screenshot(viewer, args.screenshot)
        print(f"screenshot: {args.screenshot}")
        viewer.close()
        return 0
    import napari

    napari.run()
    return 0


def _run_lab(args: argparse.Namespace) -> int:
    from workbench.lab import start_lab

    print("Starting JupyterLab ...", flush=True)
    lab = start_lab(args.dir, port=args.port, open_browser=not args.no_browser)
    print(f"\nJupyterLab is serving {lab.root_dir}; kernels start in {Path.cwd()}.\n"
          f"Open the loss explorer:\n\n    {lab.notebook_url('01_loss_explorer.ipynb')}\n\n"
          f"or the lab: {lab.url}\nCtrl-C stops it.", flush=True)
    try:
        lab.process.wait()
    except KeyboardInterrupt:
        print("Stopping JupyterLab ...", file=sys.stderr)
    finally:
        lab.stop()
    return 0


def _run_phantoms(args: argparse.Namespace) -> int:
    from workbench.data.cohort import make_cohort

    path = make_cohort(args.n, args.seed, args.out, shape=tuple(args.shape), spacing=args.spacing)
    print(f"wrote {args.n} cases and {path}")
    return 0


def _run_manifest_brats(args: argparse.Namespace) -> int:
    from workbench.data.brats import scan_brats_mets
    from workbench.data.manifest import validate_files, write_manifest

    manifest = scan_brats_mets(args.root, name=args.name, split=args.split)
    if not args.no_validate:
        validate_files(manifest, check_labels=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, args.out)
    labelled = sum(case.label is not None for case in manifest.cases)
    print(f"wrote {args.out}: {len(manifest.cases)} cases, {labelled} with labels")
    return 0


def _run_instances(args: argparse.Namespace) -> int:
    from workbench.data.nifti import load_label, save_nifti
    from workbench.instances import instance_maps
    from workbench.labels import get_schema

    schema = get_schema(args.schema)
    label, affine, spacing = load_label(args.label)
    target = schema.to_target(label, args.mode)
    maps = instance_maps(
        target[None], mode=args.mode, connectivity=args.connectivity, spacing=spacing,
        voronoi=args.out is not None, num_classes=len(schema.labels),
    )
    names = schema.foreground_names(args.mode)
    table = maps.table(names).drop(columns="batch")
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(names):
            save_nifti(args.out / f"{name}-components.nii.gz", maps.components[0, k], affine)
            save_nifti(args.out / f"{name}-cells.nii.gz", maps.cells[0, k], affine)
        print(f"wrote component and Voronoi-cell maps to {args.out}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    if args.preset is not None:
        return _run_scoring(args)
    from workbench.evaluate import run_evaluation

    result = run_evaluation(
        args.pred, args.ref, args.out, schema=args.schema, regions=args.regions, thresholds=args.thresholds,
        connectivity=args.connectivity, workers=args.workers, split=args.split,
    )
    print(f"evaluated {len(result.seconds)} cases; tables and run.json in {args.out}")
    print()
    print("Mean over cases, all lesion sizes (pq@t: panoptic quality at matching threshold t; hd95 in mm):")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(_summary_view(result.summary).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def _run_scoring(args: argparse.Namespace) -> int:
    from workbench.metrics.challenge import get_preset
    from workbench.scoring import run_scoring

    fixed = [name for name, value, default in (
        ("--schema", args.schema, None), ("--regions", args.regions, None),
        ("--thresholds", args.thresholds, list(_THRESHOLDS)), ("--connectivity", args.connectivity, _CONNECTIVITY),
    ) if value != default]
    if fixed:
        raise ValueError(f"--preset fixes the regions, matching and connectivity; drop {', '.join(fixed)}.")
    preset = get_preset(args.preset)
    result = run_scoring(args.pred, args.ref, args.out, preset=preset, split=args.split, workers=args.workers)
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


def _run_perturb(args: argparse.Namespace) -> int:
    from workbench.data.perturb import write_perturbed_predictions

    out = write_perturbed_predictions(args.ref, args.out, seed=args.seed)
    print(f"wrote perturbed predictions to {out}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from workbench.training import load_config, train

    overrides = {} if args.out is None else {"out_dir": str(args.out)}
    try:
        result = train(load_config(args.config, **overrides), resume=args.resume)
    except FileExistsError as error:
        raise ValueError(str(error)) from None
    print(f"trained {result.epochs_completed} epochs; run folder {result.run_dir}")
    last = result.metrics[result.metrics["epoch"] == result.metrics["epoch"].max()]
    with pd.option_context("display.width", 200):
        print(last.drop(columns="epoch").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from workbench.training import predict_manifest

    try:
        written = predict_manifest(
            args.run_dir, args.manifest, args.out, case_ids=args.cases, split=args.split, device=args.device
        )
    except KeyError as error:  # unknown case id or split: the message names it
        raise ValueError(error.args[0]) from None
    print(f"wrote {len(written)} predictions to {args.out}")
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    from workbench.experiments import load_sweep, run_sweep

    overrides = {} if args.out is None else {"out": str(args.out.resolve())}
    spec = load_sweep(args.sweep_file, **overrides)
    result = run_sweep(spec, workers=args.workers, dask=args.dask, progress=not args.no_progress)
    done = len(result.status) - len(result.failed)
    print(f"sweep {spec.name}: {done} of {len(result.status)} runs complete ({len(result.skipped)} already were); "
          f"folder {result.sweep_dir}")
    for run in result.failed:
        print(f"failed: {run} (see {result.sweep_dir / run / 'run.json'})")
    return 1 if result.failed else 0


def _run_report(args: argparse.Namespace) -> int:
    from workbench.experiments import write_report

    results, report = write_report(args.sweep_dir)
    print(f"wrote {results} and {report}")
    return 0


_KEY_METRICS = ("dice", "pq", "f1", "cc_dice", "surface_dice", "hd95")


def _summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    """Regions × key metrics (mean over cases), all lesion sizes; one column per threshold for
    metrics that depend on the matching threshold (``pq@0.5``)."""
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
