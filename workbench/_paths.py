"""Where workbench writes: case ids as file names, paths kept inside their output folder, and one
policy for outputs that already exist.

Every writer that names a file after a case goes through :func:`case_file_name`, every path built
from data is checked with :func:`inside`, and every command that would replace an earlier result
calls :func:`refuse_existing` first (the same message, naming ``--overwrite``, everywhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["case_file_name", "check_case_id", "inside", "refuse_existing"]

_SEPARATORS = re.compile(r"[/\\\x00]")


def check_case_id(case_id: object) -> str:
    """``case_id`` if it can name a file, else a ``ValueError`` that says why.

    A case id becomes file names (``<id>.nii.gz``, ``<id>_0000.nii.gz``), so it must be a
    non-empty string without path separators (``/``, ``\\``), NUL, a leading dot (hidden files,
    ``.`` and ``..``) or surrounding whitespace.

    Examples
    --------
    >>> check_case_id("BraTS-MET-00001-000")
    'BraTS-MET-00001-000'
    >>> check_case_id("../x")
    Traceback (most recent call last):
    ...
    ValueError: Case id '../x' cannot name a file: it contains a path separator. Rename the case in its manifest.
    """
    if not isinstance(case_id, str):
        problem = f"it is a {type(case_id).__name__}, not text"
    elif not case_id:
        problem = "it is empty"
    elif _SEPARATORS.search(case_id):
        problem = "it contains a path separator"
    elif case_id.startswith("."):
        problem = "it starts with a dot"
    elif case_id != case_id.strip():
        problem = "it starts or ends with whitespace"
    else:
        return case_id
    raise ValueError(f"Case id {case_id!r} cannot name a file: {problem}. Rename the case in its manifest.")


def case_file_name(case_id: str, suffix: str = ".nii.gz") -> str:
    """The file name of a case's output: ``<case_id><suffix>``, after :func:`check_case_id`.

    Examples
    --------
    >>> case_file_name("phantom-003")
    'phantom-003.nii.gz'
    >>> case_file_name("c1", "_0000.nii.gz")
    'c1_0000.nii.gz'
    """
    return check_case_id(case_id) + suffix


def inside(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``path`` resolved, if it lies inside ``folder`` (resolved too); else a ``ValueError``.

    Examples
    --------
    >>> str(inside("/out", "/out/a/b.nii.gz"))
    '/out/a/b.nii.gz'
    >>> inside("/out", "/out/../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: Refusing to write /etc/passwd: it lies outside the output folder /out.
    """
    root = Path(folder).resolve()
    resolved = Path(path).resolve()
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"Refusing to write {resolved}: it lies outside the output folder {root}.")
    return resolved


def refuse_existing(path: str | os.PathLike[str], *, overwrite: bool, what: str = "output") -> None:
    """Raise ``FileExistsError`` if ``path`` exists (a non-empty folder, or a file) and ``overwrite`` is off.

    The message is the same for every command: it names the path and ``--overwrite``.

    Parameters
    ----------
    path : str or PathLike
    overwrite : bool
        The user asked to replace earlier results.
    what : str
        What lies there, for the message (e.g. ``"evaluation"``, ``"cohort"``).
    """
    path = Path(path)
    exists = path.is_file() or (path.is_dir() and any(path.iterdir()))
    if exists and not overwrite:
        raise FileExistsError(
            f"{path} already holds an earlier {what}; pass --overwrite to replace it, or choose another folder."
        )
