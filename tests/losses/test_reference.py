"""The reference losses (the oracle of the fast path) and the fast path against hand-computed values and MONAI.

Expected numbers are written out by hand from the definitions in DESIGN §4/§4a; where logits are
saturated (±20) probabilities are 1 or 0 up to e^-40, far below the tolerances used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from monai import losses as monai_losses

from workbench.losses import build_loss

from workbench.losses.reference import (
    EPS,
    INSTANCE_NAMES,
    NAMES,
    reference_global_weights,
    reference_instance_terms,
    reference_local_weights,
    reference_loss,
)


def fast_loss(name: str, logits: torch.Tensor, target: torch.Tensor, **options) -> torch.Tensor:
    """The fast path with the oracle's call signature."""
    return build_loss(name, **options)(logits, target)


IMPLEMENTATIONS = pytest.mark.parametrize("loss_fn", [reference_loss, fast_loss], ids=["reference", "fast"])
"""Hand-computed cases hold for the oracle and for the fast path alike."""


def saturated_logits(predicted: np.ndarray, num_channels: int) -> torch.Tensor:
    """Softmax logits (B, K, *S), float64: +20 on the predicted class of each voxel, -20 elsewhere."""
    onehot = F.one_hot(torch.as_tensor(predicted, dtype=torch.long), num_channels).movedim(-1, 1)
    return 40.0 * onehot.double() - 20.0


def logits_from_probabilities(p: np.ndarray) -> torch.Tensor:
    """Two-channel softmax logits (B, 2, *S) whose class-1 probability is ``p`` (B, *S)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def missed(size: int) -> float:
    """Soft Dice loss of a component of ``size`` voxels predicted nowhere in its domain."""
    return 1 - EPS / (size + EPS)


def values(terms: list[dict], key: str) -> list[float]:
    return [float(t[key]) for t in terms]


# --- hand-computed cases ---------------------------------------------------------------------


def two_cubes() -> np.ndarray:
    """(1, 8, 8, 8) class map: a 3×3×3 cube (27 voxels, id 1) and one voxel (id 2)."""
    target = np.zeros((1, 8, 8, 8), dtype=np.int64)
    target[0, 1:4, 1:4, 1:4] = 1
    target[0, 6, 6, 6] = 1
    return target


def two_cubes_one_found(found: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`two_cubes` and a prediction that finds only its ``"large"`` or ``"small"`` component."""
    target = two_cubes()
    predicted = target.copy()
    if found == "large":
        predicted[0, 6, 6, 6] = 0
    else:
        predicted[0, 1:4, 1:4, 1:4] = 0
    return target, predicted


@pytest.mark.parametrize("found", ["large", "small"])
@IMPLEMENTATIONS
def test_blob_dice_averages_found_and_missed_components(found, loss_fn):
    target, predicted = two_cubes_one_found(found)
    logits = saturated_logits(predicted, 2)

    loss = loss_fn("blob", logits, torch.as_tensor(target), base="dice", alpha=0.0)
    # Missed size: 1 voxel when the cube is found, 27 when the single voxel is found.
    expected = 0.5 * (0.0 + missed(1 if found == "large" else 27))
    assert float(loss) == pytest.approx(0.5, abs=1e-5)
    assert float(loss) == pytest.approx(expected, abs=1e-12)

    terms = reference_instance_terms("blob", logits, torch.as_tensor(target), base="dice")
    assert [(t["batch"], t["channel"], t["id"], t["size"], t["domain_size"]) for t in terms] == [
        (0, 1, 1, 27, 511),  # every voxel but the other component
        (0, 1, 2, 1, 485),
    ]
    expected_terms = [0.0, missed(1)] if found == "large" else [missed(27), 0.0]
    assert values(terms, "dice") == pytest.approx(expected_terms, abs=1e-12)


