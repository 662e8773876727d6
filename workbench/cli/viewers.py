"""Interactive subcommands: ``audit`` (napari on a case) and ``lab`` (JupyterLab on the notebooks)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workbench.cli import CommandError

__all__ = ["add_audit", "add_lab", "check_display", "run_audit", "run_lab"]


def add_audit(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit",
        help="open napari on a case: TP/FP/FN lesions, components, Voronoi cells, loss weights",
        description="Open the napari audit view of one case of a run (`workbench audit RUN_DIR --case ID`; RUN_DIR "
        "is a `workbench train` run or a run folder of `workbench sweep` / `demo`) or of plain NIfTI files "
        "(`workbench audit --image T1C.nii.gz [...] --label SEG.nii.gz [--pred PRED.nii.gz]`). A dock widget lists "
        "the lesions of the region shown, misses first, filtered by status and size and sorted by any column; "
        "selecting one moves the view to it; keys n / p step through the listed misses and false positives. A run "
        "predicts only its held-out cases: --case is one of those. Needs a display (on a headless machine: "
        "xvfb-run).",
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
    audit.set_defaults(run=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    """Open napari on a run's case or on NIfTI files; with ``--screenshot``, save one and close."""
    import dataclasses

    from workbench.viz.sources import files_source, run_source

    check_display()
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


def check_display() -> None:
    """Raise :class:`CommandError` when Qt would find no display to open napari on (Qt aborts the process then).

    On Linux Qt needs ``$DISPLAY`` (X11) or ``$WAYLAND_DISPLAY``, unless ``$QT_QPA_PLATFORM`` names a
    platform that needs none (``offscreen``, ``minimal``, ``vnc``, ...). macOS and Windows always have one.
    """
    if not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform not in ("", "xcb", "wayland"):
        return
    raise CommandError(
        "no display to open napari on ($DISPLAY and $WAYLAND_DISPLAY are unset). Run it in a desktop session, "
        "under a virtual display (xvfb-run workbench audit ...), or with --screenshot and QT_QPA_PLATFORM=offscreen."
    )


def add_lab(commands: argparse._SubParsersAction) -> None:
    lab = commands.add_parser(
        "lab",
        help="JupyterLab on the notebooks, with this environment as their kernel",
        description="Start JupyterLab on working copies of the workbench notebooks in runs/lab/ of the current "
        "directory (copied from the checkout's notebooks/ where missing, never overwritten: the committed "
        "notebooks never change), with this Python environment as the notebooks' python3 kernel, and print its "
        "address (127.0.0.1, with a token). Kernels start in the current directory, so relative paths in a "
        "notebook (runs/...) mean what they mean on the command line. Ctrl-C stops the server and its kernels.",
    )
    lab.add_argument("--dir", type=Path, default=None,
                     help="serve this folder of your own notebooks as it is (default: working copies in runs/lab/)")
    lab.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(run=run_lab)


def run_lab(args: argparse.Namespace) -> int:
    """Serve JupyterLab until Ctrl-C (exit 0) or SIGTERM (exit 143 through :func:`workbench.cli.main`),
    then stop it and its kernels."""
    from workbench._process import Terminated
    from workbench.lab import start_lab

    print("Starting JupyterLab ...", flush=True)
    lab = start_lab(args.dir, port=args.port, open_browser=not args.no_browser)
    print(f"\n{lab.describe()}\n"
          f"Open the loss explorer:\n\n    {lab.notebook_url('01_loss_explorer.ipynb')}\n\n"
          f"or the lab: {lab.url}\nCtrl-C stops it.", flush=True)
    try:
        lab.process.wait()
    except Terminated:
        raise
    except KeyboardInterrupt:
        print("Stopping JupyterLab ...", file=sys.stderr)
    finally:
        lab.stop()
    return 0
