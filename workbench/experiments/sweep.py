"""Sweeps: one papermill execution of a notebook per point of a parameter grid.

A sweep file (YAML) names the notebook, a grid and fixed parameters::

    name: phantoms-losses                      # runs go to <out>/<name>/<run-id>/
    notebook: ../notebooks/02_train_evaluate.ipynb   # relative to the sweep file
    out: ../runs                               # optional, default "runs" next to the sweep file
    kernel: python3                            # optional
    grid:                                      # every combination is one run
      loss: [dc_ce, blob, cc]
      alpha: [1]
      beta: [1, 2]
      seed: [0, 1]
      fold: [0]
    exclude:                                   # optional: grid points left out (partial matches)
      - {loss: dc_ce, beta: 2}                 # e.g. a loss that has no beta
    fixed:                                     # the same for every run
      epochs: 2
      patch_size: [64, 64, 64]

Each run executes ``papermill NOTEBOOK <run-dir>/notebook.ipynb`` with the run's grid values,
the fixed parameters and ``out_dir=<run-dir>``, in the run folder. The notebook writes
``<run-dir>/run.json`` with ``"status": "complete"`` when it finishes (and its tables, e.g.
``per_case.parquet``). A run is *done* exactly when that file says complete; a sweep started
again skips the done runs and redoes every other one, so killing a sweep loses no finished run.
A run that raises (or ends without a complete ``run.json``) gets a ``run.json`` written by the
runner with ``"status": "failed"``, the error and the traceback; the other runs go on.

Before anything runs, every ``grid`` and ``fixed`` key must be a parameter of the notebook (a
value for any other name would be ignored, and the run reported complete with the default). One
sweep at a time holds a sweep folder (its ``sweep.lock``: pid, host, start time); a second one
refuses to start, naming the holder. Ctrl-C or SIGTERM cancels the queued runs, ends the running
ones (their pool workers and notebook kernels), marks them ``interrupted`` in their ``run.json``
and in ``sweep.json``, and re-raises; started again, the sweep redoes them.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import os
import re
import signal
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import yaml

from workbench._process import child_pids, pid_alive, pool_worker_init, sigterm_raises
from workbench._yaml import load_yaml
from workbench.runs.record import (
    PROGRESS_LOG,
    RUN_JSON,
    is_complete,
    mark_interrupted,
    package_versions,
    read_run,
    record_failure,
    utc_now,
    write_json,
)

__all__ = [
    "LOCK_FILE",
    "RunSpec",
    "SweepLockedError",
    "SweepResult",
    "SweepSpec",
    "check_parameters",
    "load_sweep",
    "run_sweep",
    "threads_per_run",
]

LOCK_FILE = "sweep.lock"
"""Held in the sweep folder while a sweep runs on it: JSON with ``pid``, ``host`` and ``started``."""

_VERSIONED_PACKAGES = ("workbench", "papermill", "torch", "numpy", "pandas", "distributed")
_KNOWN_FIELDS = ("name", "notebook", "out", "kernel", "grid", "exclude", "fixed")
_RESERVED = ("out_dir",)
_SHORT = {"alpha": "a", "beta": "b", "seed": "s", "fold": "f"}
_TICK_S = 5.0
_IOPUB_TIMEOUT_S = 120
"""Seconds a notebook cell may take to deliver its last output after it finished (nbclient's ``iopub_timeout``)."""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STOP_WAIT_S = 10.0


class SweepLockedError(FileExistsError):
    """Another sweep holds the sweep folder (its :data:`LOCK_FILE`); the message names its pid, host and start."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep.

    Attributes
    ----------
    name : str
        Sweep name; the runs go to ``out / name``.
    notebook : Path
        The notebook every run executes (absolute).
    out : Path
        Folder that holds the sweep folder (absolute).
    grid : dict of str to list
        Parameter name → values; the runs are the Cartesian product, in key order.
    exclude : list of dict
        Grid points left out: a point is dropped when it equals every value of one entry.
    fixed : dict
        Parameters given to every run.
    kernel : str
        Jupyter kernel name (default ``"python3"``).
    source : str
        The sweep file's text, kept in ``sweep.json``.
    """

    name: str
    notebook: Path
    out: Path
    grid: dict[str, list[Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    kernel: str = "python3"
    exclude: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @property
    def sweep_dir(self) -> Path:
        return self.out / self.name

    def runs(self) -> list[RunSpec]:
        """The grid's runs, in grid order (first key slowest)."""
        keys = list(self.grid)
        runs = []
        for values in itertools.product(*(self.grid[key] for key in keys)):
            point = dict(zip(keys, values))
            if any(all(point[key] == value for key, value in entry.items()) for entry in self.exclude):
                continue
            runs.append(RunSpec(run_id(point), point, {**self.fixed, **point}))
        ids = [run.run_id for run in runs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"Expected `grid` to give distinct run ids, but got duplicates: {duplicates}")
        return runs


@dataclass(frozen=True)
class RunSpec:
    """One run: its id (the folder name), its grid values and all its notebook parameters."""

    run_id: str
    point: dict[str, Any]
    parameters: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did: run id → final status, and which runs it skipped as done."""

    sweep_dir: Path
    status: dict[str, str]
    skipped: list[str]

    @property
    def failed(self) -> list[str]:
        return [run for run, status in self.status.items() if status != "complete"]


def run_id(point: Mapping[str, Any]) -> str:
    """A readable, deterministic folder name from a run's grid values.

    ``loss`` contributes its value, ``alpha``/``beta``/``seed``/``fold`` a letter and the value,
    other keys ``key`` and the value; characters outside ``[A-Za-z0-9._=+]`` become ``_``.

    Examples
    --------
    >>> run_id({"loss": "blob", "alpha": 1, "beta": 2, "seed": 0, "fold": 3})
    'blob-a1-b2-s0-f3'
    >>> run_id({"lr": 0.01, "patch_size": [64, 64, 64]})
    'lr0.01-patch_size64_64_64'
    """
    parts = []
    for key, value in point.items():
        text = "_".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        prefix = "" if key == "loss" else _SHORT.get(key, key)
        parts.append(re.sub(r"[^A-Za-z0-9._=+]", "_", prefix + text))
    return "-".join(parts) or "run"


def _check_exclude(exclude: Any, grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The ``exclude`` entries: mappings of grid keys to one of their grid values each."""
    if exclude is None:
        return []
    if not isinstance(exclude, list) or not all(isinstance(entry, dict) and entry for entry in exclude):
        raise ValueError(f"Expected `exclude` to be a list of non-empty mappings of grid key → value, but got {exclude!r}.")
    for entry in exclude:
        for key, value in entry.items():
            if key not in grid or value not in grid[key]:
                raise ValueError(
                    f"`exclude` entry {entry!r}: {key!r} = {value!r} is not a value of the grid "
                    f"({key!r}: {grid.get(key, 'not a grid key')})."
                )
    return [{str(key): value for key, value in entry.items()} for entry in exclude]


def load_sweep(path: str | os.PathLike[str], **overrides: Any) -> SweepSpec:
    """Read and check a sweep file (YAML or JSON).

    Parameters
    ----------
    path : str or PathLike
        The sweep file. Relative ``notebook`` and ``out`` paths are taken from its folder.
    **overrides
        Fields that replace the file's (e.g. ``out=...``).

    Returns
    -------
    SweepSpec

    Raises
    ------
    FileNotFoundError
        If the sweep file or the notebook does not exist.
    ValueError
        If a field is missing, unknown or of the wrong type; the message names the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Sweep file {path} does not exist.")
    source = path.read_text(encoding="utf-8")
    try:
        document = load_yaml(source, path)
    except yaml.YAMLError as error:
        raise ValueError(f"Sweep file {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"Expected sweep file {path} to hold a mapping, but got {type(document).__name__}.")
    document.update(overrides)
    unknown = sorted(set(document) - set(_KNOWN_FIELDS))
    if unknown:
        raise ValueError(f"Unknown sweep field(s) {unknown}; known fields: {list(_KNOWN_FIELDS)}.")
    for key in ("name", "notebook", "grid"):
        if key not in document:
            raise ValueError(f"Sweep file {path} lacks the required field `{key}`.")
    name = document["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"Expected `name` to be a folder name (letters, digits, '.', '_', '-'), but got {name!r}.")
    for key in ("notebook", "out", "kernel"):
        if key in document and not isinstance(document[key], (str, os.PathLike)):
            raise ValueError(f"Expected `{key}` to be a string, but got {document[key]!r}.")
    grid = document["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"Expected `grid` to be a non-empty mapping of parameter → list of values, but got {grid!r}.")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"Expected `grid.{key}` to be a non-empty list of values, but got {values!r}.")
    fixed = document.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ValueError(f"Expected `fixed` to be a mapping of parameter → value, but got {fixed!r}.")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"Parameter(s) {both} are in both `grid` and `fixed`; give each in one place.")
    reserved = sorted(set(_RESERVED) & (set(grid) | set(fixed)))
    if reserved:
        raise ValueError(f"Parameter(s) {reserved} are set by the sweep runner; remove them from the sweep file.")
    base = path.resolve().parent
    notebook = (base / document["notebook"]).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"`notebook`: {notebook} does not exist.")
    spec = SweepSpec(
        name=name,
        notebook=notebook,
        out=(base / document.get("out", "runs")).resolve(),
        grid={str(key): list(values) for key, values in grid.items()},
        fixed={str(key): value for key, value in fixed.items()},
        kernel=str(document.get("kernel", "python3")),
        source=source,
        exclude=_check_exclude(document.get("exclude"), grid),
    )
    spec.runs()  # duplicate run ids are an error now, not after half the sweep ran
    return spec


def run_sweep(
    spec: SweepSpec,
    *,
    workers: int = 1,
    dask: Any = None,
    progress: bool = True,
) -> SweepResult:
    """Execute every unfinished run of ``spec``; skip the done ones.

    Parameters
    ----------
    spec : SweepSpec
    workers : int
        Runs at a time: processes of the local pool, or workers of ``dask="local"``.
    dask : None, "local", str or distributed.Client
        None: a local process pool. ``"local"``: a ``distributed.LocalCluster`` with ``workers``
        single-threaded workers. Any other string: the address of a running scheduler
        (``"tcp://host:8786"``). A ``distributed.Client`` (e.g. of a dask-jobqueue
        ``SLURMCluster``) is used as it is.
    progress : bool
        Show a progress bar over the runs.

    Returns
    -------
    SweepResult
        The final status of every run (``"complete"`` or ``"failed"``), and the runs skipped.

    Raises
    ------
    ValueError
        ``workers`` is not a positive integer, or a ``grid`` / ``fixed`` key is not a parameter
        of the notebook (:func:`check_parameters`).
    SweepLockedError
        Another sweep runs on the sweep folder.
    KeyboardInterrupt
        Ctrl-C, or SIGTERM (:class:`workbench._process.Terminated`), after the queued runs were
        cancelled, the running ones ended and marked ``interrupted``.

    Notes
    -----
    Writes ``<sweep_dir>/sweep.json``: the sweep file's text, the resolved grid, the runs (id and
    parameters), package versions, and when the sweep ended the count of runs per status (or,
    when interrupted, when and which runs). The sweep holds ``<sweep_dir>/sweep.lock`` while it
    runs; a lock left by a sweep that no longer runs on this host is taken over with a warning.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"Expected `workers` to be a positive integer, but got {workers!r}.")
    runs = spec.runs()
    check_parameters(spec)
    spec.sweep_dir.mkdir(parents=True, exist_ok=True)
    with sigterm_raises(), _sweep_lock(spec.sweep_dir):
        return _run_locked(spec, runs, workers, dask, progress)


def _run_locked(spec: SweepSpec, runs: list[RunSpec], workers: int, dask: Any, progress: bool) -> SweepResult:
    """:func:`run_sweep` once it holds the sweep folder."""
    sweep_dir = spec.sweep_dir
    info: dict[str, Any] = {
        "name": spec.name,
        "notebook": str(spec.notebook),
        "kernel": spec.kernel,
        "grid": spec.grid,
        "fixed": spec.fixed,
        "runs": [{"run_id": run.run_id, "point": run.point, "parameters": run.parameters} for run in runs],
        "sweep_file": spec.source,
        "executor": "process pool" if dask is None else f"dask ({dask if isinstance(dask, str) else type(dask).__name__})",
        "workers": workers,
        "started": utc_now(),
        "versions": package_versions(_VERSIONED_PACKAGES),
    }
    write_json(sweep_dir / "sweep.json", info)
    status = {run.run_id: "complete" for run in runs if is_complete(sweep_dir / run.run_id)}
    skipped = list(status)
    todo = [run for run in runs if run.run_id not in status]
    jobs = [(str(spec.notebook), str(sweep_dir / run.run_id), run.parameters, spec.kernel) for run in todo]
    bar = _progress_bar(len(runs), len(skipped), spec.name, progress)
    tail = _EpochLines(sweep_dir, [run.run_id for run in todo], bar.write if progress else None)
    try:
        with threads_per_run(workers if dask in (None, "local") else 1), \
                contextlib.closing(_execute_all(jobs, workers, dask, tail.poll)) as outcomes:
            for run_id_, outcome in outcomes:
                tail.poll()
                status[run_id_] = outcome
                bar.update(1)
                bar.set_postfix(failed=sum(s != "complete" for s in status.values()))
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the executor ended the running runs
        error = f"{type(stop).__name__}: {stop or 'Ctrl-C'}"
        stopped = [run.run_id for run in todo if mark_interrupted(sweep_dir / run.run_id, error=error)]
        info.update(interrupted=utc_now(), interrupted_runs=stopped)
        write_json(sweep_dir / "sweep.json", info)
        raise
    finally:
        bar.close()
    status = {run.run_id: status[run.run_id] for run in runs}
    info.update(finished=utc_now(), counts={s: list(status.values()).count(s) for s in sorted(set(status.values()))})
    write_json(sweep_dir / "sweep.json", info)
    return SweepResult(sweep_dir, status, skipped)


def check_parameters(spec: SweepSpec) -> None:
    """Raise ``ValueError`` if a ``grid`` or ``fixed`` key is not a parameter of the notebook.

    The notebook's parameters are the names its ``parameters`` cell assigns
    (:func:`papermill.inspect_notebook`). Papermill would inject any other name after that cell,
    where the notebook never reads it: the run would complete with the default.
    """
    import papermill

    known = list(papermill.inspect_notebook(str(spec.notebook)))
    for part, keys in (("grid", spec.grid), ("fixed", spec.fixed)):
        unknown = [key for key in keys if key not in known]
        if unknown:
            raise ValueError(
                f"`{part}` key(s) {unknown} of sweep {spec.name!r} are not parameters of notebook {spec.notebook} "
                f"(its parameters: {known}); a value for them would be ignored. Fix the name or add it to the "
                "notebook's parameters cell."
            )


@contextlib.contextmanager
def _sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold ``sweep_dir/sweep.lock`` for the block; refuse a live holder, take a dead one's over."""
    path = sweep_dir / LOCK_FILE
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now()}
    draft = sweep_dir / f".{LOCK_FILE}.{os.getpid()}"
    draft.write_text(json.dumps(mine) + "\n", encoding="utf-8")
    try:
        while True:
            try:
                os.link(draft, path)  # creates the lock with its content at once, or fails if it exists
                break
            except FileExistsError:
                _clear_stale_lock(path)
    finally:
        draft.unlink(missing_ok=True)
    try:
        yield
    finally:
        if _lock_holder(path) == mine:
            path.unlink(missing_ok=True)


