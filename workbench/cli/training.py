"""Training subcommands: ``train`` (a 3D U-Net with one of the losses) and ``predict`` (with a trained run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._options import FORMATS_DOC, add_manifest_option

__all__ = ["add_predict", "add_train", "run_predict", "run_train"]


def add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a 3D U-Net with one of the losses",
        description="Train a patch-based 3D U-Net (MONAI DynUNet, nnU-Net-style defaults) with the loss, data and "
        "schedule of a YAML or JSON config; write config.yaml, run.json, metrics.parquet, checkpoints/last.pt and "
        f"predictions/ into the config's out_dir. Config fields, defaults and checks: {FORMATS_DOC}#training-config; "
        f"the run folder: {FORMATS_DOC}#run-folder.",
    )
    train.add_argument("--config", type=Path, required=True, help="config file (.yaml, .yml or .json)")
    train.add_argument("--resume", action="store_true", help="continue the run in out_dir from its last checkpoint")
    train.add_argument("-o", "--out", type=Path, default=None, help="run folder (overrides the config's out_dir)")
    train.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    import pandas as pd

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


def add_predict(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict a manifest's cases with a trained run",
        description="Load RUN_DIR/checkpoints/last.pt, run sliding-window inference on every selected case of the "
        "manifest and write OUT/<case_id>.nii.gz label maps with the cases' affines (input for evaluate --pred; "
        f"{FORMATS_DOC}#prediction-folder).",
    )
    predict.add_argument("run_dir", type=Path, help="a run folder written by `workbench train`")
    add_manifest_option(predict, "the cases to predict", required=True)
    predict.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    predict.add_argument("--split", default=None, help="only the cases of this split (default: all)")
    predict.add_argument("--cases", nargs="+", default=None, help="only these case ids")
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if available")
    predict.add_argument("--overwrite", action="store_true", help="write into an OUT folder that is not empty")
    predict.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from workbench.training import predict_manifest

    try:
        written = predict_manifest(
            args.run_dir, args.manifest, args.out, case_ids=args.cases, split=args.split, device=args.device,
            overwrite=args.overwrite,
        )
    except KeyError as error:  # unknown case id or split: the message names it
        raise ValueError(error.args[0]) from None
    print(f"wrote {len(written)} predictions to {args.out}")
    return 0
