"""The workbench trainers, where nnU-Net's ``nnUNet_extTrainer`` search finds them.

nnU-Net imports every module of the folders listed in ``nnUNet_extTrainer`` and looks for the
``-tr`` class name in them; this folder holds only this module, which re-exports the trainers
defined in :mod:`workbench.integrations.nnunet.trainers`.
"""

from workbench.integrations.nnunet.trainers import *
