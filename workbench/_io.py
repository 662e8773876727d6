"""Atomic file writes: every file workbench writes goes through :func:`atomic_write`.

A reader (another process, a crashed run being resumed) never sees a half-written file: the
content goes to a temporary file in the destination folder, which is renamed onto the
destination only once the writer finished without an error. A writer killed outright (SIGKILL,
power loss) leaves its temporary file behind; the next write into that folder removes it
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench._process import pid_alive

__all__ = ["atomic_write", "remove_stale_temporaries"]

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMPORARY = re.compile(r"\..+\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{12}(\.[^/]*)?")


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
        ``<folder>/.<name>.tmp-<host>-<pid>-<random><suffix>``, not yet created (``host``: 8 hex
        digits of this machine's name; ``pid``: the writer's). It keeps the destination's
        suffix, including a compression suffix with the one before it (``.nii.gz``), because
        writers such as nibabel choose the format from the extension.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist, or the block wrote nothing to ``tmp``.

    Notes
    -----
    On an exception inside the block the temporary file is removed and the destination is left
    untouched. Before yielding, :func:`remove_stale_temporaries` clears the folder of the
    temporary files of writers that were killed. :func:`os.replace` is atomic on POSIX and Windows within one file system, which is
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
    remove_stale_temporaries(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{secrets.token_hex(6)}{suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"Cannot write {path}: nothing was written to the temporary file {tmp}.")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` in ``folder`` whose writer is gone; return them.

    The rule, safe on a folder shared between machines: a file named as :func:`atomic_write`
    names its temporaries is removed when the host tag in its name is this machine's and no
    process with the pid in its name runs here. A live writer's file is never touched (a reused
    pid keeps a stale file until that process ends too), nor a file written on another machine,
    nor any other file. Files that cannot be removed are left alone.
    """
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match is None or match["host"] != _HOST or pid_alive(int(match["pid"])):
                continue
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed
