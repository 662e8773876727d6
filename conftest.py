"""Doctest collection (``--doctest-modules`` imports every module of workbench/ and tests/).

The nnU-Net plug-in's trainer modules import nnunetv2, which the main install does not hold (it
needs torchvision of its torch's release): there they are left out, and ``nox -s nnunet``, which
installs nnunetv2, collects them.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("nnunetv2") else [
    "workbench/integrations/nnunet/trainers.py",
    "workbench/integrations/nnunet/transforms.py",
    "workbench/integrations/nnunet/ext/*.py",
    "tests/integrations/nnunet_ext/*.py",
]