@pytest.mark.parametrize(
    ("found", "expected_dice", "missed_voxels"),
    [
        # batch Dice: 1 - (2·27 + eps) / (27 + 28 + eps), the single voxel missed
        ("large", 1 - (54 + EPS) / (55 + EPS), 1),
        # 1 - (2·1 + eps) / (1 + 28 + eps), the cube missed
        ("small", 1 - (2 + EPS) / (29 + EPS), 27),
    ],
)
@IMPLEMENTATIONS
def test_global_dc_ce_is_small_when_the_large_component_is_found(found, expected_dice, missed_voxels, loss_fn):
    target, predicted = two_cubes_one_found(found)
    loss = loss_fn("dc_ce", saturated_logits(predicted, 2), torch.as_tensor(target))
    # CE: -log p_target = 40 on each missed voxel, ~0 elsewhere; mean over 8³ voxels.
    expected = expected_dice + 40.0 * missed_voxels / 512
    assert float(loss) == pytest.approx(expected, abs=1e-12)
    if found == "large":
        assert expected_dice < 0.02  # while the blob Dice above is 1/2


def strip_case() -> tuple[torch.Tensor, torch.Tensor]:
    """A 1×8 image: class-1 components {0, 1} (id 1) and {6} (id 2), and known probabilities."""
    target = torch.tensor([[[1, 1, 0, 0, 0, 0, 1, 0]]])
    p = np.array([[[0.8, 0.6, 0.4, 0.2, 0.1, 0.3, 0.5, 0.1]]])
    return logits_from_probabilities(p), target


@IMPLEMENTATIONS
def test_cc_domains_are_the_voronoi_cells(loss_fn):
    logits, target = strip_case()
    terms = reference_instance_terms("cc", logits, target)
    # Nearest component: x = 2, 3 → id 1 (distances 1, 2 vs 4, 3); x = 4, 5, 7 → id 2.
    # Cell 1 = x 0..3: Σpg = 1.4, Σp = 2.0, Σg = 2.  Cell 2 = x 4..7: Σpg = 0.5, Σp = 1.0, Σg = 1.
    assert values(terms, "domain_size") == [4, 4]
    assert values(terms, "dice") == pytest.approx([1 - (2.8 + EPS) / (4 + EPS), 1 - (1.0 + EPS) / (2 + EPS)], abs=1e-12)
    ce = [
        -(math.log(0.8) + math.log(0.6) + math.log(1 - 0.4) + math.log(1 - 0.2)) / 4,
        -(math.log(1 - 0.1) + math.log(1 - 0.3) + math.log(0.5) + math.log(1 - 0.1)) / 4,
    ]
    assert values(terms, "ce") == pytest.approx(ce, abs=1e-12)
    loss = loss_fn("cc", logits, target, alpha=0.0)
    assert float(loss) == pytest.approx(np.mean(values(terms, "dice")) + np.mean(ce), abs=1e-12)


def test_blob_domains_drop_the_other_components():
    logits, target = strip_case()
    terms = reference_instance_terms("blob", logits, target)
    # Domain 1 = all but x = 6: Σpg = 1.4, Σp = 2.5, Σg = 2.  Domain 2 = x 2..7: Σpg = 0.5, Σp = 1.6, Σg = 1.
    assert values(terms, "domain_size") == [7, 6]
    expected = [1 - (2.8 + EPS) / (4.5 + EPS), 1 - (1.0 + EPS) / (2.6 + EPS)]
    assert values(terms, "dice") == pytest.approx(expected, abs=1e-12)


