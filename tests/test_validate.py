"""workbench._validate: every check's accepted values and refusals, messages pinned by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from workbench._validate import (
    CONNECTIVITIES,
    DEFAULT_CONNECTIVITY,
    check_choice,
    check_connectivity,
    check_finite,
    check_positive_int,
    check_spacing,
    check_thresholds,
    expected,
)
from workbench.instances import instance_maps
from workbench.metrics import cc_dice, evaluate_case
from workbench.metrics.matching import connected_components


def test_the_message_template():
    assert expected("workers", "a positive int", 0) == "Expected `workers` to be a positive int, but got 0."
    assert expected("mode", "one of ('a',)", "b") == "Expected `mode` to be one of ('a',), but got 'b'."


def test_constants():
    assert CONNECTIVITIES == {2: (4, 8), 3: (6, 18, 26)}
    assert DEFAULT_CONNECTIVITY == CONNECTIVITIES[3][-1] == 26


# --- check_connectivity --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connectivity", "ndim", "result"),
    [
        (None, 3, 26),
        (None, 2, 8),
        (None, None, 26),
        (6, 3, 6),
        (18, 3, 18),
        (26, 3, 26),
        (4, 2, 4),
        (8, 2, 8),
        (4, None, 4),
        (18, None, 18),
        (np.int64(18), 3, 18),
        (26.0, 3, 26),
        (np.array(6), 3, 6),
    ],
)
def test_connectivity_accepted(connectivity, ndim, result):
    got = check_connectivity(connectivity, ndim)
    assert got == result and type(got) is int


@pytest.mark.parametrize(
    ("connectivity", "ndim", "message"),
    [
        (4, 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got 4."),
        (26, 2, "Expected `connectivity` to be one of (4, 8) for 2D data, but got 26."),
        (5, None, "Expected `connectivity` to be one of (4, 6, 8, 18, 26), but got 5."),
        (26.5, 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got 26.5."),
        (True, 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got True."),
        (np.True_, 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got np.True_."),
        ("26", 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got '26'."),
        ([26], 3, "Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got [26]."),
        (26, 4, "Expected `ndim` to be one of (2, 3) (spatial dimensions), but got 4."),
        (26, True, "Expected `ndim` to be one of (2, 3) (spatial dimensions), but got True."),
    ],
)
def test_connectivity_refused(connectivity, ndim, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_connectivity(connectivity, ndim)


# --- check_spacing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spacing", "ndim", "result"),
    [
        (None, 3, (1.0, 1.0, 1.0)),
        (None, 2, (1.0, 1.0)),
        ([1, 1, 2.5], 3, (1.0, 1.0, 2.5)),
        ((0.5, 0.75), 2, (0.5, 0.75)),
        (np.array([0.5, 1.0, 3.0], dtype=np.float32), 3, (0.5, 1.0, 3.0)),
        (np.ones((1, 3)), 3, (1.0, 1.0, 1.0)),
        ((np.float64(2.0), np.int64(1), 1), 3, (2.0, 1.0, 1.0)),
        (1e-3, 1, (1e-3,)),
    ],
)
def test_spacing_accepted(spacing, ndim, result):
    got = check_spacing(spacing, ndim)
    assert got == result and all(type(s) is float for s in got)


@pytest.mark.parametrize(
    ("spacing", "got"),
    [
        ((1.0, 1.0), "(1.0, 1.0)"),
        ((1, 1, 1, 1), "(1.0, 1.0, 1.0, 1.0)"),
        ((1, 0, 1), "(1.0, 0.0, 1.0)"),
        ((1, -2, 1), "(1.0, -2.0, 1.0)"),
        ((1, float("nan"), 1), "(1.0, nan, 1.0)"),
        ((1, float("inf"), 1), "(1.0, inf, 1.0)"),
        ([], "()"),
        (2.0, "2.0"),
        ("1,1,1", "'1,1,1'"),
        (("1", "1", "1"), "('1', '1', '1')"),
        (b"111", "b'111'"),
        ((True, True, True), "(True, True, True)"),
        ((1.0, True, 1.0), "(1.0, True, 1.0)"),
        ([1, None, 1], "[1, None, 1]"),
        ([[1], [1, 1]], "[[1], [1, 1]]"),
    ],
)
def test_spacing_refused(spacing, got):
    message = f"Expected `spacing` to be 3 positive, finite voxel sizes in mm, but got {got}."
    with pytest.raises(ValueError, match=re.escape(message)):
        check_spacing(spacing, 3)


def test_spacing_refuses_boolean_and_string_arrays():
    with pytest.raises(ValueError, match=r"`spacing` to be 2 positive, finite voxel sizes in mm, but got array\(\[ True"):
        check_spacing(np.array([True, True]), 2)
    with pytest.raises(ValueError, match=r"`spacing` to be 2 positive, finite voxel sizes in mm, but got array\(\['1', '1'\]"):
        check_spacing(np.array(["1", "1"]), 2)


# --- check_thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "result"),
    [
        (0.5, (0.5,)),
        (1, (1.0,)),
        ([0.1, 0.5], (0.1, 0.5)),
        ((0.3, 0.3), (0.3, 0.3)),
        (np.array([[0.1], [0.2]]), (0.1, 0.2)),
        (np.float32(0.25), (0.25,)),
        (1e-6, (1e-6,)),
    ],
)
def test_thresholds_accepted(thresholds, result):
    got = check_thresholds(thresholds)
    assert got == result and all(type(t) is float for t in got)


@pytest.mark.parametrize(
    ("thresholds", "got"),
    [
        (0, "0"),
        (1.5, "1.5"),
        (-0.5, "-0.5"),
        (float("nan"), "nan"),
        ([], "[]"),
        ((0.5, 0.0), "(0.5, 0.0)"),
        ("0.5", "'0.5'"),
        (["0.5"], "['0.5']"),
        (True, "True"),
        ([0.5, True], "[0.5, True]"),
        (None, "None"),
        ([[0.1], [0.2, 0.3]], "[[0.1], [0.2, 0.3]]"),
    ],
)
def test_thresholds_refused(thresholds, got):
    with pytest.raises(ValueError, match=re.escape(f"Expected `thresholds` to be one or more values in (0, 1], but got {got}.")):
        check_thresholds(thresholds)


def test_thresholds_distinct_argument_and_wording():
    assert check_thresholds([0.1, 0.3], distinct=True) == (0.1, 0.3)
    with pytest.raises(ValueError, match=re.escape("Expected `thresholds` to be one or more distinct values in (0, 1], but got [0.3, 0.3].")):
        check_thresholds([0.3, 0.3], distinct=True)
    with pytest.raises(ValueError, match=re.escape("Expected `threshold` to be a Dice value, but got 2.")):
        check_thresholds(2, "threshold", what="a Dice value")


# --- check_choice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("sigmoid", ("softmax", "sigmoid")), ("a", ["a"]), (2, (1, 2)), (np.int64(2), (1, 2)), (True, (True, False)), (None, (None, 1))],
)
def test_choice_accepted(value, allowed):
    assert check_choice("x", value, allowed) is value


@pytest.mark.parametrize(
    ("value", "allowed", "message"),
    [
        ("soft", ("softmax", "sigmoid"), "Expected `x` to be one of ('softmax', 'sigmoid'), but got 'soft'."),
        ("Softmax", ["softmax"], "Expected `x` to be one of ('softmax',), but got 'Softmax'."),
        (True, (1, 2), "Expected `x` to be one of (1, 2), but got True."),
        (1, (True, False), "Expected `x` to be one of (True, False), but got 1."),
        (None, ("a",), "Expected `x` to be one of ('a',), but got None."),
        (["a"], ("a",), "Expected `x` to be one of ('a',), but got ['a']."),
    ],
)
def test_choice_refused(value, allowed, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_choice("x", value, allowed)


def test_choice_refuses_an_array():
    with pytest.raises(ValueError, match=r"Expected `x` to be one of \('a', 'b'\), but got array"):
        check_choice("x", np.array(["a", "b"]), ("a", "b"))


# --- check_positive_int --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "minimum", "result"), [(1, 1, 1), (7, 1, 7), (np.int64(3), 1, 3), (0, 0, 0), (5, 5, 5)])
def test_positive_int_accepted(value, minimum, result):
    got = check_positive_int("n", value, minimum=minimum)
    assert got == result and type(got) is int


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [
        (0, 1, "Expected `n` to be a positive int, but got 0."),
        (-3, 1, "Expected `n` to be a positive int, but got -3."),
        (2.0, 1, "Expected `n` to be a positive int, but got 2.0."),
        ("2", 1, "Expected `n` to be a positive int, but got '2'."),
        (None, 1, "Expected `n` to be a positive int, but got None."),
        (True, 1, "Expected `n` to be a positive int, but got True."),
        (np.True_, 1, "Expected `n` to be a positive int, but got np.True_."),
        (-1, 0, "Expected `n` to be an int >= 0, but got -1."),
        (False, 0, "Expected `n` to be an int >= 0, but got False."),
    ],
)
def test_positive_int_refused(value, minimum, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_positive_int("n", value, minimum=minimum)


# --- check_finite --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "result"),
    [
        (2, {}, 2.0),
        (-1e300, {}, -1e300),
        (np.float32(0.5), {}, 0.5),
        (np.int64(3), {"minimum": 0.0}, 3.0),
        (0.0, {"minimum": 0.0}, 0.0),
        (0.1, {"minimum": 0.0, "strict": True}, 0.1),
    ],
)
def test_finite_accepted(value, kwargs, result):
    got = check_finite("alpha", value, **kwargs)
    assert got == result and type(got) is float


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (float("nan"), {}, "Expected `alpha` to be a finite number, but got nan."),
        (float("inf"), {}, "Expected `alpha` to be a finite number, but got inf."),
        (-1, {"minimum": 0.0}, "Expected `alpha` to be a finite number >= 0, but got -1."),
        (0.0, {"minimum": 0.0, "strict": True}, "Expected `alpha` to be a finite number > 0, but got 0.0."),
        (0.5, {"minimum": 1.5}, "Expected `alpha` to be a finite number >= 1.5, but got 0.5."),
        ("1.0", {}, "Expected `alpha` to be a finite number, but got '1.0'."),
        (None, {}, "Expected `alpha` to be a finite number, but got None."),
        ([1.0], {}, "Expected `alpha` to be a finite number, but got [1.0]."),
        (True, {}, "Expected `alpha` to be a finite number, but got True."),
        (np.False_, {"minimum": 0.0}, "Expected `alpha` to be a finite number >= 0, but got np.False_."),
        (-1.0, {"minimum": 0.0, "what": "a finite, non-negative distance"}, "Expected `alpha` to be a finite, non-negative distance, but got -1.0."),
    ],
)
def test_finite_refused(value, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_finite("alpha", value, **kwargs)


# --- the callers share the messages --------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "spacing"),
    [
        (lambda kw: instance_maps(np.zeros((1, 3, 3), dtype=np.int64), **kw), True),
        (lambda kw: connected_components(np.zeros((3, 3), dtype=bool), **kw), False),
        (lambda kw: evaluate_case(np.zeros((3, 3), int), np.zeros((3, 3), int), **kw), True),
        (lambda kw: cc_dice(np.zeros((3, 3), dtype=bool), np.zeros((3, 3), dtype=bool), **kw), True),
    ],
    ids=["instance_maps", "connected_components", "evaluate_case", "cc_dice"],
)
def test_callers_raise_the_validators_messages(call, spacing):
    with pytest.raises(ValueError, match=re.escape("Expected `connectivity` to be one of (4, 8) for 2D data, but got 6.")):
        call({"connectivity": 6})
    if spacing:
        message = "Expected `spacing` to be 2 positive, finite voxel sizes in mm, but got (1.0, True)."
        with pytest.raises(ValueError, match=re.escape(message)):
            call({"spacing": (1.0, True)})
