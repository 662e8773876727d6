"""Segmentation losses: DC+CE, blob, CC, IWL and inverse-size weighting, in O(voxels).

Make one with :func:`build_loss`; :data:`LOSSES` (:mod:`workbench.losses.registry`) says, per
name, what a loss is, takes and needs, and every consumer reads it. The exact definitions are in
DESIGN §4–4a and in the docstrings of :mod:`workbench.losses.instance` and
:mod:`workbench.losses.global_`; :mod:`workbench.losses.reference` is the slow loop implementation
the tests compare against.
"""

from workbench.losses.combined import DiceCELoss, InstanceLoss, InverseWeightLoss
from workbench.losses.registry import LOSS_NAMES, LOSSES, PRESETS, LossSpec, MapsNeeded, build_loss, get_loss_spec

__all__ = [
    "LOSSES",
    "LOSS_NAMES",
    "PRESETS",
    "DiceCELoss",
    "InstanceLoss",
    "InverseWeightLoss",
    "LossSpec",
    "MapsNeeded",
    "build_loss",
    "get_loss_spec",
]