@IMPLEMENTATIONS
def test_class_averaging_gives_a_rare_class_the_weight_of_a_common_one(loss_fn):
    """Mean over components, then over classes present, then over batch elements with components."""
    target = np.zeros((3, 12, 12), dtype=np.int64)
    for y, x in [(1, 1), (1, 10), (10, 1), (10, 10)]:  # b = 0: class 1, four 1-voxel components, found
        target[0, y, x] = 1
    target[0, 5:7, 5:7] = 2  # b = 0: class 2, one 2×2 component, missed
    # b = 1: background only, left out of the batch mean
    target[2, 2, 2] = 1  # b = 2: class 1, two components (1 and 2 voxels), both missed
    target[2, 8, 8:10] = 1
    predicted = np.where(target == 1, 1, 0)
    predicted[2] = 0
    logits = saturated_logits(predicted, 3)

    loss = loss_fn("blob", logits, torch.as_tensor(target), base="dice", alpha=0.0, connectivity=4)
    per_batch = [
        (0.0 + missed(4)) / 2,  # class 1: four found (mean 0); class 2: one missed
        (missed(1) + missed(2)) / 2,  # class 1 only
    ]
    assert float(loss) == pytest.approx(np.mean(per_batch), abs=1e-12)
    # Pooled over components the missed class-2 lesion would count 1/5 in b = 0, not 1/2.
    assert float(loss) == pytest.approx(0.75, abs=1e-4)


# --- IWL weights -----------------------------------------------------------------------------


def iwl_strip() -> torch.Tensor:
    """A 1×10 image: class-1 components x 0..1 (2 voxels) and x 9 (1 voxel)."""
    return torch.tensor([[[1, 1, 0, 0, 0, 0, 0, 0, 0, 1]]])


@pytest.mark.parametrize(
    ("name", "max_weight", "domain_sizes", "weights"),
    [
        ("iwl_blob", 100.0, [9, 8], [9 / 2, 8 / 1]),
        ("iwl_blob", 5.0, [9, 8], [9 / 2, 5.0]),  # 8 clipped at max_weight
        # cells: x 0..5 (x = 5 is a tie, 4 vs 4, → id 1) and x 6..9
        ("iwl_cc", 100.0, [6, 4], [6 / 2, 4 / 1]),
        ("iwl_cc", 3.5, [6, 4], [3.0, 3.5]),
        ("blob", 100.0, [9, 8], [1.0, 1.0]),
        ("cc", 100.0, [6, 4], [1.0, 1.0]),
    ],
)
def test_iwl_weights_are_domain_over_component_size_clipped(name, max_weight, domain_sizes, weights):
    logits = torch.zeros(1, 2, 1, 10, dtype=torch.float64)
    terms = reference_instance_terms(name, logits, iwl_strip(), max_weight=max_weight)
    assert values(terms, "size") == [2, 1]
    assert values(terms, "domain_size") == domain_sizes
    assert values(terms, "weight") == pytest.approx(weights, abs=1e-15)


def test_iwl_weight_multiplies_the_component_voxels():
    logits = torch.zeros(1, 2, 1, 10, dtype=torch.float64)  # p = 1/2 everywhere
    terms = reference_instance_terms("iwl_cc", logits, iwl_strip())
    # Cell 2 = x 6..9, w = 4 on x = 9: Σwpg = 2, Σwp = (1 + 1 + 1 + 4)/2, Σwg = 4; BCE = log 2.
    assert float(terms[1]["dice"]) == pytest.approx(1 - (4 + EPS) / (7.5 + EPS), abs=1e-12)
    assert float(terms[1]["ce"]) == pytest.approx(math.log(2), abs=1e-12)


def test_iwl_weight_is_one_when_the_component_fills_its_domain():
    target = torch.ones(1, 1, 4, dtype=torch.long)
    terms = reference_instance_terms("iwl_blob", torch.zeros(1, 2, 1, 4, dtype=torch.float64), target)
    assert values(terms, "weight") == [1.0]


def test_ignored_voxels_are_not_counted_in_domains():
    target = iwl_strip()
    target[0, 0, 3] = 255
    logits = torch.zeros(1, 2, 1, 10, dtype=torch.float64)
    blob = reference_instance_terms("iwl_blob", logits, target, ignore_index=255)
    cc = reference_instance_terms("iwl_cc", logits, target, ignore_index=255)
    assert values(blob, "domain_size") == [8, 7] and values(blob, "weight") == [4.0, 7.0]
    assert values(cc, "domain_size") == [5, 4] and values(cc, "weight") == [2.5, 4.0]


