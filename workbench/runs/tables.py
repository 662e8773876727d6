"""Result tables on disk: each table as ``<name>.parquet`` and ``<name>.csv``, written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench._io import atomic_write

__all__ = ["write_table", "write_tables"]


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
