"""The workbench trainers, where nnU-Net's ``nnUNet_extTrainer`` search finds them.

nnU-Net imports every module of the folders listed in ``nnUNet_extTrainer`` and looks for the
``-tr`` class name in them; this folder holds only this module, which re-exports (through its
``__all__``) the trainers :mod:`workbench.integrations.nnunet.trainers` generates from the loss
registry, one per loss and a β = 2 variant per instance loss.
"""

from workbench.integrations.nnunet.trainers import *
