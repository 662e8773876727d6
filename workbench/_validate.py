"""Argument checks shared by every module, with one message template.

Every check names the argument, says what was expected and repeats what it got:
``Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got 4.`` Checks raise
:class:`ValueError` for a wrong value or a wrong type alike (so one ``except ValueError`` catches
every bad argument), never ``assert``. Booleans are refused wherever a number is expected
(``True`` is an ``int`` to Python, never a connectivity, a spacing or a threshold), and strings
wherever numbers are (``"1,1,1"`` is refused, not parsed). Modules call these instead of writing
their own; ``tests/test_validate.py`` pins the messages.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "CONNECTIVITIES",
    "DEFAULT_CONNECTIVITY",
    "DEFAULT_THRESHOLDS",
    "check_choice",
    "check_connectivity",
    "check_finite",
    "check_numbers",
    "check_positive_int",
    "check_spacing",
    "check_spacing_option",
    "check_thresholds",
    "expected",
]

CONNECTIVITIES: dict[int, tuple[int, ...]] = {2: (4, 8), 3: (6, 18, 26)}
"""Connected-component connectivities by number of spatial dimensions; the last is full connectivity."""

DEFAULT_CONNECTIVITY = 26
"""Full 3D connectivity, the default everywhere (cc3d's; scipy.ndimage.label's would be 6)."""

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.3, 0.5)
"""Pair-Dice thresholds of the one-to-one lesion matching, the multi-class paper's three."""

T = TypeVar("T")


def expected(argument: str, what: str, got: Any) -> str:
    """The one message template.

    Parameters
    ----------
    argument : str
        Name of the argument (or field), shown in backticks.
    what : str
        What was expected, completing "Expected `argument` to be ...".
    got : object
        The value received, shown with ``repr``.

    Returns
    -------
    str

    Examples
    --------
    >>> expected("workers", "a positive int", 0)
    'Expected `workers` to be a positive int, but got 0.'
    """
    return f"Expected `{argument}` to be {what}, but got {got!r}."


def check_choice(argument: str, value: T, allowed: Sequence[T]) -> T:
    """``value`` if it is one of ``allowed``.

    Parameters
    ----------
    argument : str
        Name of the argument, for the message.
    value : object
    allowed : sequence
        The accepted values; a boolean matches only a boolean (``True`` is not ``1``).

    Returns
    -------
    object
        ``value`` itself.

    Raises
    ------
    ValueError
        ``Expected `mode` to be one of ('softmax', 'sigmoid'), but got 'soft'.``

    Examples
    --------
    >>> check_choice("mode", "sigmoid", ("softmax", "sigmoid"))
    'sigmoid'
    """
    allowed = tuple(allowed)
    if not any(_same(value, option) for option in allowed):
        raise ValueError(expected(argument, f"one of {allowed}", value))
    return value


def check_connectivity(connectivity: int | None, ndim: int | None = None) -> int:
    """A connectivity valid for ``ndim``-D data; None gives full connectivity.

    Parameters
    ----------
    connectivity : int or None
        6, 18 or 26 in 3D; 4 or 8 in 2D; None: the full one (26 / 8). A whole float (``26.0``)
        passes as its int; booleans are refused.
    ndim : {2, 3} or None
        Spatial dimensions of the data; None when not yet known (any of 4, 6, 8, 18, 26, and
        None gives :data:`DEFAULT_CONNECTIVITY`).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``Expected `connectivity` to be one of (6, 18, 26) for 3D data, but got 4.``, or
        ``ndim`` other than 2, 3 and None.

    Examples
    --------
    >>> check_connectivity(None, 2), check_connectivity(6, 3), check_connectivity(8)
    (8, 6, 8)
    """
    if ndim is None:
        allowed = tuple(sorted({c for values in CONNECTIVITIES.values() for c in values}))
        where = ""
        default = DEFAULT_CONNECTIVITY
    else:
        if isinstance(ndim, bool) or ndim not in CONNECTIVITIES:
            raise ValueError(expected("ndim", f"one of {tuple(CONNECTIVITIES)} (spatial dimensions)", ndim))
        allowed = CONNECTIVITIES[ndim]
        where = f" for {ndim}D data"
        default = allowed[-1]
    if connectivity is None:
        return default
    if not any(_same(connectivity, option) for option in allowed):
        raise ValueError(expected("connectivity", f"one of {allowed}{where}", connectivity))
    return int(connectivity)


