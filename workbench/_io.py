"""Atomic file writes: every file workbench writes goes through :func:`atomic_write`.

A reader (another process, a crashed run being resumed) never sees a half-written file: the
content goes to a temporary file in the destination folder, which is renamed onto the
destination only once the writer finished without an error.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write"]

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        Destination. Its folder must exist; an existing file is replaced.

    Yields
    ------
    tmp : Path
        ``<folder>/.<name>.tmp-<random><suffix>``, not yet created. It keeps the destination's
        suffix, including a compression suffix with the one before it (``.nii.gz``), because
        writers such as nibabel choose the format from the extension.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist, or the block wrote nothing to ``tmp``.

    Notes
    -----
    On an exception inside the block the temporary file is removed and the destination is left
    untouched. :func:`os.replace` is atomic on POSIX and Windows within one file system, which is
    why the temporary file lives in the destination's folder.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "notes.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> sorted(p.name for p in folder.iterdir())
    ['notes.txt']
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    suffix = path.suffix
    if suffix.lower() in _COMPRESSION_SUFFIXES:
        suffix = Path(path.stem).suffix + suffix
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}{suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"Cannot write {path}: nothing was written to the temporary file {tmp}.")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