# --- InvWeight -------------------------------------------------------------------------------


def two_class_square() -> torch.Tensor:
    """(1, 4, 4) class map: class 1 at (1, 1), (1, 2); class 2 at (3, 3)."""
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1, 1:3] = 1
    target[0, 3, 3] = 2
    return target


@pytest.mark.parametrize(
    ("clip", "class1", "class2", "background"),
    [
        # |V| = 16, K = 2 components: w = 16 / (3 · size); background 13 voxels → 16/39 < 1
        ((1.0, 2e5), 16 / 6, 16 / 3, 1.0),
        ((1.0, 5.0), 16 / 6, 5.0, 1.0),
        ((0.1, 2e5), 16 / 6, 16 / 3, 16 / 39),
    ],
)
def test_invweight_global_weight_map(clip, class1, class2, background):
    w = reference_global_weights(two_class_square(), num_classes=2, clip=clip)
    expected = torch.full((1, 4, 4), background, dtype=torch.float64)
    expected[0, 1, 1:3] = class1
    expected[0, 3, 3] = class2
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("clip", "class1", "class2", "bg1", "bg2"),
    [
        # class 1: w = 16 / (2 · 2), background 14 voxels; class 2: 16 / (2 · 1), background 15 voxels
        ((1.0, 2e5), 4.0, 8.0, 1.0, 1.0),
        ((1.0, 5.0), 4.0, 5.0, 1.0, 1.0),
        ((0.1, 2e5), 4.0, 8.0, 16 / 28, 16 / 30),
    ],
)
def test_invweight_local_weight_maps(clip, class1, class2, bg1, bg2):
    w = reference_local_weights(two_class_square(), num_classes=2, clip=clip)
    expected = torch.empty((1, 2, 4, 4), dtype=torch.float64)
    expected[0, 0], expected[0, 1] = bg1, bg2
    expected[0, 0, 1, 1:3] = class1
    expected[0, 1, 3, 3] = class2
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)


def test_invweight_maps_leave_ignored_voxels_out():
    target = two_class_square()
    target[0, 0, :2] = 255  # |V| = 14 non-ignored voxels
    clip = (0.1, 2e5)
    global_ = reference_global_weights(target, num_classes=2, ignore_index=255, clip=clip)
    expected = torch.full((1, 4, 4), 14 / (3 * 11), dtype=torch.float64)  # background: 11 voxels
    expected[0, 1, 1:3], expected[0, 3, 3], expected[0, 0, :2] = 14 / 6, 14 / 3, 0.0
    torch.testing.assert_close(global_, expected, rtol=0, atol=1e-12)

    local = reference_local_weights(target, num_classes=2, ignore_index=255, clip=clip)
    expected = torch.empty((1, 2, 4, 4), dtype=torch.float64)
    expected[0, 0], expected[0, 1] = 14 / (2 * 12), 14 / (2 * 13)
    expected[0, 0, 1, 1:3], expected[0, 1, 3, 3] = 14 / 4, 14 / 2
    expected[0, :, 0, :2] = 0.0
    torch.testing.assert_close(local, expected, rtol=0, atol=1e-12)


def test_invweight_global_sigmoid_takes_the_smallest_containing_component():
    target = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    target[0, 0, :2, :2] = 1  # region 0: a 2×2 block
    target[0, 1, 0, 0] = 1  # region 1: one voxel inside it
    w = reference_global_weights(target, mode="sigmoid")
    # |V| = 16, K = 2: (0, 0) → 16/(3·1); rest of the block → 16/(3·4); background 16/(3·12) → 1
    expected = torch.ones(1, 4, 4, dtype=torch.float64)
    expected[0, :2, :2] = 16 / 12
    expected[0, 0, 0] = 16 / 3
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["invweight_global", "invweight_local"])
@IMPLEMENTATIONS
def test_invweight_loss_with_a_hand_computed_weight_map(name, loss_fn):
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1, 1:3] = 1  # 2 voxels in 16: w = 16/(2·2) = 4 on them, 16/(2·14) → 1 elsewhere
    logits = torch.zeros(1, 2, 4, 4, dtype=torch.float64)  # p = 1/2
    loss = loss_fn(name, logits, target)
    # Σwpg = 4, Σwp = (8 + 14)/2, Σwg = 8; weighted CE of p = 1/2 is log 2.
    assert float(loss) == pytest.approx(1 - (8 + EPS) / (19 + EPS) + math.log(2), abs=1e-12)


