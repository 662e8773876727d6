"""``run.json``: what every job writes into its folder, and the one place that writes it.

Every job (``train``, ``evaluate``, ``evaluate --preset``, a notebook run of a sweep) records
its run the same way, through :class:`RunRecord`::

    with RunRecord(out_dir, parameters={...}, packages=("workbench", "numpy")) as record:
        ...                                   # run.json says "running"
        record.update(device="cpu")           # written at once
        record.finish(outputs=[...])          # fields of the final document
    # run.json says "complete"; on an exception "failed" (or "interrupted" on Ctrl-C / SIGTERM), with the error

Status values: ``running``, ``complete``, ``failed``, ``interrupted``. The outputs in a folder
belong to the run its ``run.json`` describes only when the status is ``complete``; a sweep takes
a run as done iff :func:`is_complete`. A run whose process was ended from outside (a sweep's
pool worker stopped on Ctrl-C) is marked ``interrupted`` by whoever ended it (:func:`mark_interrupted`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from workbench._io import atomic_write

__all__ = [
    "PROGRESS_LOG",
    "RUN_JSON",
    "RunRecord",
    "Status",
    "is_complete",
    "json_safe",
    "mark_interrupted",
    "package_versions",
    "read_run",
    "record_failure",
    "utc_now",
    "write_json",
]

RUN_JSON = "run.json"
PROGRESS_LOG = "progress.log"
"""A training run's per-epoch lines (:func:`workbench.training.loop.epoch_line`), appended after every epoch."""
Status = Literal["running", "complete", "failed", "interrupted"]


class RunRecord:
    """The ``run.json`` of one run folder, from ``running`` to ``complete`` / ``failed`` / ``interrupted``.

    Parameters
    ----------
    folder : str or PathLike
        The run folder; created if missing.
    parameters : dict
        What the run was asked to do (JSON-serialisable; NaN / inf are written as null).
    packages : iterable of str
        Packages whose versions are recorded under ``versions`` (Python's is always added).
    **fields
        Further top-level fields of the document (e.g. ``resumed``).

    Notes
    -----
    Entering the ``with`` block writes ``status: running`` with ``started`` (UTC, ISO 8601).
    Leaving it writes the final document: ``complete`` with ``finished`` and ``total_s`` under
    ``timings`` (merged with any timings given to :meth:`finish`); on an exception ``failed``
    (``interrupted`` for KeyboardInterrupt, which includes SIGTERM as
    :class:`workbench._process.Terminated`) with ``error`` = ``"Type: message"``, which is then
    re-raised. Each write is atomic.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        parameters: dict[str, Any],
        packages: Iterable[str] = ("workbench",),
        **fields: Any,
    ) -> None:
        self.path = Path(folder) / RUN_JSON
        self.info: dict[str, Any] = {"status": "running", "started": None, "parameters": parameters, **fields}
        self.info["versions"] = package_versions(packages)
        self._final: dict[str, Any] = {}
        self._start = 0.0

    def __enter__(self) -> RunRecord:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start = time.perf_counter()
        self.info["started"] = utc_now()
        self._write()
        return self

    def update(self, **fields: Any) -> None:
        """Add or replace top-level fields and write the document now (still ``running``)."""
        self.info.update(fields)
        self._write()

    def finish(self, **fields: Any) -> None:
        """Fields the final ``complete`` document gets (written when the block ends without error)."""
        self._final.update(fields)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> Literal[False]:
        self.info["finished"] = utc_now()
        if error is None:
            timings = {"total_s": time.perf_counter() - self._start, **self._final.pop("timings", {})}
            self.info.update(status="complete", **self._final, timings=timings)
        else:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            self.info.update(status=status, error=f"{type(error).__name__}: {error}")
        self._write()
        return False

    def _write(self) -> None:
        write_json(self.path, self.info)


def record_failure(folder: str | os.PathLike[str], *, error: str, **fields: Any) -> None:
    """Write a ``failed`` ``run.json`` for a run that could not record itself (a crashed notebook).

    Parameters
    ----------
    folder : str or PathLike
        Must exist.
    error : str
        ``"Type: message"``.
    **fields
        Further fields (``traceback``, ``parameters``, ``started``, ``timings``, ``versions``, ...).
    """
    write_json(Path(folder) / RUN_JSON, {"status": "failed", "error": error, **fields, "finished": utc_now()})


def mark_interrupted(folder: str | os.PathLike[str], *, error: str) -> bool:
    """Turn a ``running`` ``run.json`` into ``interrupted``, with ``error`` and ``finished``; return whether it did.

    For a run that could not record its own end: its process was stopped by the one that started
    it. Any other status (complete, failed, none) is left as it is.

    Parameters
    ----------
    folder : str or PathLike
    error : str
        ``"Type: message"``, e.g. ``"KeyboardInterrupt: sweep interrupted"``.
    """
    document = read_run(folder)
    if document.get("status") != "running":
        return False
    write_json(Path(folder) / RUN_JSON, {**document, "status": "interrupted", "error": error, "finished": utc_now()})
    return True


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``run.json`` of ``folder`` as a dict; ``{}`` when it is missing, unreadable or not an object."""
    try:
        document = json.loads((Path(folder) / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def is_complete(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder/run.json`` exists, is valid JSON and says ``"status": "complete"``."""
    return read_run(folder).get("status") == "complete"


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """``{"python": ..., package: version or "not installed"}``."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def json_safe(value: Any) -> Any:
    """``value`` with string keys, tuples as lists and NaN / infinite floats as None (strict JSON).

    Examples
    --------
    >>> json_safe({1: (0.5, float("nan"))})
    {'1': [0.5, None]}
    """
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` as indented strict JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")
