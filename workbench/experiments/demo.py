"""The main job (``workbench demo``): a loss comparison on the phantoms, from cohort to report.

It runs a sweep of :data:`DEMO_LOSSES` (α = β = 1) through ``notebooks/02_train_evaluate.ipynb``
on the built-in phantom cohort (:data:`workbench.data.cohort.DEFAULT_COHORT`: 24 training, 4
validation and 24 held-out test cases): each run trains a small 3D DynUNet on the CPU with the
recipe of :data:`RECIPE` (420 AdamW steps on 40³ patches; DC+CE reaches held-out Dice ≈ 0.88), predicts and
evaluates the test cases, and the sweep's report leads with the findings. ``quick=True`` runs
the same pipeline in seconds on a 6-case 32³ cohort written into the output folder (for tests
and a first look; its models are untrained and its report says so).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from workbench.data.cohort import make_cohort
from workbench.experiments.report import write_report
from workbench.experiments.sweep import SweepSpec, run_sweep

__all__ = ["DEMO_LOSSES", "RECIPE", "demo_notebook", "demo_spec", "run_demo"]

DEMO_LOSSES = ("dc_ce", "blob", "cc", "iwl_blob")
"""The losses the demo compares: a choice among :data:`workbench.losses.LOSSES` (a test checks that they are)."""
RECIPE = {"epochs": 14, "steps_per_epoch": 30, "val_every": 2, "patch_size": [40, 40, 40], "filters": [8, 16, 32],
          "batch_size": 2, "optimizer": "adamw", "learning_rate": 0.01, "sw_overlap": 0.25}
"""The CPU training recipe of every demo run (and of ``configs/sweeps/paper_mets.yaml``)."""
_QUICK = {"epochs": 1, "steps_per_epoch": 2, "val_every": 1, "patch_size": [32, 32, 32], "filters": [4, 8, 16],
          "batch_size": 1}


def demo_notebook() -> Path:
    """``notebooks/02_train_evaluate.ipynb`` of the checkout the package runs from.

    Raises
    ------
    FileNotFoundError
        When the package was installed without its repository (the notebooks are not in the wheel).
    """
    path = Path(__file__).resolve().parents[2] / "notebooks" / "02_train_evaluate.ipynb"
    if not path.is_file():
        raise FileNotFoundError(
            f"The demo runs {path.name} from the repository's notebooks/ folder, which is not at {path.parent}; "
            "install workbench from a checkout (`pip install -e .`)."
        )
    return path


def demo_spec(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    losses: Sequence[str] = DEMO_LOSSES,
    seeds: int = 1,
    epochs: int | None = None,
    device: str = "auto",
) -> SweepSpec:
    """The demo sweep, its runs under ``out/losses``; ``quick`` writes a tiny cohort into ``out/cohort``.

    ``seeds`` training seeds (0, 1, ...) per loss; ``epochs`` replaces the recipe's (30 steps each).
    """
    from workbench.losses import LOSS_NAMES

    unknown = [loss for loss in losses if loss not in LOSS_NAMES]
    if unknown or not losses:
        raise ValueError(f"Expected `losses` to be one or more of {LOSS_NAMES}, but got {list(losses)!r}.")
    for name, value in (("seeds", seeds), ("epochs", 1 if epochs is None else epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Expected `{name}` to be a positive integer, but got {value!r}.")
    out = Path(out).resolve()
    fixed = {**(_QUICK if quick else RECIPE), "device": device}
    if epochs is not None:
        fixed["epochs"] = epochs
    if quick and manifest is None:
        manifest = make_cohort(6, 0, out / "cohort", shape=(32, 32, 32))
    if manifest is not None:
        _check_splits(manifest)
        fixed["manifest"] = str(Path(manifest).resolve())
    return SweepSpec(
        name="losses", notebook=demo_notebook(), out=out,
        grid={"loss": list(losses), "alpha": [1.0], "beta": [1.0], "seed": list(range(seeds))}, fixed=fixed,
        source=f"workbench demo{' --quick' if quick else ''}",
    )


def _check_splits(manifest: str | os.PathLike[str]) -> None:
    """Refuse, before any run starts, a manifest without labelled ``train`` and held-out (``test`` or ``val``) cases."""
    from workbench.data.manifest import read_manifest
    from workbench.runs.pipeline import held_out_split

    data = read_manifest(manifest)
    try:
        train, held_out = held_out_split(data, 0, 0)
    except KeyError as error:
        train, held_out = (), ()
        problem = error.args[0]
    else:
        problem = f"Manifest {data.name!r} has no labelled 'test' or 'val' case to evaluate on."
    if not train or not held_out:
        raise ValueError(
            f"{problem} The demo trains on the 'train' split and evaluates on 'test' (else 'val'): give the cases a "
            f"`split` in {manifest}, or write the manifest with `workbench manifest brats-mets ROOT -o {manifest} "
            "--splits 0.7 0.1 0.2`."
        )


def run_demo(
    out: str | os.PathLike[str] | None = None,
    *,
    quick: bool = False,
    workers: int = 2,
    manifest: str | os.PathLike[str] | None = None,
    losses: Sequence[str] = DEMO_LOSSES,
    seeds: int = 1,
    epochs: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Path, Path]:
    """Run the demo sweep and write its report.

    Parameters
    ----------
    out : str or PathLike, optional
        Output folder; default ``runs/demo``, or ``runs/demo-2``, ``-3``, ... if that exists (an
        earlier demo is never overwritten). An existing folder given explicitly is resumed.
    quick : bool
        The seconds-long version on a tiny cohort.
    workers : int
        Runs at a time (each a process; the cores are shared between them).
    manifest : str or PathLike, optional
        A dataset manifest instead of the phantoms.
    losses, seeds, epochs, device
        Of :func:`demo_spec`.
    progress : bool
        The sweep's progress bar and its runs' per-epoch lines; "writing the report" when it starts.

    Returns
    -------
    (sweep_dir, report_html) : tuple of Path
    """
    out = Path(out) if out is not None else _fresh_folder(Path("runs") / "demo")
    spec = demo_spec(out, quick=quick, manifest=manifest, losses=losses, seeds=seeds, epochs=epochs, device=device)
    result = run_sweep(spec, workers=workers, progress=progress)
    if result.failed:
        raise RuntimeError(
            f"Demo runs failed: {sorted(result.failed)}; their run.json under {spec.sweep_dir} holds the tracebacks."
        )
    if progress:
        print(f"writing the report of {len(result.status)} runs ...", flush=True)
    _, report = write_report(spec.sweep_dir)
    return spec.sweep_dir, report


def _fresh_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... : the first that does not exist."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