# --- corner cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
@pytest.mark.parametrize("name", INSTANCE_NAMES)
@IMPLEMENTATIONS
def test_no_component_gives_zero_and_zero_gradient(name, mode, loss_fn):
    generator = torch.Generator().manual_seed(0)
    channels = 3 if mode == "softmax" else 2
    logits = torch.randn(2, channels, 4, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.zeros(2, 4, 5, 6, dtype=torch.long) if mode == "softmax" else torch.zeros(2, 2, 4, 5, 6)
    loss = loss_fn(name, logits, target, mode=mode, alpha=0.0, beta=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert reference_instance_terms(name, logits, target, mode=mode) == []
    combined = loss_fn(name, logits, target, mode=mode)
    assert combined.item() == pytest.approx(loss_fn("dc_ce", logits, target, mode=mode).item(), abs=1e-15)


@pytest.mark.parametrize(("connectivity", "expected"), [(4, 0.5 * missed(1)), (8, 1 - (2 + EPS) / (3 + EPS))])
@IMPLEMENTATIONS
def test_2d_connectivity(connectivity, expected, loss_fn):
    target = np.zeros((1, 4, 4), dtype=np.int64)
    target[0, 0, 0] = target[0, 1, 1] = 1  # diagonal neighbours: two components (4) or one (8)
    predicted = np.zeros_like(target)
    predicted[0, 0, 0] = 1
    logits = saturated_logits(predicted, 2)
    loss = loss_fn("blob", logits, torch.as_tensor(target), base="dice", alpha=0.0, connectivity=connectivity)
    assert float(loss) == pytest.approx(expected, abs=1e-12)


def random_case(seed: int, shape=(2, 8, 8), classes: int = 2, ignore: bool = False):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes + 1, size=shape) * (rng.random(shape) < 0.3)
    if ignore:
        target[rng.random(shape) < 0.15] = 255
    logits = torch.as_tensor(rng.normal(size=(shape[0], classes + 1, *shape[1:])) * 2)
    return logits, torch.as_tensor(target)


@pytest.mark.parametrize("name", NAMES)
@IMPLEMENTATIONS
def test_ignored_voxels_change_nothing(name, loss_fn):
    logits, target = random_case(1, shape=(2, 6, 6, 6), ignore=True)
    ignored = target == 255
    logits = logits.requires_grad_()
    loss = loss_fn(name, logits, target, ignore_index=255)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad.movedim(1, -1)[ignored], torch.zeros(int(ignored.sum()), 3, dtype=torch.float64))

    changed = logits.detach().clone()
    changed.movedim(1, -1)[ignored] = 50.0 * torch.randn(int(ignored.sum()), 3, dtype=torch.float64)
    assert loss_fn(name, changed, target, ignore_index=255).item() == loss.item()


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    logits, target = random_case(2, shape=(1, 4, 4))
    torch.autograd.gradcheck(
        lambda x: reference_loss(name, x, target, connectivity=4), (logits.requires_grad_(),), eps=1e-6, atol=1e-6
    )


# --- independent cross-checks against MONAI ---------------------------------------------------


