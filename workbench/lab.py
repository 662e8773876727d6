"""JupyterLab on the workbench notebooks, with this Python environment as their kernel (``workbench lab``).

The lab never changes the checkout: by default it serves *working copies* of the package's
notebooks in ``runs/lab/`` under the project directory (:func:`working_copies`; ``runs/`` is not
tracked), made only for notebooks missing there, so a save (JupyterLab autosaves) writes outputs
and ``.ipynb_checkpoints/`` into the copies and never into the committed, output-free
``notebooks/*.ipynb``. A folder of one's own (``--dir``) is served as it is.

The notebooks name the kernel ``python3``. A ``python3`` kernelspec elsewhere on the machine (a
user-level one pointing at another Python) would otherwise win, so :func:`start_lab` writes its
own ``python3`` kernelspec for ``sys.executable`` into a temporary folder put first on
``JUPYTER_PATH``: the notebooks always run where the package is installed. Its kernels start in
the *project directory* (where ``workbench lab`` was started, by default), so relative paths in a
notebook — ``runs/demo/...`` — mean what they mean on the command line and under papermill.

The server runs in a session of its own (Ctrl-C in the terminal reaches only ``workbench lab``,
which stops it) and ends with the process that started it, even one killed with SIGKILL
(:func:`workbench._process.die_with_parent`): no server is left listening with a valid token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from workbench._io import atomic_write
from workbench._kernels import SERVER_OPTIONS
from workbench._process import die_with_parent

__all__ = [
    "KERNEL_DISPLAY_NAME",
    "Lab",
    "check_port",
    "default_notebooks_dir",
    "free_port",
    "running_lab",
    "start_lab",
    "working_copies",
    "write_kernelspec",
]

KERNEL_DISPLAY_NAME = "Python 3 (workbench)"
WORKING_DIR = Path("runs") / "lab"  # the working copies, relative to the project directory
_PACKAGE_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# `python -m jupyterlab` that ends on SIGTERM (a clean shutdown, kernels included) when its parent dies
_SERVE = (
    "import sys; from workbench.lab import _serve_until_parent_dies; "
    "_serve_until_parent_dies(int(sys.argv.pop(1)))"
)


@dataclass
class Lab:
    """A running JupyterLab server.

    Attributes
    ----------
    url : str
        The lab's address with its token, ``http://127.0.0.1:<port>/lab?token=<token>``.
    port : int
    token : str
    root_dir : Path
        The folder the lab serves: the working copies (``<project_dir>/runs/lab``), or ``--dir``.
    project_dir : Path
        Where kernels start.
    process : subprocess.Popen
    originals : Path or None
        The notebooks the working copies come from; ``None`` when ``root_dir`` is served as it is.
    copied : tuple of str
        The working copies made by this start (the notebooks that were missing from ``root_dir``).
    """

    url: str
    port: int
    token: str
    root_dir: Path
    project_dir: Path
    process: subprocess.Popen
    _kernel_dir: Path
    originals: Path | None = None
    copied: tuple[str, ...] = ()

    def notebook_url(self, name: str) -> str:
        """The address that opens notebook ``name`` (a path relative to ``root_dir``)."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{name}?token={self.token}"

    def describe(self) -> str:
        """What the lab serves and where its kernels start, for the console."""
        if self.originals is None:
            served = f"JupyterLab is serving {self.root_dir} as it is."
        else:
            made = f" (copied now: {', '.join(self.copied)})" if self.copied else ""
            served = (
                f"JupyterLab is serving working copies of the workbench notebooks in {self.root_dir}{made}. "
                f"Saves go there; the originals in {self.originals} are never changed. Delete a working copy "
                "to get a fresh one on the next start."
            )
        return f"{served}\nKernels start in {self.project_dir}."

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server and its kernels down (SIGTERM, then SIGKILL after ``timeout`` s); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self._kernel_dir, ignore_errors=True)