def _lock_holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _clear_stale_lock(path: Path) -> None:
    """Remove ``path`` if its holder no longer runs on this host (with a warning); else raise SweepLockedError."""
    holder = _lock_holder(path)
    pid, host = holder.get("pid"), holder.get("host")
    if not (host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)):
        raise SweepLockedError(
            f"Sweep folder {path.parent} is in use by another sweep: pid {pid} on host {host}, started "
            f"{holder.get('started')} (lock file {path}). Wait for it to end or stop it; if it no longer runs, "
            f"delete {path}."
        )
    warnings.warn(
        f"Took over the lock of sweep folder {path.parent} from pid {pid} on host {host} (started "
        f"{holder.get('started')}), which no longer runs.",
        stacklevel=5,
    )
    path.unlink(missing_ok=True)


def _progress_bar(total: int, done: int, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # on stdout, where the runs' epoch lines go too (tqdm.write clears and redraws the bar around them)
    return tqdm(total=total, initial=done, desc=f"sweep {name}", unit="run", disable=not enabled, file=sys.stdout)


def _execute_all(
    jobs: Sequence[tuple[str, str, dict[str, Any], str]], workers: int, dask: Any, tick: Callable[[], None]
) -> Iterator[tuple[str, str]]:
    """Yield ``(run_id, status)`` as runs finish, on the chosen executor; call ``tick`` every few
    seconds while they run. Closed early (an interrupt, in here or in the caller), it cancels the
    queued runs and ends the running ones."""
    if not jobs:
        return
    if dask is None:
        yield from _execute_in_pool(jobs, workers, tick)
        return
    from distributed import wait as dask_wait

    client, own = _dask_client(dask, workers)
    pending: set[Any] = set()
    try:
        pending = {
            client.submit(execute_run, *job, key=f"run-{Path(job[1]).name}-{time.time_ns()}", pure=False) for job in jobs
        }
        while pending:
            try:
                dask_wait(list(pending), timeout=_TICK_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            tick()
            done = {future for future in pending if future.done()}
            pending -= done
            for future in done:
                yield future.result()
    except BaseException:
        client.cancel(list(pending))
        raise
    finally:
        for thing in own:
            thing.close()


def _execute_in_pool(
    jobs: Sequence[tuple[str, str, dict[str, Any], str]], workers: int, tick: Callable[[], None]
) -> Iterator[tuple[str, str]]:
    """:func:`_execute_all` on a local process pool whose workers leave Ctrl-C to this process and die with it."""
    before = set(active_children())
    # spawn: a fresh interpreter per worker, no inherited threads or open kernels
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=get_context("spawn"),
        initializer=pool_worker_init, initargs=(os.getpid(),),
    )
    started: list[Any] = []
    try:
        pending = {pool.submit(execute_run, *job) for job in jobs}
        started = [child for child in active_children() if child not in before]  # spawned on submit
        while pending:
            done, pending = wait(pending, timeout=_TICK_S, return_when=FIRST_COMPLETED)
            tick()
            for future in done:
                yield future.result()
    except BaseException:
        _stop_pool(pool, started)
        raise
    finally:
        pool.shutdown(wait=True)


def _stop_pool(pool: ProcessPoolExecutor, workers: Sequence[Any]) -> None:
    """Cancel the queued runs, end the workers (SIGTERM, SIGKILL after a while) and then their notebook kernels."""
    pool.shutdown(wait=False, cancel_futures=True)
    kernels = [pid for worker in workers if worker.pid is not None for pid in child_pids(worker.pid)]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(_STOP_WAIT_S)
        if worker.is_alive():
            worker.kill()
            worker.join()
    for pid in kernels:  # their parent poller would end them within a second or so; do not wait for it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WAIT_S
    while any(pid_alive(pid) for pid in kernels) and time.monotonic() < deadline:
        time.sleep(0.05)


def _dask_client(dask: Any, workers: int) -> tuple[Any, list[Any]]:
    """The ``distributed.Client`` of ``dask`` and the objects to close afterwards (those made here)."""
    from distributed import Client, LocalCluster

    if isinstance(dask, str) and dask == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
        return client, [client, cluster]
    if isinstance(dask, str):
        client = Client(dask)
        return client, [client]
    if isinstance(dask, Client):
        return dask, []
    raise ValueError(f"Expected `dask` to be None, 'local', a scheduler address or a distributed.Client, but got {dask!r}.")


class _EpochLines:
    """Relays the per-epoch lines (``train/progress.log``) of a sweep's running runs, prefixed with the run id."""

    def __init__(self, sweep_dir: Path, run_ids: Sequence[str], write: Callable[[str], None] | None) -> None:
        self._logs = {run_id: sweep_dir / run_id / "train" / PROGRESS_LOG for run_id in run_ids}
        self._seen = dict.fromkeys(run_ids, 0)
        self._write = write

    def poll(self) -> None:
        if self._write is None:
            return
        for run_id, path in self._logs.items():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError:
                continue
            for line in lines[self._seen[run_id]:]:
                self._write(f"{run_id}: {line}")
            self._seen[run_id] = len(lines)


@contextlib.contextmanager
def threads_per_run(runs_at_once: int) -> Iterator[None]:
    """Share this machine's cores between runs executing side by side.

    Sets ``OMP_NUM_THREADS`` (torch) and ``NUMBA_NUM_THREADS`` (the fused loss kernels) to
    ``cores // runs_at_once`` for the processes started inside, unless the user set them. Without
    it each run starts a thread per core, and numba's OpenMP threads spin-wait on cores the other
    runs need: measured 64 s against 17 s per epoch for two runs on 2 cores (benchmarks/RESULTS.md).
    """
    names = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
    chosen = {name: str(max(1, (os.cpu_count() or 1) // max(1, runs_at_once))) for name in names if name not in os.environ}
    os.environ.update(chosen)
    try:
        yield
    finally:
        for name in chosen:
            os.environ.pop(name, None)


def execute_run(notebook: str, run_dir: str, parameters: dict[str, Any], kernel: str = "python3") -> tuple[str, str]:
    """Execute one run with papermill; return ``(run_id, status)``. Never raises for a failed run.

    The executed notebook is kept as ``run_dir/notebook.ipynb``. ``run.json`` says ``running``
    (with ``started``, ``parameters``, ``notebook`` and the ``pid`` of this process) until the
    notebook replaces it, which also removes a stale one. When papermill raises, or the notebook
    ends without a complete ``run.json``, this writes ``run.json`` with ``"status": "failed"``,
    ``error``, ``traceback``, ``parameters`` and ``timings``.
    """
    import papermill

    from workbench._kernels import EncryptedKernelManager

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    started, start = utc_now(), time.perf_counter()
    running = {"status": "running", "started": started, "parameters": parameters, "notebook": notebook, "pid": os.getpid()}
    write_json(folder / RUN_JSON, running)
    error = tb = None
    try:
        # In an empty context: jupyter_core keeps its event loop in a context variable, and the threads
        # of an in-process dask cluster inherit the caller's; two runs would then drive one loop at once.
        contextvars.Context().run(
            papermill.execute_notebook,
            notebook,
            str(folder / "notebook.ipynb"),
            parameters={**parameters, "out_dir": str(folder)},
            kernel_name=kernel,
            cwd=str(folder),
            progress_bar=False,
            log_output=False,
            kernel_manager_class=EncryptedKernelManager,  # no plain-TCP warning per run: the traffic is encrypted
            # nbclient waits 4 s for a cell's last output by default; a plotly cell on cores busy with
            # another run's training took longer, and papermill turns that wait into a failed run
            iopub_timeout=_IOPUB_TIMEOUT_S,
        )
    except Exception as exc:  # a failed run is recorded; the sweep goes on
        error, tb = _describe(exc)
    if error is None and read_run(folder).get("status") != "complete":
        found = read_run(folder).get("status")
        error = (
            "The notebook finished without writing run.json."
            if found in (None, "running")
            else f"The notebook finished but run.json says status {found!r}, not 'complete'."
        )
        tb = ""
    if error is None:
        return folder.name, "complete"
    record_failure(
        folder, error=error, traceback=tb, parameters=parameters, notebook=notebook, started=started,
        timings={"total_s": time.perf_counter() - start}, versions=package_versions(_VERSIONED_PACKAGES),
    )
    return folder.name, "failed"


def _describe(exc: BaseException) -> tuple[str, str]:
    """Error line and traceback text; for a cell error, the kernel's traceback (ANSI colours removed)."""
    ename = getattr(exc, "ename", None)
    if ename is not None:  # papermill.PapermillExecutionError
        cell_tb = "\n".join(getattr(exc, "traceback", None) or [])
        return f"{ename}: {getattr(exc, 'evalue', '')}", _ANSI.sub("", cell_tb)
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))
