"""Segmentation losses: DC+CE, blob, CC, IWL and inverse-size weighting, in O(voxels).

Make one with :func:`build_loss`; the exact definitions are in DESIGN §4–4a and in the
docstrings of :mod:`workbench.losses.instance` and :mod:`workbench.losses.global_`;
:mod:`workbench.losses.reference` is the slow loop implementation the tests compare against.
"""

from workbench.losses.combined import (
    LOSS_NAMES,
    PRESETS,
    DiceCELoss,
    InstanceLoss,
    InverseWeightLoss,
    build_loss,
)

__all__ = ["LOSS_NAMES", "PRESETS", "DiceCELoss", "InstanceLoss", "InverseWeightLoss", "build_loss"]
