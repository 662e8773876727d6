"""The test sessions that need libraries of their own: ``pip install nox && nox`` from the checkout.

- ``oracles``: the comparisons with peer implementations (tests/oracles: panoptica,
  brats-evaluation, CCMetrics, picai_eval). panoptica pins rich < 14, numpy < 2.3 and pandas < 3;
  napari >= 0.7 needs rich >= 14. The session installs the package's dependencies but napari (no
  oracle test opens a viewer), then the ``oracles`` extra.
- ``nnunet``: the nnU-Net v2 plug-in end to end (tests/integrations, and the doctests of
  workbench/integrations). nnU-Net needs torchvision (through timm), which needs the torch of its
  own release, and PyPI's torchvision wheels are built against CUDA torch: they do not load with
  the CPU build the README pins (``operator torchvision::nms does not exist``). The session
  installs the CUDA pair (several GB; it runs on the CPU).

Both sessions install torch before the package, as the README does (a bare ``torch`` requirement
pulls whichever build the resolver picks), and set ``WORKBENCH_REQUIRE_<SESSION>=1``, under which a
missing library fails a test instead of skipping it (tests/_sessions.py).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement  # a dependency of nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["oracles", "nnunet"]

TORCH = "torch==2.13.0"  # the README's pin, a CPU build (tests/test_packaging.py keeps them equal)
NNUNET_TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # a torch and the torchvision of its release

PROJECT = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
PYTEST = ["pytest", "-p", "no:cacheprovider"]


def _name(requirement: str) -> str:
    """The distribution name of a requirement (``napari[pyqt6]>=0.9`` -> ``napari``)."""
    return Requirement(requirement).name.lower()


@nox.session
def oracles(session: nox.Session) -> None:
    """tests/oracles against panoptica, brats-evaluation, CCMetrics and picai_eval."""
    session.install(TORCH)
    session.install("--no-deps", "-e", ".")
    dependencies = [r for r in PROJECT["dependencies"] if _name(r) != "napari"]
    tools = [r for r in EXTRAS["test"] if _name(r) in ("pytest", "hypothesis")]
    session.install(*dependencies, *EXTRAS["oracles"], *tools)
    session.run(*PYTEST, "tests/oracles", *session.posargs, env={"WORKBENCH_REQUIRE_ORACLES": "1"})


@nox.session
def nnunet(session: nox.Session) -> None:
    """The nnU-Net v2 trainers, export and end-to-end training (tests/integrations)."""
    session.install(*NNUNET_TORCH)
    tools = [r for r in EXTRAS["test"] if _name(r) == "pytest"]
    session.install(*NNUNET_TORCH, "-e", ".[nnunet]", *tools)  # the pins again: nothing may move them
    session.run(*PYTEST, "tests/integrations", "workbench/integrations", *session.posargs,
                env={"WORKBENCH_REQUIRE_NNUNET": "1"})
