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
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"workbench {args.command}: error: {error}", file=sys.stderr)
        return 1


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _registrations():
        add(commands)
    return parser
