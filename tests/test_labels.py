"""Label schemas: conversions against hand-made label maps, and errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.labels import BINARY, BRATS_GLIOMA, BRATS_METS_2025, LabelSchema, LabelValueError, get_schema

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
