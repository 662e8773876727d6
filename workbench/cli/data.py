"""Dataset subcommands: ``summary``, ``phantoms``, ``manifest brats-mets``, ``instances``, ``perturb``."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._options import FORMATS_DOC, add_manifest_option

__all__ = [
    "add_instances",
    "add_manifest",
    "add_perturb",
    "add_phantoms",
    "add_summary",
    "run_instances",
    "run_manifest_brats",
    "run_perturb",
    "run_phantoms",
    "run_summary",
]


def add_summary(commands: argparse._SubParsersAction) -> None:
    summary = commands.add_parser(
        "summary",
        help="a dataset's instance statistics per region",
        description="Check every file of a manifest (default: the built-in phantom cohort, generated into the cache "
        "on first use) and print its instance statistics per region (the multi-class paper's Table 1).",
    )
    add_manifest_option(summary, "the dataset to summarise (default: the phantoms)")
    summary.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    """Print a manifest's splits, instances per region and components per case (also ``demo``'s first part)."""
    from workbench.data.cohort import default_manifest_path
    from workbench.data.manifest import load_manifest
    from workbench.data.summary import stratum_counts, summarise

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
    print("Lesions (components) per split and size stratum, mm³ — what a held-out split can show effects on:")
    print(stratum_counts(per_case).to_string())
    print()
    print("Components per case:")
    wide = per_case.pivot(index=["case", "split"], columns="region", values="components")
    print(wide[list(manifest.schema.region_names)].to_string())
    return 0


def add_phantoms(commands: argparse._SubParsersAction) -> None:
    phantoms = commands.add_parser(
        "phantoms",
        help="write a synthetic BraTS-METS-like cohort (NIfTI + manifest)",
        description="Write N phantom cases as NIfTI files and a manifest.yaml into OUT "
        f"({FORMATS_DOC}#phantom-cohort). Arrays are in NIfTI voxel order (i, j, k), so --shape and --spacing are "
        "given as X Y Z.",
    )
    phantoms.add_argument("n", type=int, help="number of cases")
    phantoms.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    phantoms.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    phantoms.add_argument("--shape", type=int, nargs=3, default=(96, 96, 96), metavar=("X", "Y", "Z"),
                          help="voxels per axis (default 96 96 96)")
    phantoms.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                          help="mm per voxel (default: isotropic, the brain plus a 4 mm margin just fits --shape)")
    phantoms.add_argument("--overwrite", action="store_true", help="regenerate into an OUT folder that is not empty")
    phantoms.set_defaults(run=run_phantoms)


def run_phantoms(args: argparse.Namespace) -> int:
    from workbench.data.cohort import make_cohort

    path = make_cohort(
        args.n, args.seed, args.out, shape=tuple(args.shape), spacing=args.spacing, overwrite=args.overwrite
    )
    print(f"wrote {args.n} cases and {path}")
    return 0


def add_manifest(commands: argparse._SubParsersAction) -> None:
    """``manifest`` and its one layout so far, ``manifest brats-mets``."""
    manifest = commands.add_parser("manifest", help="write a manifest for a dataset folder")
    layouts = manifest.add_subparsers(dest="layout", metavar="LAYOUT", required=True)
    brats = layouts.add_parser(
        "brats-mets",
        help="BraTS-METS 2025 layout",
        description="Scan ROOT/BraTS-MET-XXXXX-XXX/BraTS-MET-XXXXX-XXX-{t1n,t1c,t2w,t2f,seg}.nii.gz and "
        "write a manifest; every file's header is checked, and every label map's values against the schema.",
    )
    brats.add_argument("root", type=Path, help="folder holding the case folders")
    brats.add_argument("-o", "--out", type=Path, required=True,
                       help=f"manifest file to write (.yaml; format: {FORMATS_DOC}#dataset-manifest)")
    brats.add_argument("--name", default="brats_mets_2025", help="dataset name")
    splits = brats.add_mutually_exclusive_group()
    splits.add_argument("--split", default=None, help="split name given to every case (e.g. train)")
    splits.add_argument(
        "--splits", type=float, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
        help="split the labelled cases at random into train / val / test by these fractions (e.g. 0.7 0.1 0.2), "
        "keeping each patient's time points together; what `workbench demo --manifest` needs",
    )
    brats.add_argument("--seed", type=int, default=0, help="seed of --splits (default 0)")
    brats.add_argument("--no-validate", action="store_true", help="skip reading every file's header and label values")
    brats.set_defaults(run=run_manifest_brats)


def run_manifest_brats(args: argparse.Namespace) -> int:
    from collections import Counter

    from workbench.data.brats import patient_id, scan_brats_mets
    from workbench.data.manifest import assign_splits, validate_files, write_manifest

    manifest = scan_brats_mets(args.root, name=args.name, split=args.split)
    if args.splits is not None:
        manifest = assign_splits(manifest, dict(zip(("train", "val", "test"), args.splits, strict=True)),
                                 seed=args.seed, group=patient_id)
    if not args.no_validate:
        validate_files(manifest)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, args.out)
    labelled = sum(case.label is not None for case in manifest.cases)
    splits = Counter(case.split for case in manifest.cases if case.split is not None)
    named = sorted(splits, key=lambda name: (("train", "val", "test", name).index(name), name))
    in_splits = f"; splits: {', '.join(f'{name} {splits[name]}' for name in named)}" if splits else ""
    print(f"wrote {args.out}: {len(manifest.cases)} cases, {labelled} with labels{in_splits}")
    return 0


def add_instances(commands: argparse._SubParsersAction) -> None:
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
    instances.add_argument("-o", "--out", type=Path, default=None,
                           help=f"folder for <channel>-components/-cells NIfTI files ({FORMATS_DOC}#instance-maps)")
    instances.set_defaults(run=run_instances)


def run_instances(args: argparse.Namespace) -> int:
    import pandas as pd

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


def add_perturb(commands: argparse._SubParsersAction) -> None:
    perturb = commands.add_parser(
        "perturb",
        help="write imperfect predictions made from a manifest's labels",
        description="For every labelled case of a manifest, drop, dilate or erode some lesions and add "
        "false-positive blobs; write OUT/<case_id>.nii.gz with the reference affine (input for evaluate --pred; "
        f"{FORMATS_DOC}#prediction-folder).",
    )
    add_manifest_option(perturb, "the reference cases' manifest", required=True)
    perturb.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    perturb.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    perturb.add_argument("--overwrite", action="store_true", help="write into an OUT folder that is not empty")
    perturb.set_defaults(run=run_perturb)


def run_perturb(args: argparse.Namespace) -> int:
    from workbench.data.perturb import write_perturbed_predictions

    out = write_perturbed_predictions(args.manifest, args.out, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote perturbed predictions to {out}")
    return 0
