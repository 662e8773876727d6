"""nnU-Net subcommands: ``export-nnunet`` (a manifest as a raw dataset) and ``nnunet-trainers``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_export_nnunet", "add_nnunet_trainers", "run_export_nnunet", "run_nnunet_trainers"]


def add_export_nnunet(commands: argparse._SubParsersAction) -> None:
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
    export.set_defaults(run=run_export_nnunet)


def run_export_nnunet(args: argparse.Namespace) -> int:
    """Export the dataset and print the nnU-Net commands that come next."""
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


def add_nnunet_trainers(commands: argparse._SubParsersAction) -> None:
    trainers = commands.add_parser(
        "nnunet-trainers",
        help="list the nnU-Net trainers of the workbench losses and where nnU-Net finds them",
        description="List the nnU-Net v2 trainer classes (one per workbench loss) and print the nnUNet_extTrainer "
        "setting that makes nnUNetv2_train/-predict find them; --dir prints only the folder, for "
        "`export nnUNet_extTrainer=$(workbench nnunet-trainers --dir)`. Needs `pip install \"workbench[nnunet]\"`.",
    )
    trainers.add_argument("--dir", action="store_true", help="print only the folder for nnUNet_extTrainer")
    trainers.set_defaults(run=run_nnunet_trainers)


def run_nnunet_trainers(args: argparse.Namespace) -> int:
    """List the trainers (needs nnU-Net), or with ``--dir`` print only their folder (does not)."""
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
