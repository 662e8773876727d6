"""The nnU-Net trainers: their loss is build_loss's (deep supervision as documented), the instance
maps from the data-augmentation workers equal those computed on the fly, and a trainer trains and
predicts end to end through nnU-Net's own commands on CPU."""

from __future__ import annotations

import copy
import json
from types import MappingProxyType

import nibabel as nib
import numpy as np
import pytest
import torch
from _sessions import import_or_skip
from _nnunet import DATASET_ID, run_nnunet

import_or_skip("nnunetv2", "nnunetv2", "nnunet")

from workbench.cli import main as workbench  # noqa: E402
from workbench.instances import instance_maps
from workbench.integrations.nnunet import TRAINER_DIR
from workbench.integrations.nnunet.loss import (
    DeepSupervisedLoss,
    deep_supervision_weights,
)
from workbench.integrations.nnunet import trainers
from workbench.integrations.nnunet.trainers import (
    TRAINERS,
    describe,
    nnUNetTrainer_Blob,
    nnUNetTrainer_CC,
    trainer_classes,
)
from workbench.integrations.nnunet.transforms import split_instance_maps
from workbench.losses import InstanceLoss, LossSpec, build_loss, get_loss_spec, registry

SOFTMAX_LABELS = {"background": 0, "NETC": 1, "SNFH": 2, "ET": 3, "RC": 4}


def _trainer(setup, cls, monkeypatch, *, softmax: bool = False, deep_supervision: bool = True):
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc"):
        monkeypatch.setenv(key, setup.env[key])
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    folder = setup.preprocessed / setup.dataset
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = json.loads((folder / "dataset.json").read_text())
    if softmax:  # the same preprocessed label maps, trained as one softmax class per label
        dataset_json = {k: v for k, v in dataset_json.items() if k != "regions_class_order"}
        dataset_json["labels"] = dict(SOFTMAX_LABELS)
    trainer = cls(plans, "3d_fullres", "all", dataset_json, device=torch.device("cpu"))
    trainer.enable_deep_supervision = deep_supervision
    trainer.initialize()
    return trainer


def _expected_loss(trainer, outputs, targets) -> float:
    """The documented rule, from build_loss alone (instance maps computed by the loss itself)."""
    name, options = trainer.loss_name, dict(trainer.loss_options)
    mode = "sigmoid" if trainer.label_manager.has_regions else "softmax"
    spacing = tuple(trainer.configuration_manager.spacing)
    spec = get_loss_spec(name)
    extra = {key: value for key, value in (("spacing", spacing), ("connectivity", 26)) if key in spec.options}
    full = build_loss(name, mode=mode, **options, **extra)
    coarse = build_loss("dc_ce", mode=mode)
    alpha = options.get("alpha", 1.0) if spec.instance_term else 1.0
    weights = deep_supervision_weights(len(outputs))
    total = weights[0] * full(outputs[0], targets[0])
    for weight, output, target in zip(weights[1:], outputs[1:], targets[1:]):
        total = total + weight * alpha * coarse(output, target)
    return float(total)


@pytest.mark.parametrize("name", list(TRAINERS))
def test_trainer_step_loss_is_build_loss_of_the_batch(nnunet_setup, monkeypatch, name):
    trainer = _trainer(nnunet_setup, TRAINERS[name], monkeypatch)
    train_loader, _ = trainer.get_dataloaders()
    batch = next(train_loader)
    needs_maps = name != "nnUNetTrainer_DCCE"
    targets = batch["target"][:-1] if needs_maps else batch["target"]
    assert isinstance(targets, list) and len(targets) == len(trainer._get_deep_supervision_scales())
    with torch.no_grad():
        outputs = trainer.network(batch["data"])
    expected = _expected_loss(trainer, outputs, targets)
    reported = float(trainer.train_step(batch)["loss"])
    assert reported == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("cls", [nnUNetTrainer_Blob, nnUNetTrainer_CC])
def test_softmax_dataset_trains_the_softmax_loss(nnunet_setup, monkeypatch, cls):
    trainer = _trainer(nnunet_setup, cls, monkeypatch, softmax=True)
    assert trainer.loss.loss.mode == "softmax" and trainer.network is not None
    batch = next(trainer.get_dataloaders()[0])
    targets = batch["target"][:-1]
    assert targets[0].shape[1] == 1  # label maps, not region masks
    with torch.no_grad():
        outputs = trainer.network(batch["data"])
    assert outputs[0].shape[1] == 5
    assert float(trainer.train_step(batch)["loss"]) == pytest.approx(_expected_loss(trainer, outputs, targets), rel=1e-5)


