"""Label schemas: conversions against hand-made label maps, and errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.integrations.nnunet.export import nnunet_labels
from workbench.labels import (
    BINARY,
    BRATS_GLIOMA,
    BRATS_METS_2025,
    SCHEMAS,
    LabelSchema,
    LabelValueError,
    get_schema,
    region_paint_order,
    regions_to_labels,
)

LABEL = np.array([[0, 1, 2], [3, 4, 0]], dtype=np.uint8)


def test_brats_mets_regions_are_the_challenge_definitions():
    masks = BRATS_METS_2025.to_region_masks(LABEL).astype(int)
    assert BRATS_METS_2025.region_names == ("WT", "TC", "ET", "RC")
    np.testing.assert_array_equal(masks[0], [[0, 1, 1], [1, 0, 0]])  # WT = NETC ∪ SNFH ∪ ET
    np.testing.assert_array_equal(masks[1], [[0, 1, 0], [1, 0, 0]])  # TC = NETC ∪ ET
    np.testing.assert_array_equal(masks[2], [[0, 0, 0], [1, 0, 0]])  # ET
    np.testing.assert_array_equal(masks[3], [[0, 0, 0], [0, 1, 0]])  # RC
    assert masks.shape == (4, 2, 3)


def test_class_map_renumbers_labels_consecutively():
    schema = LabelSchema("gappy", {2: "A", 5: "B"})
    np.testing.assert_array_equal(schema.to_class_map(np.array([0, 5, 2, 5])), [0, 2, 1, 2])
    np.testing.assert_array_equal(BRATS_METS_2025.to_class_map(LABEL), LABEL)
    assert schema.class_names == ("A", "B")
    assert schema.num_channels("softmax") == 3


def test_glioma_and_binary_schemas():
    assert BRATS_GLIOMA.region_names == ("WT", "TC", "ET")
    assert BRATS_GLIOMA.to_region_masks(np.array([1, 2, 3])).astype(int).tolist() == [[1, 1, 1], [1, 0, 1], [0, 0, 1]]
    assert BINARY.num_channels("sigmoid") == 1 and BINARY.num_channels("softmax") == 2
    assert BRATS_METS_2025.to_target(LABEL, "sigmoid").shape == (4, 2, 3)
    assert BRATS_METS_2025.foreground_names("softmax") == ("NETC", "SNFH", "ET", "RC")


def test_values_outside_the_schema_are_listed_with_the_schema():
    with pytest.raises(LabelValueError, match=r"values \[4, 7\] that schema 'brats_glioma' does not define.*1 NCR, 2 ED, 3 ET"):
        BRATS_GLIOMA.to_region_masks(np.array([0, 4, 7, 7, 1]))
    with pytest.raises(LabelValueError, match=r"values \[-1\]"):
        BRATS_METS_2025.to_class_map(np.array([-1, 0]))
    with pytest.raises(LabelValueError, match=r"must hold integers, got dtype float64"):
        BRATS_METS_2025.validate(np.array([0.5, 1.0]))
    BRATS_METS_2025.validate(np.array([0.0, 4.0]))  # integral floats are fine


def test_bad_schemas_and_modes_are_rejected():
    with pytest.raises(ValueError, match=r"positive integers \(0 is background\), got \[0\]"):
        LabelSchema("bad", {0: "BG", 1: "A"})
    with pytest.raises(ValueError, match=r"region 'X' must be a non-empty set of the schema's labels \[1\], got \(2,\)"):
        LabelSchema("bad", {1: "A"}, {"X": (2,)})
    with pytest.raises(ValueError, match=r"no regions, so sigmoid mode is unavailable"):
        LabelSchema("plain", {1: "A"}).to_region_masks(np.zeros(3, int))
    with pytest.raises(ValueError, match=r"`mode` to be one of \('softmax', 'sigmoid'\), but got 'soft'"):
        BRATS_METS_2025.to_target(LABEL, "soft")


def test_get_schema_lists_the_known_ones():
    assert get_schema("brats_mets_2025") is BRATS_METS_2025
    assert get_schema(BINARY) is BINARY
    with pytest.raises(ValueError, match=r"Unknown label schema 'brats'; known schemas: \['binary', 'brats_glioma', 'brats_mets_2025'\]"):
        get_schema("brats")


# --- region masks back to label maps: one paint order ---------------------------------------

# Regions listed smallest first: the paint order (largest first) is not the schema order.
REVERSED = LabelSchema("reversed", {1: "a", 2: "b", 3: "c"}, {"C": (3,), "AC": (1, 3), "ABC": (1, 2, 3)})


def test_paint_order_by_hand():
    assert region_paint_order(BRATS_METS_2025) == ((0, 2), (1, 1), (2, 3), (3, 4))
    assert region_paint_order("brats_glioma") == ((0, 2), (1, 1), (2, 3))
    assert region_paint_order(BINARY) == ((0, 1),)
    assert region_paint_order(REVERSED) == ((2, 2), (1, 1), (0, 3))
    assert region_paint_order(LabelSchema("none", {1: "a"})) == ()


@pytest.mark.parametrize("schema", [*SCHEMAS.values(), REVERSED], ids=lambda s: s.name)
def test_every_label_map_round_trips_through_region_masks(schema):
    label = np.array([[0, *schema.label_values]] * 2, dtype=np.uint8)
    np.testing.assert_array_equal(regions_to_labels(schema.to_region_masks(label), schema), label)


@pytest.mark.parametrize("schema", [*SCHEMAS.values(), REVERSED], ids=lambda s: s.name)
def test_nnunet_export_paints_in_the_same_order(schema):
    labels, order = nnunet_labels(schema)
    paint = region_paint_order(schema)
    assert order == [value for _, value in paint]
    assert list(labels)[1:] == [schema.region_names[channel] for channel, _ in paint]
    # nnU-Net paints the regions of `labels` in their order with `regions_class_order`
    masks = schema.to_region_masks(np.array([0, *schema.label_values]))
    painted = np.zeros(masks.shape[1:], dtype=np.uint8)
    for (channel, _), value in zip(paint, order):
        painted[masks[channel]] = value
    np.testing.assert_array_equal(painted, regions_to_labels(masks, schema))


def test_schemas_without_a_paint_order_are_refused():
    crossing = LabelSchema("crossing", {1: "a", 2: "b", 3: "c"}, {"AB": (1, 2), "BC": (2, 3)})
    with pytest.raises(ValueError, match=r"^Schema 'crossing': regions 'AB' and 'BC' overlap without nesting, so region"):
        region_paint_order(crossing)
    two_own = LabelSchema("two_own", {1: "a", 2: "b", 3: "c"}, {"ABC": (1, 2, 3), "C": (3,)})
    message = (
        r"^Schema 'two_own': region 'ABC' \[1, 2, 3\] leaves labels \[1, 2\] once the regions nested in it \(C\) "
        r"are painted over it: it has labels \[1, 2\] outside its nested regions, and exactly one is needed"
    )
    with pytest.raises(ValueError, match=message):
        region_paint_order(two_own)
    with pytest.raises(ValueError, match=message + r".* Export it with mode='label' instead\.$"):
        nnunet_labels(two_own)
    with pytest.raises(ValueError, match=r"Expected 4 region masks \(R, \*S\), but got shape \(3, 2\)"):
        regions_to_labels(np.zeros((3, 2), dtype=bool), BRATS_METS_2025)
