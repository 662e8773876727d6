"""Doctest collection (``--doctest-modules`` imports every module of workbench/ and tests/).

The nnU-Net plug-in's trainer modules import nnunetv2, which the main install does not hold (it
needs torchvision of its torch's release): there they are left out, and ``nox -s nnunet``, which
installs nnunetv2, collects them.
"""

from __future__ import annotations

import importlib.util

# The test folders' conftest.py files hold fixtures, not doctests; collected as doctest modules they
# are all imported as "conftest", and pytest refuses the second one when some paths are named.
collect_ignore_glob = ["tests/*/conftest.py"]
if importlib.util.find_spec("nnunetv2") is None:
    collect_ignore_glob += [
        "workbench/integrations/nnunet/trainers.py",
        "workbench/integrations/nnunet/transforms.py",
        "workbench/integrations/nnunet/ext/*.py",
        "tests/integrations/nnunet_ext/*.py",
    ]
