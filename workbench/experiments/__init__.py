"""Experiments: sweeps of papermill runs over a parameter grid, and their report.

* :func:`load_sweep` / :func:`run_sweep` (``workbench sweep SWEEP.yaml``): one notebook execution
  per grid point into ``<out>/<sweep>/<run-id>/``, on a local process pool or dask.distributed,
  resumable.
* :func:`collect_results` / :func:`write_report` (``workbench report SWEEP_DIR``): every finished
  run's ``per_case.parquet`` joined with its parameters, ``results.parquet`` and ``report.html``.
"""

from workbench.experiments.report import (
    collect_results,
    collect_table,
    compare_table,
    detection_analysis,
    run_table,
    write_report,
)
from workbench.experiments.sweep import (
    RunSpec,
    SweepResult,
    SweepSpec,
    load_sweep,
    run_id,
    run_sweep,
)

__all__ = [
    "RunSpec",
    "SweepResult",
    "SweepSpec",
    "collect_results",
    "collect_table",
    "compare_table",
    "detection_analysis",
    "load_sweep",
    "run_id",
    "run_sweep",
    "run_table",
    "write_report",
]
