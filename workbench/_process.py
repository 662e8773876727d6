"""Processes: SIGTERM as an exception, child processes that end with their parent, liveness of a pid.

- :class:`Terminated` is raised in the main thread on SIGTERM inside :func:`sigterm_raises`, so
  SIGTERM takes the same clean-up path as Ctrl-C (it is a ``KeyboardInterrupt``): ``run.json``
  says ``interrupted``, queued work is cancelled, child processes are ended.
- :func:`die_with_parent` makes a child process (a pool worker, the JupyterLab server) end when
  its parent dies, even by SIGKILL, when nothing else would tell it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Terminated", "child_pids", "die_with_parent", "guard_pool_worker", "pid_alive", "pool_worker_init", "sigterm_raises"]

_PR_SET_PDEATHSIG = 1
_POLL_S = 1.0
_guarded: set[int] = set()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (:func:`sigterm_raises`): a ``KeyboardInterrupt``, so every clean-up for Ctrl-C runs."""

    def __str__(self) -> str:
        return "terminated by SIGTERM"


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the old handler is restored after.

    Outside the main thread (where Python cannot set signal handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (a zombie counts as gone).

    Examples
    --------
    >>> pid_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid``: from psutil when installed, else ``/proc`` (Linux), else none."""
    try:
        import psutil
    except ImportError:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
        return children
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """Send this process ``signum`` when process ``parent_pid`` (its parent) dies; once per process.

    On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread also
    checks every second whether the parent changed (an orphan is adopted by another process), which
    covers other systems and a parent whose forking thread ended. What ``signum`` does is this
    process's choice: the default action ends it; a server that handles SIGTERM shuts down cleanly.

    Parameters
    ----------
    parent_pid : int
        The pid of the parent the caller must not outlive (``os.getppid()`` in the child, or the
        parent's ``os.getpid()`` passed in, which also catches a parent that died before this call).
    signum : int, default SIGTERM
    """
    if os.getpid() in _guarded:
        return
    _guarded.add(os.getpid())
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # best effort: the thread below still watches
    if os.getppid() != parent_pid:  # the parent died before the guard was set
        os.kill(os.getpid(), signum)

    def _watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(_POLL_S)
        os.kill(os.getpid(), signum)

    threading.Thread(target=_watch, name="die-with-parent", daemon=True).start()


def pool_worker_init(parent_pid: int) -> None:
    """Initializer of a pool worker process: the parent alone handles Ctrl-C; end when the parent dies.

    The worker ignores SIGINT (the terminal sends Ctrl-C to the whole process group; the parent
    cancels the queued work and ends the workers), takes SIGTERM's default action (it ends at
    once), and dies with its parent (:func:`die_with_parent`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)


def guard_pool_worker() -> None:
    """In a worker of a pool made elsewhere: end when the parent dies; once. Nothing in a process that is not one.

    For a pool whose initializer cannot be chosen here: its work function calls this first. A
    forked worker inherits its parent's SIGTERM handler (:func:`sigterm_raises`), which would
    raise :class:`Terminated` into the pool's loop; the worker takes SIGTERM's default action
    instead. Ctrl-C is left as it is: the pool's owner waits for its workers.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None and os.getpid() not in _guarded:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        die_with_parent(parent.pid)
