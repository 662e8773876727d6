"""Skip tests whose environment is missing, or fail them where that environment is required.

The GUI tests need Xvfb and Chromium (``WORKBENCH_REQUIRE_GUI=1`` in CI, see tests/conftest.py).

Two kinds of tests need libraries the main install does not hold. The peer oracles pin what the
main install cannot take (panoptica: rich < 14, numpy < 2.3, pandas < 3, where napari >= 0.7
needs rich >= 14), and nnU-Net needs torchvision (PyPI's loads only with CUDA torch). They run in environments
of their own: ``nox -s oracles`` (tests/oracles) and ``nox -s nnunet`` (tests/integrations). Each
session sets ``WORKBENCH_REQUIRE_<SESSION>=1``, under which a missing library fails the test
instead of skipping it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def skip_or_fail(message: str, variable: str) -> NoReturn:
    """Skip the calling test (or test module) with ``message``, or fail it when ``variable`` is ``1``:
    an environment that sets it must run these tests (``WORKBENCH_REQUIRE_GUI``, ``_ORACLES``, ``_NNUNET``)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{message} ({variable}=1: these tests must run here)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def import_or_skip(module: str, distribution: str, session: str) -> ModuleType:
    """``module`` (of PyPI ``distribution``), installed by the nox session ``session``.

    Skips the calling test module where it is missing, or fails it under
    ``WORKBENCH_REQUIRE_<SESSION>=1``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        skip_or_fail(f"{distribution} is not installed here ({error}): these tests run in `nox -s {session}`",
                     f"WORKBENCH_REQUIRE_{session.upper()}")
