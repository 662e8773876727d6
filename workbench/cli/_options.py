"""Options that several subcommands share, so that one concept has one name in every command.

A dataset's manifest is ``--manifest`` wherever a command takes one (``summary``, ``evaluate``,
``perturb``, ``predict``, ``demo``). A name that a release renamed stays accepted as a hidden,
deprecated alias for one release: it sets the same value and :func:`deprecation_warnings` names
its replacement, which :func:`workbench.cli.main` prints as a one-line warning.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FORMATS_DOC", "add_manifest_option", "deprecation_warnings"]

FORMATS_DOC = "docs/formats.md"

# (old option, new option, release that removes the old one)
_RENAMED = {"--ref": ("--manifest", "0.3")}


class _DeprecatedAlias(argparse.Action):
    """Stores the value under the new option's ``dest`` and records that the old name was used."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        used = list(getattr(namespace, "deprecated_options", None) or [])
        namespace.deprecated_options = [*used, option_string]


def add_manifest_option(parser: argparse.ArgumentParser, help: str, *, required: bool = False,
                        default: Path | None = None) -> None:
    """Add ``--manifest`` (a dataset manifest, ``docs/formats.md#dataset-manifest``) and its old name ``--ref``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    help : str
        What the manifest is to this command.
    required : bool
        Whether the command needs one (then exactly one of ``--manifest`` / ``--ref`` must be given).
    default : Path, optional
        The value when neither is given.
    """
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--manifest", type=Path, default=default, metavar="MANIFEST",
                       help=f"{help} (.yaml; format: {FORMATS_DOC}#dataset-manifest)")
    for old, (new, _) in _RENAMED.items():
        if new == "--manifest":
            group.add_argument(old, dest="manifest", type=Path, action=_DeprecatedAlias, help=argparse.SUPPRESS)


def deprecation_warnings(args: argparse.Namespace) -> Sequence[str]:
    """One message per deprecated option name used on this command line (none: an empty tuple)."""
    return tuple(
        f"{old} is deprecated and will be removed in workbench {_RENAMED[old][1]}; use {_RENAMED[old][0]}"
        for old in dict.fromkeys(getattr(args, "deprecated_options", None) or ())
    )
