"""Result tables on disk: each table as ``<name>.parquet`` and ``<name>.csv``, written atomically,
into a folder claimed by the one policy for earlier outputs (:func:`claim_results_folder`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench._io import atomic_write
from workbench._paths import refuse_existing

__all__ = ["RESULT_FILES", "claim_results_folder", "write_table", "write_tables"]

RESULT_FILES: tuple[str, ...] = (
    *(f"{name}.{ext}" for name in ("per_case", "lesions", "summary", "scores") for ext in ("parquet", "csv")),
    "leaderboard.csv",
)
"""Every file an evaluation writes beside its ``run.json`` (``workbench evaluate``, with or without ``--preset``)."""


def claim_results_folder(out_dir: str | os.PathLike[str], *, overwrite: bool, what: str) -> Path:
    """Make ``out_dir`` ready for a new evaluation's tables; return it, created.

    A folder that holds anything is refused unless ``overwrite``
    (:func:`workbench._paths.refuse_existing`). With ``overwrite`` the files of an earlier
    evaluation of either kind (:data:`RESULT_FILES`) are removed first, so no table of the old
    run stays beside the new ones (``per_case.*`` beside a ``--preset`` run's ``scores.*``);
    other files are left alone, and ``run.json`` is replaced by the new run's.

    Parameters
    ----------
    out_dir : str or PathLike
    overwrite : bool
        The user asked to replace an earlier result (``--overwrite``).
    what : str
        What the folder would hold, for the message (``"evaluation"``).

    Raises
    ------
    FileExistsError
        ``out_dir`` holds files and ``overwrite`` is off; the message names ``--overwrite``.
    """
    out_dir = Path(out_dir)
    refuse_existing(out_dir, overwrite=overwrite, what=what)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        (out_dir / name).unlink(missing_ok=True)
    return out_dir


def write_table(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Write one table as Parquet (``.parquet``) or CSV (``.csv``), atomically, without the index; return the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return path


def write_tables(
    out_dir: str | os.PathLike[str], tables: Mapping[str, pd.DataFrame], *, attrs: dict[str, Any] | None = None
) -> list[Path]:
    """Write every table as ``<name>.parquet`` and ``<name>.csv`` into ``out_dir``, atomically.

    Parameters
    ----------
    out_dir : str or PathLike
        Must exist; files of an earlier run are replaced.
    tables : mapping of str to DataFrame
        Table name -> table, written in this order.
    attrs : dict, optional
        JSON-serialisable run parameters, stored as ``attrs["run"]`` in each Parquet file
        (``pandas.read_parquet(path).attrs["run"]``).

    Returns
    -------
    paths : list of Path
        Parquet then CSV per table, in the order of ``tables``.
    """
    out_dir = Path(out_dir)
    paths: list[Path] = []
    for name, frame in tables.items():
        table = frame.copy()
        table.attrs = {"run": attrs or {}}
        paths += [write_table(out_dir / f"{name}.parquet", table), write_table(out_dir / f"{name}.csv", table)]
    return paths
