"""Import a library that only a test session of its own installs, or skip the calling test module.

Two kinds of tests need libraries the main install does not hold. The peer oracles pin what the
main install cannot take (panoptica: rich < 14, numpy < 2.3, pandas < 3, where napari >= 0.7
needs rich >= 14), and nnU-Net needs torchvision of its torch's release. They run in environments
of their own: ``nox -s oracles`` (tests/oracles) and ``nox -s nnunet`` (tests/integrations). Each
session sets ``WORKBENCH_REQUIRE_<SESSION>=1``, under which a missing library fails the test
instead of skipping it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def import_or_skip(module: str, distribution: str, session: str) -> ModuleType:
    """``module`` (of PyPI ``distribution``), installed by the nox session ``session``.

    Skips the calling test module where it is missing, or fails it under
    ``WORKBENCH_REQUIRE_<SESSION>=1``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"{distribution} is not installed here ({error}): these tests run in `nox -s {session}`"
        variable = f"WORKBENCH_REQUIRE_{session.upper()}"
        if os.environ.get(variable) == "1":
            pytest.fail(f"{message}, and {variable}=1 requires them", pytrace=False)
        pytest.skip(message, allow_module_level=True)
