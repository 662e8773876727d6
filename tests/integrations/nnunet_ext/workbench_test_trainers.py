"""Seconds-long variants of the workbench nnU-Net trainers for the end-to-end test.

They show how a user customises a trainer: subclass it and change nnU-Net's attributes after
``super().__init__`` (keeping nnU-Net's constructor signature, which it inspects).
"""

import torch

from workbench.integrations.nnunet import nnUNetTrainer_CC


class nnUNetTrainer_CC_tiny(nnUNetTrainer_CC):
    """CC loss, one epoch of three iterations."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device("cuda")):  # noqa: B008 (nnU-Net's signature)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 2
