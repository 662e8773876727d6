"""Bad input and bad options raise errors that name the problem; build_loss and repr."""

from __future__ import annotations

import pytest
import torch

from workbench.losses import LOSS_NAMES, build_loss

SOFTMAX_TARGET = torch.zeros(1, 4, 4, dtype=torch.long)


@pytest.mark.parametrize(
    ("logits", "target", "kwargs", "error", "message"),
    [
        (torch.zeros(1, 3, 4, 4, dtype=torch.long), SOFTMAX_TARGET, {}, TypeError, r"floating-point `logits`, but got dtype torch.int64"),
        (torch.zeros(1, 3, 4), SOFTMAX_TARGET, {}, ValueError, r"shape \(B, K, Y, X\) or \(B, K, Z, Y, X\), but got \(1, 3, 4\)"),
        (torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), {}, ValueError, r"`target` of shape \(B, \*S\) = \(1, 4, 4\).*got \(1, 4, 5\)"),
        (torch.zeros(1, 3, 4, 4), torch.full((1, 4, 4), 3), {}, ValueError, r"labels in 0\.\.2 for 3 channels, but got values \[3\]"),
        (torch.zeros(1, 3, 4, 4), torch.full((1, 4, 4), -1), {}, ValueError, r"got values \[-1\]"),
        (torch.zeros(1, 3, 4, 4), torch.full((1, 4, 4), 0.5), {}, TypeError, r"integer class map"),
        (torch.full((1, 3, 4, 4), float("nan")), SOFTMAX_TARGET, {}, ValueError, r"48 NaN or infinite values"),
        (torch.zeros(1, 3, 4, 4), SOFTMAX_TARGET, {"schema": "brats_mets_2025"}, ValueError,
         r"5 = background \+ NETC, SNFH, ET, RC channels for schema 'brats_mets_2025' in softmax mode, but got 3"),
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), {"mode": "sigmoid"}, ValueError, r"same shape as `logits` \(1, 2, 4, 4\).*got \(1, 3, 4, 4\)"),
        (torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 2.0), {"mode": "sigmoid"}, ValueError, r"binary region masks .* got values \[2\.0\]"),
        (torch.zeros(1, 1, 4, 4), SOFTMAX_TARGET, {}, ValueError, r"at least 2 channels"),
    ],
)
@pytest.mark.parametrize("name", ["dc_ce", "blob", "iwl_cc", "invweight_local"])
def test_bad_input_names_the_problem(name, logits, target, kwargs, error, message):
    with pytest.raises(error, match=message):
        build_loss(name, **kwargs)(logits, target)


def test_ignore_index_is_accepted_as_a_label():
    target = torch.full((1, 4, 4), 255)
    target[0, 0, 0] = 1
    value = build_loss("blob", ignore_index=255)(torch.zeros(1, 2, 4, 4), target)
    assert torch.isfinite(value)


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        ("blobb", {}, ValueError, r"`name` to be one of \('dc_ce', 'blob', 'cc', 'iwl_blob', 'iwl_cc', 'invweight_global', 'invweight_local'\), but got 'blobb'"),
        ("blob", {"mode": "soft"}, ValueError, r"`mode` to be one of \('softmax', 'sigmoid'\)"),
        ("blob", {"base": "dice_bce"}, ValueError, r"`base` to be one of \('dice_ce', 'dice', 'ce'\), but got 'dice_bce'"),
        ("blob", {"preset": "kofler"}, ValueError, r"`preset` to be one of \('default', 'alpha2_beta1', 'alpha1_beta2'\)"),
        ("blob", {"preset": "alpha2_beta1", "beta": 3}, ValueError, r"either `preset` or `alpha`/`beta`"),
        ("blob", {"alpha": -1}, ValueError, r"`alpha` to be a finite number ≥ 0, but got -1"),
        ("blob", {"max_weight": 10}, TypeError, r"`max_weight` is an option of the IWL losses"),
        ("iwl_blob", {"max_weight": 0.5}, ValueError, r"`max_weight` ≥ 1, but got 0.5"),
        ("cc", {"clip": (1, 2)}, TypeError, r"unexpected options \['clip'\]; it takes \['alpha', 'beta', 'base'"),
        ("invweight_global", {"clip": (0, 5)}, ValueError, r"`clip` = \(w_min, w_max\) with 0 < w_min ≤ w_max < inf, but got \(0, 5\)"),
        ("dc_ce", {"spacing": (1, 1, 1)}, TypeError, r"'dc_ce' got unexpected options \['spacing'\]"),
        ("blob", {"domain": "cc"}, TypeError, r"'blob' got unexpected options \['domain'\]"),
        ("invweight_local", {"scope": "global"}, TypeError, r"'invweight_local' got unexpected options \['scope'\]"),
        ("blob", {"mode": "sigmoid", "ignore_index": 0}, ValueError, r"`ignore_index` applies to softmax class maps only"),
    ],
)
def test_bad_options_name_the_problem(name, options, error, message):
    with pytest.raises(error, match=message):
        build_loss(name, **options)


def test_alpha_beta_on_a_loss_without_instance_term_warns():
    with pytest.warns(UserWarning, match=r"\['alpha'\] have no effect on 'dc_ce'"):
        build_loss("dc_ce", alpha=2)


def test_presets_and_repr():
    assert (build_loss("cc", preset="alpha1_beta2").alpha, build_loss("cc", preset="alpha1_beta2").beta) == (1.0, 2.0)
    assert repr(build_loss("iwl_cc", max_weight=50, schema="brats_mets_2025")) == (
        "InstanceLoss(domain='cc', iwl=True, alpha=1.0, beta=1.0, base='dice_ce', mode='softmax', "
        "max_weight=50.0, schema='brats_mets_2025')"
    )
    assert repr(build_loss("invweight_local", mode="sigmoid")) == (
        "InverseWeightLoss(scope='local', clip=(1.0, 200000.0), mode='sigmoid')"
    )
    assert repr(build_loss("dc_ce")) == "DiceCELoss(mode='softmax')"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_is_a_module_that_returns_a_scalar(name):
    loss = build_loss(name, mode="sigmoid")
    assert isinstance(loss, torch.nn.Module)
    value = loss(torch.zeros(2, 2, 6, 6, 6), torch.ones(2, 2, 6, 6, 6))
    assert value.shape == ()


def test_mismatched_precomputed_instances_are_rejected():
    from workbench.instances import instance_maps

    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 1
    maps = instance_maps(target.numpy(), num_classes=2)
    with pytest.raises(ValueError, match=r"`instances` for 1 foreground channels with components of shape \(1, 1, 4, 4\), but got \(1, 2, 4, 4\)"):
        build_loss("blob")(torch.zeros(1, 2, 4, 4), target, instances=maps)