def test_blob_dice_matches_monai_dice_on_each_blob_domain():
    dice = monai_losses.DiceLoss(sigmoid=True, smooth_nr=EPS, smooth_dr=EPS, batch=False, reduction="mean")
    rng = np.random.default_rng(3)
    target = (rng.random((2, 1, 10, 10, 10)) > 0.95).astype(np.int64)
    logits = torch.as_tensor(rng.normal(size=target.shape) * 3)

    per_batch = []
    for b in range(2):
        components, count = ndi.label(target[b, 0], structure=np.ones((3, 3, 3)))
        assert count >= 2
        losses = []
        for n in range(1, count + 1):
            domain = torch.as_tensor((components == 0) | (components == n))
            x = logits[b, 0][domain].reshape(1, 1, -1)
            y = torch.as_tensor(target[b, 0])[domain].reshape(1, 1, -1).double()
            losses.append(dice(x, y).item())
        per_batch.append(np.mean(losses))

    loss = reference_loss("blob", logits, torch.as_tensor(target), mode="sigmoid", base="dice", alpha=0.0)
    assert float(loss) == pytest.approx(np.mean(per_batch), abs=1e-12)
    fast = build_loss("blob", mode="sigmoid", base="dice", alpha=0.0)(logits, torch.as_tensor(target))
    assert float(fast) == pytest.approx(np.mean(per_batch), abs=1e-12)


@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
def test_global_dc_ce_matches_monai_batch_dice_plus_torch_ce(mode):
    logits, target = random_case(4, shape=(2, 6, 6, 6))
    if mode == "softmax":
        dice = monai_losses.DiceLoss(
            include_background=False, to_onehot_y=True, softmax=True, batch=True, smooth_nr=EPS, smooth_dr=EPS
        )
        expected = dice(logits, target[:, None]) + F.cross_entropy(logits, target)
    else:
        target = F.one_hot(target, 3).movedim(-1, 1).double()  # three overlapping-capable regions
        dice = monai_losses.DiceLoss(sigmoid=True, batch=True, smooth_nr=EPS, smooth_dr=EPS)
        expected = dice(logits, target) + F.binary_cross_entropy_with_logits(logits, target)
    assert reference_loss("dc_ce", logits, target, mode=mode).item() == pytest.approx(expected.item(), abs=1e-12)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "dice"}, r"`name` to be one of \('dc_ce', 'blob', .*'invweight_local'\), but got 'dice'"),
        ({"mode": "softmx"}, r"`mode` to be one of \('softmax', 'sigmoid'\), but got 'softmx'"),
        ({"base": "bce"}, r"`base` to be one of \('dice_ce', 'dice', 'ce'\), but got 'bce'"),
        ({"max_weight": 0.5}, r"`max_weight` to be at least 1, but got 0.5"),
        ({"clip": (2.0, 1.0)}, r"`clip` to be \(w_min, w_max\)"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    logits, target = random_case(5, shape=(1, 4, 4))
    arguments = {"name": "blob", **kwargs}
    with pytest.raises(ValueError, match=message):
        reference_loss(arguments.pop("name"), logits, target, **arguments)


def test_instance_terms_reject_non_instance_names_and_bad_shapes():
    logits, target = random_case(6, shape=(1, 4, 4))
    with pytest.raises(ValueError, match=r"`name` to be one of \('blob', 'cc', 'iwl_blob', 'iwl_cc'\)"):
        reference_instance_terms("dc_ce", logits, target)
    with pytest.raises(ValueError, match=r"Expected `target` of shape \(1, 4, 4\) or \(1, 1, 4, 4\)"):
        reference_loss("blob", logits, target[:, :3])


def test_ignore_index_in_sigmoid_mode_warns():
    logits = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    with pytest.warns(UserWarning, match="applies only in softmax mode"):
        reference_loss("blob", logits, torch.zeros(1, 1, 4, 4), mode="sigmoid", ignore_index=255)
    with pytest.warns(UserWarning, match="applies only in softmax mode"):
        reference_global_weights(torch.zeros(1, 1, 4, 4), mode="sigmoid", ignore_index=255)
