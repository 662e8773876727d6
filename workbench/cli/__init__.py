"""The ``workbench`` command line: one subcommand per job, each with ``--help``.

Each subcommand is a pair of functions in the module of its kind of job: ``add_<command>(commands)``
adds its parser to the subparsers and sets ``run=run_<command>``, which runs it on the parsed
arguments and returns the exit status. Heavy imports stay inside the ``run_*`` functions, so
``workbench --help`` is fast.

- :mod:`workbench.cli.data`: ``summary``, ``phantoms``, ``manifest brats-mets``, ``instances``, ``perturb``
- :mod:`workbench.cli.evaluate`: ``evaluate`` (with ``--preset``: challenge scoring)
- :mod:`workbench.cli.training`: ``train``, ``predict``
- :mod:`workbench.cli.experiments`: ``demo``, ``sweep``, ``report``
- :mod:`workbench.cli.viewers`: ``audit``, ``lab``
- :mod:`workbench.cli.nnunet`: ``export-nnunet``, ``nnunet-trainers``

A user error (a ``ValueError`` such as ``ConfigError`` or ``ManifestError``, an ``OSError`` such
as a missing or unwritable path, a :class:`CommandError`) ends in one line
``workbench <command>: error: ...`` and exit status 1; a usage error (argparse) in status 2.
Ctrl-C prints one line and exits 130, SIGTERM 143, after the command's clean-up (``run.json``
says ``interrupted``, child processes end). ``workbench --debug <command>`` shows the traceback
instead. Warnings are printed as one line ``workbench <command>: warning: ...``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from workbench._process import Terminated, sigterm_raises
from workbench.cli._options import deprecation_warnings

__all__ = ["CommandError", "main"]


class CommandError(Exception):
    """A problem the user can fix that is neither a bad value nor a path (e.g. no display): one line, exit 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status (module docstring)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    prefix = f"workbench {args.command}"
    with _one_line_warnings(prefix), sigterm_raises():
        for message in deprecation_warnings(args):
            warnings.warn(message, FutureWarning, stacklevel=1)
        try:
            return args.run(args) or 0
        except (KeyboardInterrupt, ValueError, OSError, CommandError) as error:
            if args.debug:
                raise
            print(f"{prefix}: {_one_line(error)}", file=sys.stderr)
            if isinstance(error, KeyboardInterrupt):
                return 143 if isinstance(error, Terminated) else 130
            return 1


@contextmanager
def _one_line_warnings(prefix: str) -> Iterator[None]:
    """Within the block, a warning prints as ``<prefix>: warning: <message>`` (warning filters and
    ``pytest.warns`` still apply: only the formatting changes)."""
    before = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"{prefix}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = before


def _one_line(error: BaseException) -> str:
    """What :func:`main` prints after ``workbench <command>:`` for an error it ends on."""
    if isinstance(error, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, OSError) and error.filename is not None:  # raised by the system: name the path
        paths = " and ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        return f"error: cannot use {paths}: {error.strerror}. Check the path and its permissions."
    return f"error: {error}"


def _registrations() -> tuple[Callable[[argparse._SubParsersAction], None], ...]:
    """Every subcommand's ``add_<command>``, in the order ``workbench --help`` lists them."""
    from workbench.cli import data, evaluate, experiments, nnunet, training, viewers

    return (
        experiments.add_demo,
        data.add_summary,
        data.add_phantoms,
        data.add_manifest,
        data.add_instances,
        evaluate.add_evaluate,
        data.add_perturb,
        training.add_train,
        training.add_predict,
        experiments.add_sweep,
        experiments.add_report,
        viewers.add_audit,
        viewers.add_lab,
        nnunet.add_export_nnunet,
        nnunet.add_nnunet_trainers,
    )


def _parser() -> argparse.ArgumentParser:
    from workbench import __version__

    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Instance-aware, multi-class segmentation losses on 3D medical images.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _registrations():
        add(commands)
    return parser