@pytest.mark.parametrize("cls", [nnUNetTrainer_Blob, nnUNetTrainer_CC])
def test_without_deep_supervision_the_loss_is_build_loss_itself(nnunet_setup, monkeypatch, cls):
    trainer = _trainer(nnunet_setup, cls, monkeypatch, deep_supervision=False)
    assert trainer.loss.weights is None
    batch = next(trainer.get_dataloaders()[0])
    target = batch["target"][0]
    assert isinstance(target, torch.Tensor) and len(batch["target"]) == 2
    with torch.no_grad():
        output = trainer.network(batch["data"])
    assert isinstance(output, torch.Tensor)
    spacing = tuple(trainer.configuration_manager.spacing)
    expected = build_loss(cls.loss_name, mode="sigmoid", connectivity=26, spacing=spacing)(output, target)
    assert float(trainer.train_step(batch)["loss"]) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("softmax", [False, True])
def test_worker_instance_maps_equal_maps_of_the_full_resolution_target(nnunet_setup, monkeypatch, softmax):
    trainer = _trainer(nnunet_setup, nnUNetTrainer_CC, monkeypatch, softmax=softmax)
    batch = next(trainer.get_dataloaders()[0])
    targets, maps = split_instance_maps(
        batch["target"], mode=trainer._mode, channels=trainer._channels, connectivity=26,
        spacing=trainer._spacing, voronoi=True, deep_supervision=True,
    )
    full = targets[0].numpy()
    fresh = instance_maps(full, trainer._mode, 26, trainer._spacing, num_classes=4 if softmax else None)
    assert fresh.counts.sum() > 0
    np.testing.assert_array_equal(maps.components, fresh.components)
    np.testing.assert_array_equal(maps.cells, fresh.cells)
    np.testing.assert_array_equal(maps.counts, fresh.counts)
    for got, want in zip(maps.sizes, fresh.sizes):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_deep_supervision_weights_are_nnunets(nnunet_setup, monkeypatch):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    trainer = _trainer(nnunet_setup, nnUNetTrainer_Blob, monkeypatch)
    theirs = nnUNetTrainer._build_loss(trainer).weight_factors
    np.testing.assert_allclose(trainer.loss.weights, theirs)
    np.testing.assert_allclose(deep_supervision_weights(5), np.array([16, 8, 4, 2, 0]) / 30)
    np.testing.assert_allclose(deep_supervision_weights(1), [1.0])


def test_coarse_outputs_get_alpha_times_dc_ce_and_the_full_one_the_whole_loss():
    generator = torch.Generator().manual_seed(0)
    shapes = [(2, 2, 16, 16, 16), (2, 2, 8, 8, 8), (2, 2, 4, 4, 4)]
    outputs = [torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]
    targets = [(torch.rand(s, generator=generator) > 0.8).double() for s in shapes]
    weights = (0.5, 0.3, 0.2)
    loss = DeepSupervisedLoss("blob", weights, mode="sigmoid", alpha=2.0, beta=1.0)
    blob = build_loss("blob", mode="sigmoid", alpha=2.0, beta=1.0)
    dc_ce = build_loss("dc_ce", mode="sigmoid")
    expected = 0.5 * blob(outputs[0], targets[0]) + 0.3 * 2.0 * dc_ce(outputs[1], targets[1]) + 0.2 * 2.0 * dc_ce(outputs[2], targets[2])
    torch.testing.assert_close(loss(outputs, targets), expected)
    # without deep supervision it is build_loss's loss itself, gradients included
    single = DeepSupervisedLoss("iwl_cc", None, mode="sigmoid")
    a, b = outputs[0].clone().requires_grad_(), outputs[0].clone().requires_grad_()
    single(a, targets[0]).backward()
    build_loss("iwl_cc", mode="sigmoid")(b, targets[0]).backward()
    torch.testing.assert_close(a.grad, b.grad)
    with pytest.raises(ValueError, match="Expected 3 outputs and targets"):
        loss(outputs[:2], targets[:2])
    with pytest.raises(TypeError, match="lists of outputs and targets"):
        loss(outputs[0], targets[0])


def test_trainers_are_generated_one_per_loss_and_one_beta2_per_instance_loss():
    assert list(TRAINERS) == [
        "nnUNetTrainer_DCCE", "nnUNetTrainer_Blob", "nnUNetTrainer_CC", "nnUNetTrainer_IWLBlob", "nnUNetTrainer_IWLCC",
        "nnUNetTrainer_InvWeightGlobal", "nnUNetTrainer_InvWeightLocal", "nnUNetTrainer_Blob_beta2",
        "nnUNetTrainer_CC_beta2", "nnUNetTrainer_IWLBlob_beta2", "nnUNetTrainer_IWLCC_beta2",
    ]
    assert [describe(TRAINERS[name]) for name in ("nnUNetTrainer_IWLCC", "nnUNetTrainer_IWLCC_beta2")] == [
        "iwl_cc()", "iwl_cc(beta=2.0)",
    ]
    assert TRAINERS["nnUNetTrainer_CC"] is nnUNetTrainer_CC and issubclass(TRAINERS["nnUNetTrainer_CC_beta2"], nnUNetTrainer_CC)
    assert "Voronoi-cell domains" in nnUNetTrainer_CC.__doc__
    assert set(TRAINERS) <= set(trainers.__all__)
    assert trainer_classes([get_loss_spec("dc_ce")]).keys() == {"nnUNetTrainer_DCCE"}


