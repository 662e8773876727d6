"""Issue 21: the shared checks for options given before the data (a loss's spacing, a pair of bounds)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench._validate import check_numbers, check_spacing_option

SPACING = r"Expected `spacing` to be None or 2 or 3 positive, finite voxel sizes in mm \(one per spatial axis\), but got "


@pytest.mark.parametrize(
    ("spacing", "result"),
    [(None, None), ([1, 2], (1.0, 2.0)), ((1.0, 1.0, 2.5), (1.0, 1.0, 2.5)), (np.array([1, 1, 3]), (1.0, 1.0, 3.0))],
)
def test_spacing_option_accepted(spacing, result):
    assert check_spacing_option(spacing) == result


@pytest.mark.parametrize(
    ("spacing", "got"),
    [("1,1,1", r"'1,1,1'"), (1.0, r"1\.0"), (np.float64(2.0), r"np\.float64\(2\.0\)"), ([1.0], r"\[1\.0\]"),
     ([[1, 1], [1, 1]], r"\[\[1, 1\], \[1, 1\]\]"), ((1, True), r"\(1, True\)")],
)
def test_spacing_option_refused(spacing, got):
    with pytest.raises(ValueError, match=SPACING + got + r"\.$"):
        check_spacing_option(spacing)


def test_spacing_option_values_are_checked_like_spacing():
    with pytest.raises(ValueError, match=r"`spacing` to be 2 positive, finite voxel sizes in mm, but got \(1\.0, nan\)"):
        check_spacing_option([1.0, float("nan")])


@pytest.mark.parametrize("value", [-1, None, "12", (1, 2, 3), (1, True), np.array(5.0), [[1, "2"]]])
def test_numbers_refused(value):
    with pytest.raises(ValueError, match=r"Expected `clip` to be a pair of numbers, but got "):
        check_numbers("clip", value, 2, "a pair of numbers")


def test_numbers_accepted():
    assert check_numbers("clip", np.array([[1, 2]]), 2, "a pair of numbers") == (1.0, 2.0)
