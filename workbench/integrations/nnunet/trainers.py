"""nnU-Net v2 trainers whose loss is a workbench loss; everything else is nnU-Net's.

Each trainer replaces nnU-Net's DC+CE with :func:`workbench.losses.build_loss` — sigmoid (region)
mode when the dataset is region-based (``regions_class_order`` in its ``dataset.json``, as BraTS),
softmax mode otherwise — under nnU-Net's deep supervision as :mod:`.loss` documents. Instance
maps of the full-resolution target are computed in nnU-Net's data-augmentation workers
(:mod:`.transforms`), outside the autograd graph. Voronoi cells use the configuration's spacing.

Point nnU-Net (≥ 2.8) at them with ``export nnUNet_extTrainer=$(workbench nnunet-trainers --dir)``,
then ``nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainer_Blob``. Subclass one to change
anything nnU-Net lets a trainer change (epochs, learning rate, ...), or its class attributes
``loss_name`` / ``loss_options`` / ``connectivity`` to train another workbench loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from workbench.integrations.nnunet.loss import (
    DeepSupervisedLoss,
    deep_supervision_weights,
)
from workbench.integrations.nnunet.transforms import (
    InstanceMapsTransform,
    split_instance_maps,
)

__all__ = [
    "TRAINERS",
    "describe",
    "nnUNetTrainerWorkbench",
    "nnUNetTrainer_Blob",
    "nnUNetTrainer_Blob_beta2",
    "nnUNetTrainer_CC",
    "nnUNetTrainer_CC_beta2",
    "nnUNetTrainer_DCCE",
    "nnUNetTrainer_IWLBlob",
    "nnUNetTrainer_IWLBlob_beta2",
    "nnUNetTrainer_IWLCC",
    "nnUNetTrainer_IWLCC_beta2",
    "nnUNetTrainer_InvWeightGlobal",
    "nnUNetTrainer_InvWeightLocal",
]


class nnUNetTrainerWorkbench(nnUNetTrainer):
    """nnU-Net's trainer with a workbench loss; the base of the named trainers below.

    Class attributes
    ----------------
    loss_name : str
        A :data:`workbench.losses.LOSS_NAMES` entry.
    loss_options : Mapping
        Further :func:`~workbench.losses.build_loss` options (``alpha``, ``beta``, ``base``,
        ``max_weight``, ``clip``); ``mode``, ``ignore_index`` and ``spacing`` come from the dataset.
    connectivity : int or None
        Component connectivity; None: full (26 in 3D, 8 in 2D), as the BraTS scorer.
    """

    loss_name: ClassVar[str] = "dc_ce"
    loss_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    connectivity: ClassVar[int | None] = None

    @property
    def _mode(self) -> str:
        return "sigmoid" if self.label_manager.has_regions else "softmax"

    @property
    def _channels(self) -> int:
        heads = self.label_manager.num_segmentation_heads
        return heads if self.label_manager.has_regions else heads - 1

    @property
    def _spacing(self) -> tuple[float, ...]:
        ndim = len(self.configuration_manager.patch_size)
        return tuple(float(s) for s in self.configuration_manager.spacing)[-ndim:]

    @property
    def _connectivity(self) -> int:
        if self.connectivity is not None:
            return self.connectivity
        return 26 if len(self.configuration_manager.patch_size) == 3 else 8

    @property
    def _needs_instances(self) -> bool:
        return self.loss_name != "dc_ce" and self.loss_options.get("beta", 1.0) != 0

    @property
    def _voronoi(self) -> bool:
        return self.loss_name in ("cc", "iwl_cc")

    def _build_loss(self) -> DeepSupervisedLoss:
        if self.label_manager.has_regions and self.label_manager.has_ignore_label:
            raise NotImplementedError(
                f"{type(self).__name__}: region-based datasets with an ignore label are not supported "
                "(workbench's sigmoid-mode losses take no ignore mask)."
            )
        if self.is_cascaded:
            raise NotImplementedError(f"{type(self).__name__}: cascaded configurations are not supported.")
        options = dict(self.loss_options, mode=self._mode)
        if not self.label_manager.has_regions:
            options["ignore_index"] = self.label_manager.ignore_label
        if self.loss_name in ("blob", "cc", "iwl_blob", "iwl_cc"):
            options.update(connectivity=self._connectivity, spacing=self._spacing)
        elif self.loss_name != "dc_ce":
            options.update(connectivity=self._connectivity)
        weights = None
        if self.enable_deep_supervision:
            outputs = len(self._get_deep_supervision_scales())
            weights = deep_supervision_weights(outputs, keep_lowest=self.is_ddp and not self._do_i_compile())
        loss = DeepSupervisedLoss(self.loss_name, weights, **options)
        self.print_to_log_file(f"workbench loss: {loss.loss!r}, deep supervision weights {loss.weights}")
        return loss

    def get_training_transforms(self, *args: Any, **kwargs: Any) -> ComposeTransforms:
        return self._with_instance_maps(super().get_training_transforms(*args, **kwargs))

    def get_validation_transforms(self, *args: Any, **kwargs: Any) -> ComposeTransforms:
        return self._with_instance_maps(super().get_validation_transforms(*args, **kwargs))

    def _with_instance_maps(self, transforms: ComposeTransforms) -> ComposeTransforms:
        if not self._needs_instances:
            return transforms
        ignore = None if self.label_manager.has_regions else self.label_manager.ignore_label
        maps = InstanceMapsTransform(self._mode, self._channels, self._connectivity, self._spacing, self._voronoi, ignore)
        return ComposeTransforms([transforms, maps])

    def train_step(self, batch: dict) -> dict:
        return self._with_given_instances(super().train_step, batch)

    def validation_step(self, batch: dict) -> dict:
        return self._with_given_instances(super().validation_step, batch)

    def _with_given_instances(self, step, batch: dict) -> dict:
        if not self._needs_instances:
            return step(batch)
        target, maps = split_instance_maps(
            batch["target"], mode=self._mode, channels=self._channels, connectivity=self._connectivity,
            spacing=self._spacing, voronoi=self._voronoi, deep_supervision=self.enable_deep_supervision,
        )
        with self.loss.given(maps):
            return step({**batch, "target": target})


class nnUNetTrainer_DCCE(nnUNetTrainerWorkbench):
    """workbench DC+CE (batch Dice), the baseline the instance losses add to."""

    loss_name = "dc_ce"


class nnUNetTrainer_Blob(nnUNetTrainerWorkbench):
    """DC+CE + blob loss (α = β = 1)."""

    loss_name = "blob"


class nnUNetTrainer_CC(nnUNetTrainerWorkbench):
    """DC+CE + Voronoi-cell CC loss (α = β = 1)."""

    loss_name = "cc"


class nnUNetTrainer_IWLBlob(nnUNetTrainerWorkbench):
    """DC+CE + blob loss with inverse-size weights inside each domain (α = β = 1)."""

    loss_name = "iwl_blob"


class nnUNetTrainer_IWLCC(nnUNetTrainerWorkbench):
    """DC+CE + CC loss with inverse-size weights inside each cell (α = β = 1)."""

    loss_name = "iwl_cc"


class nnUNetTrainer_InvWeightGlobal(nnUNetTrainerWorkbench):
    """DC+CE weighted by one inverse-size weight map (Shirokikh et al. 2020)."""

    loss_name = "invweight_global"


class nnUNetTrainer_InvWeightLocal(nnUNetTrainerWorkbench):
    """Per-channel inverse-size weighted Dice + BCE."""

    loss_name = "invweight_local"


class nnUNetTrainer_Blob_beta2(nnUNetTrainer_Blob):
    """DC+CE + 2 · blob loss."""

    loss_options = MappingProxyType({"beta": 2.0})


class nnUNetTrainer_CC_beta2(nnUNetTrainer_CC):
    """DC+CE + 2 · CC loss."""

    loss_options = MappingProxyType({"beta": 2.0})


class nnUNetTrainer_IWLBlob_beta2(nnUNetTrainer_IWLBlob):
    """DC+CE + 2 · IWL blob loss."""

    loss_options = MappingProxyType({"beta": 2.0})


class nnUNetTrainer_IWLCC_beta2(nnUNetTrainer_IWLCC):
    """DC+CE + 2 · IWL CC loss."""

    loss_options = MappingProxyType({"beta": 2.0})


TRAINERS: dict[str, type[nnUNetTrainerWorkbench]] = {
    cls.__name__: cls
    for cls in (
        nnUNetTrainer_DCCE,
        nnUNetTrainer_Blob,
        nnUNetTrainer_CC,
        nnUNetTrainer_IWLBlob,
        nnUNetTrainer_IWLCC,
        nnUNetTrainer_InvWeightGlobal,
        nnUNetTrainer_InvWeightLocal,
        nnUNetTrainer_Blob_beta2,
        nnUNetTrainer_CC_beta2,
        nnUNetTrainer_IWLBlob_beta2,
        nnUNetTrainer_IWLCC_beta2,
    )
}
"""Trainer name -> class, in the order ``workbench nnunet-trainers`` lists them."""


def describe(trainer: type[nnUNetTrainerWorkbench]) -> str:
    """``build_loss`` call of a trainer, e.g. ``blob(beta=2.0)``, for listings."""
    options = ", ".join(f"{k}={v!r}" for k, v in trainer.loss_options.items())
    return f"{trainer.loss_name}({options})"