def test_trainers_are_found_by_name_through_nnunet_ext_trainer(nnunet_setup, monkeypatch):
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    monkeypatch.setenv("nnUNet_extTrainer", str(TRAINER_DIR))
    for name, cls in TRAINERS.items():
        assert recursive_find_trainer_class_by_name(name) is cls


def test_region_dataset_with_ignore_label_is_refused(nnunet_setup, monkeypatch):
    monkeypatch.setenv("nnUNet_results", nnunet_setup.env["nnUNet_results"])
    monkeypatch.setenv("nnUNet_preprocessed", nnunet_setup.env["nnUNet_preprocessed"])
    folder = nnunet_setup.preprocessed / nnunet_setup.dataset
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = copy.deepcopy(json.loads((folder / "dataset.json").read_text()))
    dataset_json["labels"]["ignore"] = 5
    trainer = nnUNetTrainer_Blob(plans, "3d_fullres", 0, dataset_json, device=torch.device("cpu"))
    with pytest.raises(NotImplementedError, match="ignore label"):
        trainer.initialize()


@pytest.mark.slow
def test_train_one_epoch_and_predict_end_to_end_on_cpu(nnunet_setup):
    env = {**nnunet_setup.env, "nnUNet_n_proc_DA": "0"}
    log = run_nnunet(["nnUNetv2_train", str(DATASET_ID), "3d_fullres", "all", "-tr", "nnUNetTrainer_CC_tiny",
                      "-device", "cpu"], env)
    assert "workbench loss: InstanceLoss(domain='cc'" in log and "mode='sigmoid'" in log
    run_dir = nnunet_setup.results / nnunet_setup.dataset / "nnUNetTrainer_CC_tiny__nnUNetPlans__3d_fullres" / "fold_all"
    assert (run_dir / "checkpoint_final.pth").is_file()
    out = nnunet_setup.root / "predictions"
    run_nnunet(["nnUNetv2_predict", "-i", str(nnunet_setup.raw / nnunet_setup.dataset / "imagesTs"), "-o", str(out),
                "-d", str(DATASET_ID), "-c", "3d_fullres", "-f", "all", "-tr", "nnUNetTrainer_CC_tiny",
                "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1"], env)
    image = nib.load(nnunet_setup.raw / nnunet_setup.dataset / "imagesTs" / "phantom-004_0000.nii.gz")
    prediction = nib.load(out / "phantom-004.nii.gz")
    assert prediction.shape == image.shape
    np.testing.assert_allclose(prediction.affine, image.affine, atol=1e-4)
    assert set(np.unique(np.asarray(prediction.dataobj))) <= {0, 1, 2, 3, 4}
    # the loop closes: nnU-Net's predictions of the exported test split evaluate against the manifest
    evaluation = nnunet_setup.root / "evaluation"
    assert workbench(["evaluate", "--pred", str(out), "--split", "test", "--manifest", str(nnunet_setup.manifest),
                      "-o", str(evaluation)]) == 0
    assert (evaluation / "per_case.parquet").is_file()


CC_DICE = LossSpec(
    name="cc_dice", title="CC-Dice", summary="α · DC+CE + β · CC loss with a soft-Dice base", trainer="CCDice",
    module=InstanceLoss, fixed={"domain": "cc", "iwl": False, "base": "dice"}, domain="cc",
)


def test_a_loss_added_to_the_registry_alone_gets_its_nnunet_trainers(monkeypatch):
    monkeypatch.setattr(registry, "LOSSES", MappingProxyType({**registry.LOSSES, CC_DICE.name: CC_DICE}))
    trainers = trainer_classes()
    assert list(trainers)[-6:] == [
        "nnUNetTrainer_CCDice", "nnUNetTrainer_Blob_beta2", "nnUNetTrainer_CC_beta2", "nnUNetTrainer_IWLBlob_beta2",
        "nnUNetTrainer_IWLCC_beta2", "nnUNetTrainer_CCDice_beta2",
    ]
    base, beta2 = trainers["nnUNetTrainer_CCDice"], trainers["nnUNetTrainer_CCDice_beta2"]
    assert (describe(base), describe(beta2)) == ("cc_dice()", "cc_dice(beta=2.0)")
    assert issubclass(beta2, base) and CC_DICE.summary in base.__doc__
    assert base.__module__ == "workbench.integrations.nnunet.trainers"