def check_spacing(spacing: Any, ndim: int) -> tuple[float, ...]:
    """``spacing`` as ``ndim`` positive, finite voxel sizes in mm; None gives 1 mm each.

    Parameters
    ----------
    spacing : sequence of float, ndarray, or None
        One voxel size per spatial axis (any array shape holding ``ndim`` numbers); a single
        number passes when ``ndim`` is 1.
    ndim : int
        Number of spatial axes.

    Returns
    -------
    tuple of float
        ``ndim`` values.

    Raises
    ------
    ValueError
        If there are not ``ndim`` values, or one is not a positive finite number: strings
        (``"1,1,1"``) and booleans are refused, not converted.
        ``Expected `spacing` to be 3 positive, finite voxel sizes in mm, but got (1.0, 1.0).``

    Examples
    --------
    >>> check_spacing([1, 1, 2.5], 3)
    (1.0, 1.0, 2.5)
    >>> check_spacing(None, 2)
    (1.0, 1.0)
    """
    if spacing is None:
        return (1.0,) * ndim
    what = f"{ndim} positive, finite voxel sizes in mm"
    values = _numbers(spacing)
    if values is None:
        raise ValueError(expected("spacing", what, spacing))
    if values.size != ndim or not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(expected("spacing", what, tuple(values.tolist()) if np.ndim(spacing) else spacing))
    return tuple(float(s) for s in values)


def check_spacing_option(spacing: Any) -> tuple[float, ...] | None:
    """A ``spacing`` option given before the data: None, or 2 or 3 positive, finite voxel sizes.

    Losses take ``spacing`` at construction, when the number of spatial axes is not yet known;
    :func:`check_spacing` checks it against the data later.

    Parameters
    ----------
    spacing : sequence of float, ndarray, or None
        One voxel size in mm per spatial axis; None: 1 mm each once the data is known. A single
        number is refused (not broadcast to every axis: anisotropic data would then be wrong
        without a word), and so are strings and booleans.

    Returns
    -------
    tuple of float or None

    Raises
    ------
    ValueError
        ``Expected `spacing` to be None or 2 or 3 positive, finite voxel sizes in mm (one per
        spatial axis), but got 1.0.``

    Examples
    --------
    >>> check_spacing_option([1, 1, 2.5]), check_spacing_option(None)
    ((1.0, 1.0, 2.5), None)
    """
    if spacing is None:
        return None
    values = _numbers(spacing)
    if values is None or np.ndim(spacing) != 1 or values.size not in CONNECTIVITIES:
        what = "None or 2 or 3 positive, finite voxel sizes in mm (one per spatial axis)"
        raise ValueError(expected("spacing", what, spacing))
    return check_spacing(values, values.size)


def check_numbers(argument: str, value: Any, size: int, what: str) -> tuple[float, ...]:
    """``value`` as a tuple of ``size`` real numbers (any array shape, read in flat order).

    Parameters
    ----------
    argument : str
        Name of the argument, for the message.
    value : sequence of float or ndarray
        Strings (``"12"`` is not ``(1, 2)``), booleans and single numbers are refused.
    size : int
        How many numbers.
    what : str
        The expectation the message states, e.g. ``"a pair (w_min, w_max) of numbers"``.

    Returns
    -------
    tuple of float
        Range checks (finite, ordered, ...) are the caller's.

    Raises
    ------
    ValueError
        ``Expected `clip` to be a pair (w_min, w_max) of numbers, but got -1.``

    Examples
    --------
    >>> check_numbers("clip", [1, 2e5], 2, "a pair (w_min, w_max) of numbers")
    (1.0, 200000.0)
    """
    values = _numbers(value)
    if values is None or np.ndim(value) == 0 or values.size != size:
        raise ValueError(expected(argument, what, value))
    return tuple(float(v) for v in values)


