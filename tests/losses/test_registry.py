"""The loss registry: every spec builds the module it describes, says which instance maps the loss
reads, and is what every consumer reads, so that a loss added to it alone is picked up by
build_loss, the nnU-Net trainers (tests/integrations) and the training loop."""

from __future__ import annotations

from types import MappingProxyType

import pytest
import torch

from workbench.instances import instance_maps
from workbench.losses import (
    LOSS_NAMES,
    LOSSES,
    DiceCELoss,
    InstanceLoss,
    InverseWeightLoss,
    LossSpec,
    MapsNeeded,
    build_loss,
    combined,
    get_loss_spec,
    registry,
)

SPECS = {  # name: (module, title, nnU-Net trainer suffix, domain, weighting)
    "dc_ce": (DiceCELoss, "DC+CE", "DCCE", None, None),
    "blob": (InstanceLoss, "blob", "Blob", "blob", None),
    "cc": (InstanceLoss, "CC", "CC", "cc", None),
    "iwl_blob": (InstanceLoss, "IWL-blob", "IWLBlob", "blob", "iwl"),
    "iwl_cc": (InstanceLoss, "IWL-CC", "IWLCC", "cc", "iwl"),
    "invweight_global": (InverseWeightLoss, "InvWeight-global", "InvWeightGlobal", None, "global"),
    "invweight_local": (InverseWeightLoss, "InvWeight-local", "InvWeightLocal", None, "local"),
}
INSTANCE_OPTIONS = ("alpha", "beta", "base", "mode", "connectivity", "spacing", "ignore_index", "max_weight", "schema")
NEW = LossSpec(
    name="cc_dice", title="CC-Dice", summary="α · DC+CE + β · CC loss with a soft-Dice base", trainer="CCDice",
    module=InstanceLoss, fixed={"domain": "cc", "iwl": False, "base": "dice"}, domain="cc",
)


def test_loss_names_are_the_registry_in_its_order():
    assert LOSS_NAMES == ("dc_ce", "blob", "cc", "iwl_blob", "iwl_cc", "invweight_global", "invweight_local")
    assert tuple(LOSSES) == LOSS_NAMES
    assert all(spec.name == name for name, spec in LOSSES.items())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_builds_the_module_its_spec_describes(name):
    spec = get_loss_spec(name)
    loss = build_loss(name)
    assert (type(loss), spec.title, spec.trainer, spec.domain, spec.weighting) == SPECS[name]
    assert spec.module is type(loss)
    assert all(getattr(loss, key) == value for key, value in spec.fixed.items())
    if isinstance(loss, InstanceLoss):
        assert (loss.domain, loss.iwl) == (spec.domain, spec.weighting == "iwl")
        assert spec.instance_term and spec.options == INSTANCE_OPTIONS
    elif isinstance(loss, InverseWeightLoss):
        assert loss.scope == spec.weighting and not spec.instance_term
        assert spec.options == ("clip", "mode", "connectivity", "ignore_index", "schema")
    else:
        assert not spec.instance_term and spec.options == ("mode", "ignore_index", "schema")


def test_an_unknown_name_is_refused_with_the_shared_message():
    message = (
        "Expected `name` to be one of ('dc_ce', 'blob', 'cc', 'iwl_blob', 'iwl_cc', 'invweight_global', "
        "'invweight_local'), but got 'blobb'."
    )
    for make in (get_loss_spec, build_loss):
        with pytest.raises(ValueError) as error:
            make("blobb")
        assert str(error.value) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"domain": "voronoi"}, r"`domain` to be one of \('blob', 'cc'\), but got 'voronoi'"),
        ({"weighting": "iwl"}, r"IWL weights live inside instance domains"),
        ({"weighting": "inverse"}, r"`weighting` to be one of \('iwl', 'global', 'local'\)"),
        ({"trainer": "CC-Dice"}, r"`trainer` to be a Python identifier"),
        ({"module": InverseWeightLoss, "fixed": {"domain": "cc"}}, r"fixes \['domain'\], which InverseWeightLoss does not take"),
    ],
)
def test_a_spec_that_contradicts_itself_is_refused(fields, message):
    base = {"name": "new", "title": "new", "summary": "new", "trainer": "New", "module": DiceCELoss}
    with pytest.raises(ValueError, match=message):
        LossSpec(**{**base, **fields})