def default_notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the checkout the package is installed from (``pip install -e .``).

    These are the committed originals: the lab serves :func:`working_copies` of them, never them.

    Raises
    ------
    FileNotFoundError
        When the package is not installed from a checkout that has it (pass ``--dir`` then).
    """
    path = _PACKAGE_NOTEBOOKS
    if not (path / "01_loss_explorer.ipynb").is_file():
        raise FileNotFoundError(
            f"No workbench notebooks at {path}: the package is not installed from a checkout "
            "(pip install -e .). Pass the notebooks folder with --dir."
        )
    return path


def working_copies(project_dir: Path, originals: Path | None = None) -> tuple[Path, tuple[str, ...]]:
    """Copy the notebooks missing from ``project_dir/runs/lab`` there; keep the ones already there.

    A working copy the user has run or edited is never overwritten. The copies drop their jupytext
    pairing (``metadata.jupytext.formats``), so saving one writes that ``.ipynb`` alone, not a
    ``.py`` beside it.

    Parameters
    ----------
    project_dir : Path
        The project directory; the copies go to its ``runs/lab/``.
    originals : Path, optional
        The folder of ``*.ipynb`` copied from; default :func:`default_notebooks_dir`.

    Returns
    -------
    folder : Path
        ``project_dir/runs/lab`` (resolved).
    copied : tuple of str
        The names of the notebooks copied now, sorted.

    Raises
    ------
    FileNotFoundError
        When ``originals`` holds no notebook.
    """
    originals = default_notebooks_dir() if originals is None else Path(originals).resolve()
    sources = sorted(originals.glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"No notebooks (*.ipynb) in {originals} to make working copies of.")
    folder = (Path(project_dir) / WORKING_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sources:
        if not (folder / source.name).exists():
            notebook = json.loads(source.read_text(encoding="utf-8"))
            pairing = notebook.get("metadata", {}).get("jupytext", {})
            pairing.pop("formats", None)
            if not pairing:
                notebook.get("metadata", {}).pop("jupytext", None)
            with atomic_write(folder / source.name) as tmp:  # a start killed mid-copy leaves no half notebook
                tmp.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            copied.append(source.name)
    return folder, tuple(copied)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_kernelspec(directory: Path, project_dir: Path) -> Path:
    """Write a ``python3`` kernelspec for this interpreter under ``directory/kernels/python3``.

    Its kernels run ``sys.executable`` and start in ``project_dir``. Returns the kernel.json path.
    """
    spec_dir = Path(directory) / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    from ipykernel.kernelspec import get_kernel_dict

    spec = {
        **get_kernel_dict(),  # ipykernel's own: its metadata says what it supports (debugger, CurveZMQ encryption)
        "argv": [
            sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            f"--IPKernelApp.exec_lines=__import__('os').chdir({str(Path(project_dir).resolve())!r})",
        ],
        "display_name": KERNEL_DISPLAY_NAME,
    }
    path = spec_dir / "kernel.json"
    path.write_text(json.dumps(spec, indent=1))
    return path


def start_lab(
    root_dir: Path | None = None,
    *,
    project_dir: Path | None = None,
    port: int | None = None,
    token: str | None = None,
    open_browser: bool = False,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    log: IO | None = None,
    timeout: float = 120.0,
) -> Lab:
    """Start JupyterLab on ``root_dir`` and return once it answers.

    Parameters
    ----------
    root_dir : Path, optional
        A folder of one's own notebooks, served as it is. Default: the :func:`working_copies` of the
        package's notebooks in ``project_dir/runs/lab`` (made where missing).
    project_dir : Path, optional
        Where kernels start (and the working copies live); default the current directory.
    port : int, optional
        Default: a free port. The server listens on 127.0.0.1 only; a given port must be free.
    token : str, optional
        Default: a random one.
    open_browser : bool
        Let JupyterLab open the system browser.
    extra_args : tuple of str
        More JupyterLab options (``--LabApp.…``).
    env : dict, optional
        Extra environment variables for the server and its kernels.
    log : file, optional
        Where the server's output goes (default: this process's stdout/stderr).
    timeout : float
        Seconds to wait for the server to answer.

    Raises
    ------
    FileNotFoundError
        When ``root_dir`` is not a folder, or (no ``root_dir``) the package has no notebooks.
    ValueError
        When ``root_dir`` is the package's committed ``notebooks/`` (saves would change the
        checkout), or ``port`` is not an integer from 1 to 65535.
    OSError
        When ``port`` is in use (or needs privileges); the message names it.
    RuntimeError
        When the server exits or does not answer within ``timeout``.
    """
    port = free_port() if port is None else check_port(port)
    project_dir = Path(project_dir).resolve() if project_dir is not None else Path.cwd()
    if root_dir is None:
        originals = default_notebooks_dir()
        root_dir, copied = working_copies(project_dir, originals)
    else:
        root_dir, originals, copied = _own_folder(root_dir), None, ()
    token = secrets.token_hex(24) if token is None else token
    kernel_dir = Path(tempfile.mkdtemp(prefix="workbench-lab-"))
    write_kernelspec(kernel_dir, project_dir)
    server_env = {**os.environ, **(env or {})}
    server_env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernel_dir), server_env.get("JUPYTER_PATH")]))
    command = [
        sys.executable, "-c", _SERVE, str(os.getpid()),
        f"--ServerApp.root_dir={root_dir}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={open_browser}",
        *SERVER_OPTIONS,
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        *extra_args,
    ]
    # Its own session: Ctrl-C reaches only this process, which stops the server (no y/n prompt from Jupyter).
    process = subprocess.Popen(command, env=server_env, stdout=log, stderr=subprocess.STDOUT if log else None,
                               start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}/lab?token={token}", port, token, root_dir, project_dir, process, kernel_dir,
              originals, copied)
    try:
        _wait_until_answering(lab, timeout)
    except BaseException:
        lab.stop()
        raise
    return lab


def _own_folder(root_dir: Path) -> Path:
    """``root_dir`` resolved, if it is a folder the lab may serve as it is."""
    root_dir = Path(root_dir).resolve()
    if not root_dir.is_dir():
        raise FileNotFoundError(f"No such notebooks folder: {root_dir}")
    if root_dir == _PACKAGE_NOTEBOOKS:
        raise ValueError(
            f"Expected the notebooks folder (--dir) to be one of your own, but got the workbench's committed "
            f"notebooks {root_dir}: saving there would change the checkout. Leave out --dir to work on copies "
            f"in {WORKING_DIR}/ of the folder you start the lab from."
        )
    return root_dir


def check_port(port: int) -> int:
    """``port`` if JupyterLab can listen on it at 127.0.0.1 now; else an error naming it.

    Raises
    ------
    ValueError
        ``port`` is not an integer from 1 to 65535 (JupyterLab would silently take another).
    OSError
        Something listens on it already, or it needs privileges.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"Expected the port (--port) to be an integer from 1 to 65535, but got {port!r}.")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise OSError(
                f"Port {port} on 127.0.0.1 cannot be used ({error.strerror}); choose another --port, or leave "
                "--port out for a free one."
            ) from None
    return port


def _serve_until_parent_dies(parent_pid: int) -> None:
    """Run JupyterLab (``sys.argv[1:]`` its options) in this process; it gets SIGTERM when ``parent_pid`` dies."""
    die_with_parent(parent_pid)
    from jupyterlab.labapp import main

    sys.exit(main())


@contextmanager
def running_lab(root_dir: Path | None = None, **options) -> Iterator[Lab]:
    """:func:`start_lab` as a context manager: the server and its kernels are always shut down."""
    lab = start_lab(root_dir, **options)
    try:
        yield lab
    finally:
        lab.stop()


def _wait_until_answering(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = f"http://127.0.0.1:{lab.port}/api/status?token={lab.token}"
    while True:
        if (code := lab.process.poll()) is not None:
            raise RuntimeError(f"JupyterLab exited with status {code} before answering on port {lab.port} (see its log).")
        try:
            with urllib.request.urlopen(status, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterLab did not answer on port {lab.port} within {timeout:.0f} s.")
        time.sleep(0.25)
