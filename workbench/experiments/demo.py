"""The main job (``workbench demo``): a small loss comparison on the phantoms, from cohort to report.

It runs the sweep of :data:`DEMO_LOSSES` (α = β = 1, one seed) through
``notebooks/02_train_evaluate.ipynb`` on the built-in phantom cohort with a tiny DynUNet on the
CPU — each run trains, predicts the held-out (``val``) cases and evaluates them — and writes the
sweep's report. ``quick=True`` runs the same pipeline in seconds on a 6-case 32³ cohort written
into the output folder (for tests and a first look).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from workbench.data.cohort import make_cohort
from workbench.experiments.report import write_report
from workbench.experiments.sweep import SweepSpec, run_sweep

__all__ = ["DEMO_LOSSES", "demo_notebook", "demo_spec", "run_demo"]

DEMO_LOSSES = ("dc_ce", "blob", "cc", "iwl_blob")
"""The losses the demo compares: a choice among :data:`workbench.losses.LOSSES` (a test checks that they are)."""
_FULL = {"epochs": 2, "steps_per_epoch": 15, "val_every": 2, "patch_size": [48, 48, 48],
         "filters": [8, 16, 32, 64], "batch_size": 2}
_QUICK = {"epochs": 1, "steps_per_epoch": 2, "val_every": 1, "patch_size": [32, 32, 32],
          "filters": [4, 8, 16], "batch_size": 1}


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


def demo_spec(out: str | os.PathLike[str], *, quick: bool = False, manifest: str | os.PathLike[str] | None = None) -> SweepSpec:
    """The demo sweep, its runs under ``out/losses``; ``quick`` writes a tiny cohort into ``out/cohort``."""
    out = Path(out).resolve()
    fixed = dict(_QUICK if quick else _FULL)
    if quick and manifest is None:
        manifest = make_cohort(6, 0, out / "cohort", shape=(32, 32, 32))
    if manifest is not None:
        fixed["manifest"] = str(Path(manifest).resolve())
    return SweepSpec(
        name="losses", notebook=demo_notebook(), out=out,
        grid={"loss": list(DEMO_LOSSES), "alpha": [1.0], "beta": [1.0], "seed": [0]}, fixed=fixed,
        source=f"workbench demo{' --quick' if quick else ''}",
    )


def run_demo(
    out: str | os.PathLike[str] | None = None,
    *,
    quick: bool = False,
    workers: int = 2,
    manifest: str | os.PathLike[str] | None = None,
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
        Runs at a time (each uses one process).
    manifest : str or PathLike, optional
        A dataset manifest instead of the phantoms.
    progress : bool

    Returns
    -------
    (sweep_dir, report_html) : tuple of Path
    """
    out = Path(out) if out is not None else _fresh_folder(Path("runs") / "demo")
    spec = demo_spec(out, quick=quick, manifest=manifest)
    with _threads_per_run(workers):
        result = run_sweep(spec, workers=workers, progress=progress)
    if result.failed:
        raise RuntimeError(
            f"Demo runs failed: {sorted(result.failed)}; their run.json under {spec.sweep_dir} holds the tracebacks."
        )
    _, report = write_report(spec.sweep_dir)
    return spec.sweep_dir, report


@contextlib.contextmanager
def _threads_per_run(workers: int) -> Iterator[None]:
    """Share the cores between the parallel runs (their kernels inherit ``OMP_NUM_THREADS``),
    unless the user set it."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


def _fresh_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... : the first that does not exist."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