def test_a_spec_is_frozen():
    spec = get_loss_spec("cc")
    with pytest.raises(AttributeError):
        spec.domain = "blob"
    with pytest.raises(TypeError):
        spec.fixed["domain"] = "blob"


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("dc_ce", {}, (False, False)),
        ("blob", {}, (True, False)),
        ("blob", {"beta": 0.0}, (False, False)),
        ("cc", {}, (True, True)),
        ("cc", {"beta": 0}, (False, False)),
        ("cc", {"alpha": 0.0, "base": "dice"}, (True, True)),
        ("iwl_blob", {"preset": "alpha1_beta2"}, (True, False)),
        ("iwl_cc", {"beta": 0.5, "max_weight": 10.0}, (True, True)),
        ("iwl_cc", {"beta": 0}, (False, False)),
        ("invweight_global", {}, (True, False)),
        ("invweight_local", {"clip": (1.0, 50.0)}, (True, False)),
    ],
)
def test_needs_maps_names_exactly_the_maps_the_loss_reads(name, options, expected, monkeypatch):
    needed = get_loss_spec(name).needs_maps(**options)
    assert isinstance(needed, MapsNeeded) and tuple(needed) == expected
    generator = torch.Generator().manual_seed(3)
    target = torch.zeros(2, 12, 12, dtype=torch.long)
    target[:, 1:3, 1:3] = target[:, 8:11, 7:9] = 1
    target[0, 5:7, 2:4] = 2
    logits = torch.randn(2, 3, 12, 12, generator=generator, dtype=torch.float64)
    loss = build_loss(name, **options)
    on_the_fly = loss(logits, target)
    given = None
    if needed.components:
        given = instance_maps(target.numpy(), "softmax", None, None, needed.cells, num_classes=2)
    else:
        monkeypatch.setattr(combined, "resolve_instances", _no_maps)
    torch.testing.assert_close(loss(logits, target, instances=given), on_the_fly)


def _no_maps(*args, **kwargs):
    raise AssertionError("needs_maps said no instance maps, but the loss asked for them")


def test_a_loss_added_to_the_registry_alone_is_built_trained_and_given_its_maps(monkeypatch):
    monkeypatch.setattr(registry, "LOSSES", MappingProxyType({**LOSSES, NEW.name: NEW}))
    loss = build_loss("cc_dice", preset="alpha1_beta2", mode="sigmoid")
    assert (type(loss), loss.domain, loss.iwl, loss.base, loss.alpha, loss.beta) == (InstanceLoss, "cc", False, "dice", 1.0, 2.0)
    with pytest.raises(TypeError, match=r"'cc_dice' got unexpected options \['base'\]; it takes \['alpha', 'beta', 'mode'"):
        build_loss("cc_dice", base="ce")
    assert _dataset_maps(monkeypatch, {}) == {"instances": True, "voronoi": True}
    assert _dataset_maps(monkeypatch, {"beta": 0.0}) == {"instances": False, "voronoi": False}


def _dataset_maps(monkeypatch, loss_options: dict) -> dict[str, bool]:
    """The instance-map flags the training loop gives its patch dataset for loss cc_dice."""
    from workbench.training import data, loop, validate

    config = validate({"loss": "cc_dice", "loss_options": loss_options, "patch_size": [32, 32, 32], "filters": [4, 8, 16]})
    seen = {}

    def dataset(cases, **kwargs):
        seen.update(instances=kwargs["instances"], voronoi=kwargs["voronoi"])

    monkeypatch.setattr(data, "PatchDataset", dataset)
    loop._dataset(config, None, [])
    return seen


def test_the_consumers_choices_are_the_registry_s():
    from workbench.experiments.demo import DEMO_LOSSES
    from workbench.losses.reference import INSTANCE_NAMES, NAMES
    from workbench.viz.explorer import EXPLORER_LOSSES
    from workbench.viz.layers import WEIGHTED_LOSSES

    assert NAMES == LOSS_NAMES
    assert INSTANCE_NAMES == EXPLORER_LOSSES == ("blob", "cc", "iwl_blob", "iwl_cc")
    assert WEIGHTED_LOSSES == ("iwl_blob", "iwl_cc", "invweight_global", "invweight_local")
    assert set(DEMO_LOSSES) <= set(LOSSES)
