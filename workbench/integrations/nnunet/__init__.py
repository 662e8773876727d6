"""nnU-Net v2 plug-in: trainers for every workbench loss, and manifests exported as nnU-Net datasets.

- :mod:`.trainers`: ``nnUNetTrainer_Blob``, ``_CC``, ``_IWLBlob``, ``_IWLCC``,
  ``_InvWeightGlobal``, ``_InvWeightLocal``, ``_DCCE`` and the β = 2 variants (``_Blob_beta2``,
  ...). They import nnU-Net, so they load on first access (``pip install "workbench[nnunet]"``).
- :mod:`.loss`: how a workbench loss meets nnU-Net's deep supervision (and why).
- :mod:`.transforms`: instance maps computed in nnU-Net's data-augmentation workers.
- :mod:`.export`: ``workbench export-nnunet``, a manifest as an nnU-Net raw dataset.

:data:`TRAINER_DIR` is the folder to put in ``nnUNet_extTrainer`` (nnU-Net ≥ 2.8) so that
``nnUNetv2_train ... -tr nnUNetTrainer_Blob`` and ``nnUNetv2_predict`` find the trainers.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

TRAINER_DIR = Path(__file__).resolve().parent / "ext"
"""Folder holding one module that imports the trainers, for nnU-Net's ``nnUNet_extTrainer``."""


def __getattr__(name: str) -> Any:
    if name == "TRAINERS" or name.startswith("nnUNetTrainer"):
        trainers = importlib.import_module("workbench.integrations.nnunet.trainers")
        if hasattr(trainers, name):
            return getattr(trainers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
