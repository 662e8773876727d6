"""Issue 21, losses: wrong options and zero-size tensors give one clear error naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.losses import LOSS_NAMES, InstanceLoss, InverseWeightLoss, build_loss

SPACING = r"Expected `spacing` to be None or 2 or 3 positive, finite voxel sizes in mm \(one per spatial axis\), but got "


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cc", {"spacing": "1,1,1"}, SPACING + r"'1,1,1'\."),
        ("cc", {"spacing": 1.0}, SPACING + r"1\.0\."),
        ("iwl_cc", {"spacing": [1.0, True, 1.0]}, SPACING + r"\[1\.0, True, 1\.0\]\."),
        ("blob", {"spacing": (1.0, 1.0, 1.0, 1.0)}, SPACING + r"\(1\.0, 1\.0, 1\.0, 1\.0\)\."),
        ("cc", {"spacing": (1.0, -2.0, 1.0)}, r"Expected `spacing` to be 3 positive, finite voxel sizes in mm, but got \(1\.0, -2\.0, 1\.0\)\."),
        ("blob", {"alpha": None}, r"Expected `alpha` to be a finite number ≥ 0, but got None\."),
        ("cc", {"beta": "1"}, r"Expected `beta` to be a finite number ≥ 0, but got '1'\."),
        ("blob", {"beta": True}, r"Expected `beta` to be a finite number ≥ 0, but got True\."),
        ("iwl_blob", {"alpha": float("nan")}, r"Expected `alpha` to be a finite number ≥ 0, but got nan\."),
        ("iwl_cc", {"max_weight": None}, r"Expected `max_weight` ≥ 1, but got None\."),
        ("iwl_cc", {"max_weight": float("nan")}, r"Expected `max_weight` ≥ 1, but got nan\."),
        ("invweight_global", {"clip": -1}, r"Expected `clip` to be a pair \(w_min, w_max\) of numbers, but got -1\."),
        ("invweight_local", {"clip": None}, r"Expected `clip` to be a pair \(w_min, w_max\) of numbers, but got None\."),
        ("invweight_global", {"clip": "15"}, r"Expected `clip` to be a pair \(w_min, w_max\) of numbers, but got '15'\."),
        ("invweight_global", {"clip": (1, 2, 3)}, r"Expected `clip` to be a pair \(w_min, w_max\) of numbers, but got \(1, 2, 3\)\."),
        ("invweight_global", {"clip": (1, float("inf"))}, r"`clip` = \(w_min, w_max\) with 0 < w_min ≤ w_max < inf, but got \(1, inf\)"),
        ("blob", {"connectivity": 5}, r"Expected `connectivity` to be one of \(4, 6, 8, 18, 26\), but got 5\."),
        ("invweight_local", {"connectivity": "26"}, r"Expected `connectivity` to be one of \(4, 6, 8, 18, 26\), but got '26'\."),
        ("dc_ce", {"ignore_index": "255"}, r"Expected `ignore_index` to be None or an int \(the label value to ignore\), but got '255'\."),
        ("blob", {"ignore_index": True}, r"Expected `ignore_index` to be None or an int \(the label value to ignore\), but got True\."),
    ],
)
def test_a_wrong_option_is_refused_when_the_loss_is_built(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_loss(name, **options)


def test_the_loss_classes_check_the_same_options():
    with pytest.raises(ValueError, match=r"`spacing` to be None or 2 or 3"):
        InstanceLoss("cc", spacing=2.0)
    with pytest.raises(ValueError, match=r"`iwl` to be one of \(False, True\), but got 'yes'"):
        InstanceLoss("blob", iwl="yes")
    with pytest.raises(ValueError, match=r"`clip` to be a pair"):
        InverseWeightLoss("global", clip=5)


def test_good_options_are_kept_as_numbers():
    loss = build_loss("iwl_cc", mode="sigmoid", spacing=np.array([1, 1, 2]), connectivity=18, alpha=2, beta=np.float32(0.5))
    assert (loss.spacing, loss.connectivity, loss.alpha, loss.beta) == ((1.0, 1.0, 2.0), 18, 2.0, 0.5)
    assert build_loss("invweight_global", clip=np.array([1, 50])).clip == (1.0, 50.0)
    assert build_loss("dc_ce", ignore_index=np.int64(255)).ignore_index == 255


def test_a_two_axis_spacing_fits_2d_data_and_is_named_on_3d_data():
    loss = build_loss("cc", mode="sigmoid", spacing=(1.0, 2.0))
    target = torch.zeros(1, 1, 6, 6)
    target[0, 0, 1:3, 1:3] = 1
    assert torch.isfinite(loss(torch.zeros(1, 1, 6, 6), target))
    with pytest.raises(ValueError, match=r"`spacing` to be 3 positive, finite voxel sizes in mm, but got \(1\.0, 2\.0\)"):
        loss(torch.zeros(1, 1, 4, 6, 6), torch.zeros(1, 1, 4, 6, 6))


ZERO = r"Expected `logits` with at least one batch element, channel and voxel, but got shape "


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize(
    ("mode", "logits", "target"),
    [
        ("sigmoid", (0, 1, 4, 4, 4), (0, 1, 4, 4, 4)),
        ("sigmoid", (1, 1, 0, 4, 4), (1, 1, 0, 4, 4)),
        ("sigmoid", (1, 0, 4, 4, 4), (1, 0, 4, 4, 4)),
        ("softmax", (0, 2, 4, 4), (0, 4, 4)),
        ("softmax", (1, 2, 4, 0), (1, 4, 0)),
    ],
)
def test_zero_size_tensors_are_refused_naming_the_shape(name, mode, logits, target):
    target = torch.zeros(target, dtype=torch.float32 if mode == "sigmoid" else torch.long)
    with pytest.raises(ValueError, match=ZERO + rf"\({', '.join(map(str, logits))}\)\."):
        build_loss(name, mode=mode)(torch.zeros(logits), target)


def test_an_empty_target_for_non_empty_logits_is_a_shape_error():
    with pytest.raises(ValueError, match=r"`target` of shape \(B, \*S\) = \(1, 4, 4\)"):
        build_loss("blob")(torch.zeros(1, 2, 4, 4), torch.zeros(1, 0, 4, dtype=torch.long))