def check_thresholds(
    thresholds: Any, argument: str = "thresholds", *, distinct: bool = False, what: str | None = None
) -> tuple[float, ...]:
    """One or more matching thresholds in (0, 1], as a tuple of float.

    Parameters
    ----------
    thresholds : float or sequence of float
        One number, or numbers in any array shape (read in flat order). Strings and booleans
        are refused.
    argument : str
        Name of the argument, for the message.
    distinct : bool
        Refuse a value given twice.
    what : str, optional
        The expectation the message states; default ``"one or more values in (0, 1]"`` (with
        ``distinct``: ``"one or more distinct values in (0, 1]"``).

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        None given, a value outside (0, 1] or NaN, a repeated value with ``distinct``, or
        something that is not numbers: ``Expected `thresholds` to be one or more values in
        (0, 1], but got [0.5, 2].``

    Examples
    --------
    >>> check_thresholds([0.1, 0.5]), check_thresholds(0.5, "threshold")
    ((0.1, 0.5), (0.5,))
    """
    if what is None:
        what = f"one or more {'distinct ' if distinct else ''}values in (0, 1]"
    values = _numbers(thresholds)
    if values is None or values.size == 0 or not np.all((values > 0.0) & (values <= 1.0)):
        raise ValueError(expected(argument, what, thresholds))
    if distinct and np.unique(values).size != values.size:
        raise ValueError(expected(argument, what, thresholds))
    return tuple(float(t) for t in values)


def check_positive_int(argument: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (booleans refused).

    Parameters
    ----------
    argument : str
        Name of the argument, for the message.
    value : int
        A Python or numpy integer; floats, even whole ones, are refused.
    minimum : int
        Smallest accepted value.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``Expected `workers` to be a positive int, but got 0.`` (with ``minimum=0``: ``an int
        >= 0``).

    Examples
    --------
    >>> check_positive_int("workers", 2)
    2
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(expected(argument, what, value))
    return int(value)


def check_finite(
    argument: str, value: Any, *, minimum: float | None = None, strict: bool = False, what: str | None = None
) -> float:
    """``value`` as a finite float, optionally ≥ (or > with ``strict``) ``minimum``; booleans refused.

    Parameters
    ----------
    argument : str
        Name of the argument, for the message.
    value : float
        A real number (Python or numpy); strings and booleans are refused.
    minimum : float, optional
        Lower bound.
    strict : bool
        The bound excludes ``minimum`` itself.
    what : str, optional
        The expectation the message states; default ``"a finite number"`` with the bound, e.g.
        ``"a finite number >= 0"``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``Expected `alpha` to be a finite number >= 0, but got -1.``

    Examples
    --------
    >>> check_finite("alpha", 2, minimum=0.0)
    2.0
    """
    if what is None:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        what = f"a finite number{bound}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(expected(argument, what, value))
    number = float(value)
    if not math.isfinite(number) or (minimum is not None and (number <= minimum if strict else number < minimum)):
        raise ValueError(expected(argument, what, value))
    return number


def _same(value: Any, option: Any) -> bool:
    """``value == option``, where a boolean equals only a boolean (a 0-d array counts as its item)."""
    if isinstance(value, np.ndarray):
        if value.ndim:
            return False
        value = value.item()
    if isinstance(value, (bool, np.bool_)) != isinstance(option, (bool, np.bool_)):
        return False
    try:
        return bool(value == option)
    except (TypeError, ValueError):
        return False


def _numbers(value: Any) -> np.ndarray | None:
    """``value`` as a flat float64 array if it holds only real numbers (no bool, no str), else None."""
    if _holds_bool_or_str(value):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nesting
        return None
    if array.dtype.kind not in "iuf":
        return None
    return array.astype(np.float64).ravel()


def _holds_bool_or_str(value: Any) -> bool:
    """Whether ``value`` is, or a list or tuple inside it holds, a boolean or a string."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool_or_str(item) for item in value)
    return False
