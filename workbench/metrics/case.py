"""Every metric of one case, from two label maps: a tidy per-case table and a per-lesion table.

:func:`evaluate_case` and :func:`lesion_table` take the prediction and the reference as integer
label maps of a :class:`~workbench.labels.LabelSchema` (BraTS-METS 2025 by default: labels 0..4),
build each region's binary masks (WT, TC, ET, RC), and evaluate every region independently
(DESIGN §5). Both work on the bounding box of the foreground of either map, plus one voxel, so
the cost follows the lesions rather than the volume; every metric here is unchanged by that crop.

Per region: components of both masks (:func:`~workbench.metrics.matching.connected_components`),
one overlap table, a Hungarian matching per threshold
(:func:`~workbench.metrics.matching.match_instances`), PQ per threshold and size stratum
(:mod:`~workbench.metrics.panoptic`), detection from the same table, CC-Dice
(:func:`~workbench.metrics.ccmetric.cc_dice`, Voronoi distances in mm) and the surface metrics
(:mod:`~workbench.metrics.surface`). Arguments are checked by :mod:`workbench._validate`.

Empty-case policy
-----------------
Some values are 0/0 for a region in a case. :class:`EmptyPolicy` (keyword ``empty``) fills them
according to the region's situation; values that are defined are never changed:

=======================  ==========================  ============================  ==========
situation                undefined values            field                         brats/nan
=======================  ==========================  ============================  ==========
both maps empty          every score (see below)     ``both_empty``                1 / NaN
both maps empty          hd95                        ``hd95_both_empty``           0 / NaN
only reference empty     sq, sensitivity, cc_dice    ``ref_empty``                 0 / NaN
only prediction empty    sq, precision               ``pred_empty``                0 / NaN
exactly one empty        hd95                        ``hd95_one_empty``            374 / NaN
lesions, but no TP       sq                          ``no_match``                  0 / NaN
size stratum w/o lesion  pq, sq, rq of the stratum   ``empty_stratum``             NaN / NaN
=======================  ==========================  ============================  ==========

The scores are dice, pq, sq, rq, sensitivity, precision, f1, cc_dice and surface_dice. Defined
values include Dice, PQ, RQ, F1 and surface Dice 0 when exactly one map is empty, and CC-Dice 0
when only the prediction is. ``"brats"`` (the default) follows BraTS scoring: a region absent
from both maps is a perfect score (Dice 1, HD95 0), a missed or false lesion scores 0 and the
HD95 penalty 374 mm (the BraTS 2023 lesion-wise penalty, about the diagonal of a 240×240×155 mm
volume), and SQ without a TP is 0, as in panoptica. ``EmptyPolicy(both_empty=nan)`` gives
panoptica's conventions for PQ, SQ and RQ (the tests compare the two). An empty size stratum
stays NaN so that per-case means over a stratum average only the cases that have lesions of that
size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

import workbench
from workbench._validate import (
    DEFAULT_THRESHOLDS,
    check_connectivity,
    check_finite,
    check_spacing,
    check_thresholds,
    expected,
)
from workbench.labels import LabelSchema, LabelValueError, get_schema
from workbench.metrics.ccmetric import cc_dice_from_components
from workbench.metrics.matching import OverlapTable, connected_components, match_instances, overlap_table
from workbench.metrics.panoptic import (
    DEFAULT_SIZE_EDGES_MM3,
    PanopticQuality,
    check_size_edges,
    detection_metrics,
    panoptic_quality,
    stratified_panoptic_quality,
)
from workbench.metrics.surface import hd95_from_distances, surface_dice_from_distances, surface_distances

__all__ = [
    "DEFAULT_SURFACE_TOLERANCE_MM",
    "EMPTY_PRESETS",
    "EVALUATE_COLUMNS",
    "LESION_COLUMNS",
    "EmptyPolicy",
    "dice",
    "evaluate_case",
    "lesion_table",
    "validation_scores",
]

Situation = Literal["both_empty", "ref_empty", "pred_empty", "normal"]

DEFAULT_SURFACE_TOLERANCE_MM = 1.0
"""Surface Dice tolerance: one voxel at BraTS' 1 mm isotropic resolution."""

EVALUATE_COLUMNS = ("case_id", "region", "metric", "threshold", "stratum", "value")
LESION_COLUMNS = (
    "case_id",
    "region",
    "ref_id",
    "pred_id",
    "status",
    "dice",
    "ref_voxels",
    "ref_mm3",
    "pred_voxels",
    "pred_mm3",
    "centroid_z",
    "centroid_y",
    "centroid_x",
    "threshold",
)

_NAN = float("nan")
_LESION_THRESHOLDS = "a Dice value in (0, 1] or a non-empty sequence of distinct such values"


@dataclass(frozen=True)
class EmptyPolicy:
    """Values given to metrics that are 0/0 in a region of a case (see the module docstring).

    Attributes
    ----------
    both_empty : float
        Every score when the region is empty in both maps (default 1).
    ref_empty : float
        SQ, sensitivity and CC-Dice when only the reference is empty (default 0).
    pred_empty : float
        SQ and precision when only the prediction is empty (default 0).
    no_match : float
        SQ when both hold lesions but none matched (default 0).
    hd95_both_empty : float
        HD95 in mm when the region is empty in both maps (default 0).
    hd95_one_empty : float
        HD95 in mm when exactly one map is empty (default 374, BraTS' penalty).
    empty_stratum : float
        PQ, SQ and RQ of a size stratum holding no reference and no predicted lesion
        (default NaN).
    """

    both_empty: float = 1.0
    ref_empty: float = 0.0
    pred_empty: float = 0.0
    no_match: float = 0.0
    hd95_both_empty: float = 0.0
    hd95_one_empty: float = 374.0
    empty_stratum: float = _NAN

    def fill(self, value: float, situation: Situation) -> float:
        """``value`` if defined, else this policy's score for ``situation``."""
        if not math.isnan(value):
            return float(value)
        return {
            "both_empty": self.both_empty,
            "ref_empty": self.ref_empty,
            "pred_empty": self.pred_empty,
            "normal": self.no_match,
        }[situation]

    def fill_hd95(self, value: float, situation: Situation) -> float:
        """``value`` if defined, else this policy's HD95 for ``situation``."""
        if not math.isnan(value):
            return float(value)
        return self.hd95_both_empty if situation == "both_empty" else self.hd95_one_empty


EMPTY_PRESETS: dict[str, EmptyPolicy] = {
    "brats": EmptyPolicy(),
    "nan": EmptyPolicy(*(_NAN,) * 7),
}


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice ``2·|P ∩ R| / (|P| + |R|)`` of two binary masks; NaN when both are empty.

    Parameters
    ----------
    pred, ref : ndarray of bool, same shape

    Examples
    --------
    >>> dice(np.array([1, 1, 0], dtype=bool), np.array([0, 1, 1], dtype=bool))
    0.5
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"Expected `pred` and `ref` to have the same shape, but got {pred.shape} and {ref.shape}.")
    return _dice(np.count_nonzero(pred & ref), np.count_nonzero(pred) + np.count_nonzero(ref))


def _dice(intersection: int, total: int) -> float:
    return float(2.0 * intersection / total) if total else _NAN


def evaluate_case(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    schema: str | LabelSchema = "brats_mets_2025",
    regions: Sequence[str] | None = None,
    spacing: Sequence[float] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    connectivity: int | None = None,
    size_edges_mm3: Sequence[float] = DEFAULT_SIZE_EDGES_MM3,
    surface_tolerance_mm: float = DEFAULT_SURFACE_TOLERANCE_MM,
    empty: Literal["brats", "nan"] | EmptyPolicy = "brats",
    case_id: str | None = None,
) -> pd.DataFrame:
    """Every metric of one case, one row per (region, metric, threshold, stratum).

    Parameters
    ----------
    pred, ref : ndarray of int, shape (Z, Y, X) or (Y, X)
        Prediction and reference label maps with the values of ``schema`` (0 = background).
    schema : str or LabelSchema
        Label schema whose regions are evaluated (default BraTS-METS 2025: WT, TC, ET, RC).
    regions : sequence of str, optional
        Subset of the schema's regions; default all, in schema order.
    spacing : sequence of float, optional
        Voxel size in mm per axis; default 1 mm isotropic.
    thresholds : sequence of float
        Dice thresholds of the instance matching, each in ``(0, 1]``, distinct.
    connectivity : int, optional
        Component connectivity: 6, 18 or 26 in 3D (default 26), 4 or 8 in 2D (default 8).
    size_edges_mm3 : sequence of float
        Edges of the lesion size strata (mm³; mm² in 2D), default
        :data:`~workbench.metrics.panoptic.DEFAULT_SIZE_EDGES_MM3`.
    surface_tolerance_mm : float
        Tolerance of the surface Dice in mm.
    empty : {"brats", "nan"} or EmptyPolicy
        Values of undefined metrics (module docstring).
    case_id : str, optional
        Written into the ``case_id`` column.

    Returns
    -------
    DataFrame
        Columns ``case_id, region, metric, threshold, stratum, value``:

        - threshold-free metrics (``threshold`` NaN, ``stratum`` "all"): ``dice``, ``n_ref``,
          ``n_pred`` (components), ``sensitivity``, ``precision``, ``f1`` (detection, any
          overlap), ``cc_dice`` (mean over reference components), ``surface_dice``, ``hd95`` (mm);
        - per threshold: ``pq``, ``sq``, ``rq``, ``tp``, ``fp``, ``fn`` with ``stratum`` "all",
          and again per size stratum (``"<100"``, ``"100-1000"``, ``">=1000"``).

        Regions come in schema order, then a ``"mean"`` region: per (metric, threshold, stratum),
        the mean over the evaluated regions of the values that are not NaN (NaN if all are), the
        multi-class paper's foreground mean. ``attrs["config"]`` holds options and version.

    Raises
    ------
    ValueError
        On maps of different shapes, not 2D or 3D, with a non-integer dtype, or a bad option.
    LabelValueError
        If a map holds a value the schema does not define.

    Warns
    -----
    UserWarning
        If the prediction is empty while the reference is not (a model that predicts nothing).

    Examples
    --------
    >>> ref = np.zeros((1, 12), dtype=np.uint8); ref[0, 1:4] = 3; ref[0, 8:10] = 3
    >>> pred = np.zeros_like(ref); pred[0, 1:4] = 3; pred[0, 6] = 3
    >>> table = evaluate_case(pred, ref, regions=["ET"], thresholds=[0.5])
    >>> scores = table.query("stratum == 'all' and region == 'ET'").set_index("metric")["value"]
    >>> scores[["dice", "pq", "rq", "f1"]].round(4).to_dict()
    {'dice': 0.6667, 'pq': 0.5, 'rq': 0.5, 'f1': 0.5}
    """
    case = _prepare(pred, ref, schema, regions, spacing, connectivity, case_id)
    options = _check_options(thresholds, size_edges_mm3, surface_tolerance_mm, empty)
    _warn_if_nothing_predicted(case)
    return _case_table(case, options)


def validation_scores(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    schema: str | LabelSchema = "brats_mets_2025",
    spacing: Sequence[float] | None = None,
    thresholds: Sequence[float] = (0.5,),
    connectivity: int | None = None,
    case_id: str | None = None,
) -> pd.DataFrame:
    """The few metrics a training run logs per epoch, cheaply: region Dice, lesion F1 and PQ.

    The same values as :func:`evaluate_case`'s ``dice``, ``f1`` and ``pq`` rows (stratum ``all``,
    empty policy ``brats``), without the surface, CC-Dice and stratified metrics that dominate its
    cost. Parameters and columns as :func:`evaluate_case`; regions in schema order, then ``mean``.

    Examples
    --------
    >>> ref = np.zeros((1, 8), dtype=np.uint8); ref[0, 1:4] = 3
    >>> pred = np.zeros_like(ref); pred[0, 1:4] = 3; pred[0, 6] = 3
    >>> scores = validation_scores(pred, ref, thresholds=[0.5]).query("region == 'ET'")
    >>> scores.set_index("metric")["value"].round(4).to_dict()
    {'dice': 0.8571, 'f1': 0.6667, 'pq': 0.6667}
    """
    case = _prepare(pred, ref, schema, None, spacing, connectivity, case_id)
    options = _check_options(thresholds, DEFAULT_SIZE_EDGES_MM3, DEFAULT_SURFACE_TOLERANCE_MM, "brats")
    rows = []
    for name in case.regions:
        _, _, table, _ = _instances(*case.masks(name), case)
        situation = _situation(table.n_ref, table.n_pred)
        total = int(table.pred_sizes.sum() + table.ref_sizes.sum())
        rows.append((name, "dice", _NAN, "all", options.policy.fill(_dice(int(table.intersection.sum()), total), situation)))
        rows.append((name, "f1", _NAN, "all", options.policy.fill(detection_metrics(table).f1, situation)))
        for threshold in options.thresholds:
            quality = panoptic_quality(match_instances(table, threshold))
            rows += [(name, *row) for row in _quality_rows(quality, threshold, "all", situation, options.policy) if row[0] == "pq"]
    table = pd.DataFrame(rows, columns=["region", "metric", "threshold", "stratum", "value"])
    mean = table.groupby(["metric", "threshold", "stratum"], dropna=False, sort=False)["value"].mean().reset_index()
    table = pd.concat([table, mean.assign(region="mean")], ignore_index=True)
    table.insert(0, "case_id", case.case_id)
    return table[list(EVALUATE_COLUMNS)]


def lesion_table(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    schema: str | LabelSchema = "brats_mets_2025",
    regions: Sequence[str] | None = None,
    spacing: Sequence[float] | None = None,
    threshold: float | Sequence[float] = 0.5,
    connectivity: int | None = None,
    case_id: str | None = None,
) -> pd.DataFrame:
    """One row per reference lesion and per unmatched predicted lesion, per region and threshold.

    Parameters
    ----------
    pred, ref, schema, regions, spacing, connectivity, case_id
        As in :func:`evaluate_case`.
    threshold : float or sequence of float
        Dice threshold of the matching, in ``(0, 1]``, or several distinct ones: components,
        overlaps and centroids are computed once and matched at each.

    Returns
    -------
    DataFrame
        Columns ``case_id, region, ref_id, pred_id, status, dice, ref_voxels, ref_mm3,
        pred_voxels, pred_mm3, centroid_z, centroid_y, centroid_x, threshold``. One block of rows
        per threshold, in the order given (the ``threshold`` column tells which; the table equals
        the concatenation of the single-threshold tables); within it, per region, the reference
        lesions in id order (status ``"TP"`` or ``"FN"``), then the unmatched predicted lesions
        (``"FP"``).

        - ``ref_id``, ``pred_id``: component ids (nullable Int64, ``<NA>`` where there is none),
          numbered as :func:`~workbench.metrics.matching.connected_components` numbers the
          region's mask of the whole map (cc3d raster order);
        - ``dice``: the matched pair's Dice for TP, 0 for FN and FP (BraTS' lesion-wise score);
        - sizes in voxels (Int64) and mm³ (mm² in 2D), NaN for the side that is absent;
        - ``centroid_z, centroid_y, centroid_x``: centre of mass of the reference lesion (of the
          predicted one for FP rows), in voxel coordinates along array axes 0, 1, 2; for 2D maps
          ``centroid_z`` is NaN and y, x are axes 0, 1.

    Raises
    ------
    ValueError, LabelValueError
        As :func:`evaluate_case`; ``ValueError`` also for a threshold outside ``(0, 1]``, an empty
        sequence or a repeated value.

    Examples
    --------
    >>> ref = np.zeros((1, 12), dtype=np.uint8); ref[0, 1:4] = 3; ref[0, 8:10] = 3
    >>> pred = np.zeros_like(ref); pred[0, 1:4] = 3; pred[0, 6] = 3
    >>> lesion_table(pred, ref, regions=["ET"])[["ref_id", "pred_id", "status", "dice", "centroid_x"]]
       ref_id  pred_id status  dice  centroid_x
    0       1        1     TP   1.0         2.0
    1       2     <NA>     FN   0.0         8.5
    2    <NA>        2     FP   0.0         6.0

    Several thresholds at once; grown to 5 voxels, the first lesion has a pair Dice of 0.75:

    >>> ref[0, 4:6] = 3; pred[0, 6] = 0
    >>> lesion_table(pred, ref, regions=["ET"], threshold=[0.5, 0.9])[["threshold", "ref_id", "status", "dice"]]
       threshold  ref_id status  dice
    0        0.5       1     TP  0.75
    1        0.5       2     FN  0.00
    2        0.9       1     FN  0.00
    3        0.9       2     FN  0.00
    4        0.9    <NA>     FP  0.00
    """
    thresholds = check_thresholds(threshold, "threshold", distinct=True, what=_LESION_THRESHOLDS)
    case = _prepare(pred, ref, schema, regions, spacing, connectivity, case_id)
    lesions = {name: _region_lesions(*case.masks(name), case) for name in case.regions}
    # A block of rows per threshold, per region within it: numpy columns, then one DataFrame.
    blocks = [(t, name, _lesion_rows(found, t, case)) for t in thresholds for name, found in lesions.items()]
    return _lesion_frame(blocks, case)


# --------------------------------------------------------------------------- input handling


@dataclass(frozen=True)
class _Case:
    """Validated inputs, held as the voxels that are non-zero in either map.

    Attributes
    ----------
    coords : tuple of ndarray of int64, D arrays of shape (V,)
        Whole-map coordinates of the V voxels non-zero in either map, in raster order.
    voxels : ndarray of int64, shape (V,)
        Their flat indices into the box.
    pred_values, ref_values : ndarray, shape (V,)
        The two maps' labels there.
    box_shape : tuple of int
        Shape of the bounding box of those voxels grown by one voxel (clipped to the map).

    Dense masks are built only inside that box, so every pass over voxels costs in proportion to
    the lesions' extent, not the volume's. The margin keeps each border voxel's outside neighbour
    inside the box: surfaces, components, Voronoi cells (hence CC-Dice) and every other metric are
    those of the whole map.
    """

    coords: tuple[np.ndarray, ...]
    voxels: np.ndarray
    pred_values: np.ndarray
    ref_values: np.ndarray
    box_shape: tuple[int, ...]
    schema: LabelSchema
    regions: tuple[str, ...]
    spacing: tuple[float, ...]
    connectivity: int
    case_id: str | None

    @property
    def voxel_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def masks(self, region: str) -> tuple[np.ndarray, np.ndarray]:
        """Binary masks of ``region`` in the prediction and the reference, bool, ``box_shape``."""
        members = self.schema.regions[region]
        masks = []
        for values in (self.pred_values, self.ref_values):
            mask = np.zeros(self.box_shape, dtype=bool)
            np.put(mask, self.voxels[np.isin(values, members)], True)
            masks.append(mask)
        return masks[0], masks[1]


def _prepare(
    pred: np.ndarray,
    ref: np.ndarray,
    schema: str | LabelSchema,
    regions: Sequence[str] | None,
    spacing: Sequence[float] | None,
    connectivity: int | None,
    case_id: str | None,
) -> _Case:
    schema = get_schema(schema)
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(
            f"Expected `pred` and `ref` label maps of the same shape, but got {pred.shape} and {ref.shape}."
        )
    if pred.ndim not in (2, 3) or pred.size == 0:
        raise ValueError(f"Expected non-empty 2D (Y, X) or 3D (Z, Y, X) label maps, but got shape {pred.shape}.")
    if case_id is not None and not isinstance(case_id, str):
        raise TypeError(f"Expected `case_id` to be a str or None, but got {type(case_id).__name__}.")
    pred, ref = _check_labels("pred", pred, schema), _check_labels("ref", ref, schema)
    foreground = pred != 0
    foreground |= ref != 0
    coords = np.unravel_index(np.flatnonzero(foreground), pred.shape)
    box = _box(coords, pred.shape)
    box_shape = tuple(s.stop - s.start for s in box)
    return _Case(
        coords=coords,
        voxels=np.ravel_multi_index(tuple(c - s.start for c, s in zip(coords, box)), box_shape),
        pred_values=pred[coords],
        ref_values=ref[coords],
        box_shape=box_shape,
        schema=schema,
        regions=_check_regions(regions, schema),
        spacing=check_spacing(spacing, pred.ndim),
        connectivity=check_connectivity(connectivity, pred.ndim),
        case_id=case_id,
    )


def _box(coords: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Bounding box of the voxels ``coords`` grown by one voxel, clipped; the first voxel if none."""
    if coords[0].size == 0:
        return (slice(0, 1),) * len(shape)
    return tuple(slice(max(int(c.min()) - 1, 0), min(int(c.max()) + 2, n)) for c, n in zip(coords, shape))


def _check_labels(name: str, label_map: np.ndarray, schema: LabelSchema) -> np.ndarray:
    """The label map as integers after checking its values; cheap when they lie in 0..max label."""
    if not (np.issubdtype(label_map.dtype, np.integer) or label_map.dtype == np.bool_):
        if not np.issubdtype(label_map.dtype, np.floating):
            raise ValueError(f"Expected `{name}` to be an integer label map, but got dtype {label_map.dtype}.")
        _validate(name, label_map, schema)  # floats must hold whole numbers of the schema
        return label_map.astype(np.int64)
    allowed = (0, *schema.label_values)
    contiguous = allowed == tuple(range(len(allowed)))
    if not (contiguous and label_map.min() >= 0 and label_map.max() < len(allowed)):
        _validate(name, label_map, schema)
    return label_map


def _validate(name: str, label_map: np.ndarray, schema: LabelSchema) -> None:
    try:
        schema.validate(label_map)
    except LabelValueError as exc:
        raise LabelValueError(f"`{name}`: {exc}") from None


def _check_regions(regions: Sequence[str] | None, schema: LabelSchema) -> tuple[str, ...]:
    available = schema.region_names
    if not available:
        raise ValueError(f"Schema {schema.name!r} defines no regions to evaluate.")
    if regions is None:
        return available
    if isinstance(regions, str):
        regions = (regions,)
    chosen = tuple(regions)
    unknown = [r for r in chosen if r not in available]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(expected("regions", f"distinct regions of schema {schema.name!r} {available}", chosen))
    return chosen


@dataclass(frozen=True)
class _Options:
    """The checked options of :func:`evaluate_case`.

    Attributes
    ----------
    thresholds : tuple of float
        Distinct matching thresholds in (0, 1].
    edges : tuple of float
        Size strata edges in mm³.
    tolerance : float
        Surface Dice tolerance in mm.
    policy : EmptyPolicy
    """

    thresholds: tuple[float, ...]
    edges: tuple[float, ...]
    tolerance: float
    policy: EmptyPolicy


def _check_options(
    thresholds: Sequence[float],
    size_edges_mm3: Sequence[float],
    surface_tolerance_mm: float,
    empty: str | EmptyPolicy,
) -> _Options:
    """:func:`evaluate_case`'s options, checked in this order; ``ValueError`` naming the first bad one."""
    return _Options(
        thresholds=check_thresholds(thresholds, distinct=True, what="distinct Dice values in (0, 1]"),
        edges=check_size_edges(size_edges_mm3),
        tolerance=check_finite(
            "surface_tolerance_mm", surface_tolerance_mm, minimum=0.0, what="a finite, non-negative distance in mm"
        ),
        policy=_check_policy(empty),
    )


def _check_policy(empty: str | EmptyPolicy) -> EmptyPolicy:
    if isinstance(empty, EmptyPolicy):
        return empty
    if isinstance(empty, str) and empty in EMPTY_PRESETS:
        return EMPTY_PRESETS[empty]
    raise ValueError(expected("empty", f"one of {tuple(EMPTY_PRESETS)} or an EmptyPolicy", empty))


# --------------------------------------------------------------------------- tables


def _warn_if_nothing_predicted(case: _Case) -> None:
    """Warn (at :func:`evaluate_case`'s caller) when the prediction is empty and the reference is not."""
    if not case.pred_values.any() and case.ref_values.any():
        warnings.warn(
            f"The prediction{'' if case.case_id is None else f' of case {case.case_id!r}'} is empty (all 0) while the "
            "reference is not: every reference lesion is a false negative.",
            stacklevel=3,
        )


def _case_table(case: _Case, options: _Options) -> pd.DataFrame:
    """:func:`evaluate_case`'s table: each region's rows, then the ``"mean"`` region; config in ``attrs``."""
    rows = [(name, *row) for name in case.regions for row in _region_rows(*case.masks(name), case, options)]
    table = pd.DataFrame(rows, columns=["region", "metric", "threshold", "stratum", "value"])
    mean = table.groupby(["metric", "threshold", "stratum"], dropna=False, sort=False)["value"].mean().reset_index()
    table = pd.concat([table, mean.assign(region="mean")], ignore_index=True)
    table.insert(0, "case_id", case.case_id)
    table.attrs["config"] = {
        "schema": case.schema.name,
        "regions": list(case.regions),
        "spacing": list(case.spacing),
        "connectivity": case.connectivity,
        "thresholds": list(options.thresholds),
        "matching": "hungarian, max total Dice, Dice >= threshold",
        "size_edges_mm3": list(options.edges),
        "surface_tolerance_mm": options.tolerance,
        "empty": asdict(options.policy),
        "workbench_version": workbench.__version__,
    }
    return table[list(EVALUATE_COLUMNS)]


def _lesion_frame(blocks: list[tuple[float, str, dict[str, np.ndarray]]], case: _Case) -> pd.DataFrame:
    """:func:`lesion_table`'s table from ``(threshold, region, columns of _lesion_rows)`` blocks, in order."""
    counts = [len(rows["status"]) for _, _, rows in blocks]
    columns = {key: np.concatenate([rows[key] for _, _, rows in blocks]) for key in blocks[0][2]}
    columns["case_id"] = np.full(sum(counts), case.case_id, dtype=object)
    columns["region"] = np.repeat(np.array([name for _, name, _ in blocks], dtype=object), counts)
    columns["threshold"] = np.repeat(np.array([t for t, _, _ in blocks], dtype=np.float64), counts)
    columns["status"] = columns["status"].astype(object)
    for side in ("ref", "pred"):
        voxels = columns[f"{side}_voxels"]
        columns[f"{side}_mm3"] = np.where(voxels == 0, _NAN, voxels * case.voxel_mm3)
    for key in ("ref_id", "pred_id", "ref_voxels", "pred_voxels"):  # Int64, <NA> for an absent lesion
        columns[key] = pd.arrays.IntegerArray(columns[key], columns[key] == 0)
    return pd.DataFrame({key: columns[key] for key in LESION_COLUMNS})


# --------------------------------------------------------------------------- one region


def _situation(n_ref: int, n_pred: int) -> Situation:
    if n_ref == 0:
        return "both_empty" if n_pred == 0 else "ref_empty"
    return "pred_empty" if n_pred == 0 else "normal"


def _instances(
    pred_mask: np.ndarray, ref_mask: np.ndarray, case: _Case
) -> tuple[np.ndarray, np.ndarray, OverlapTable, np.ndarray]:
    """Component ids of the prediction and the reference at the case's foreground voxels, shape
    (V,) each, their overlap table (computed from those V voxels only), and the reference's
    component map (the mask's shape)."""
    pred_labels, _ = connected_components(pred_mask, connectivity=case.connectivity)
    ref_labels, _ = connected_components(ref_mask, connectivity=case.connectivity)
    pred_ids, ref_ids = pred_labels.ravel()[case.voxels], ref_labels.ravel()[case.voxels]
    return pred_ids, ref_ids, overlap_table(pred_ids, ref_ids), ref_labels


def _region_rows(
    pred_mask: np.ndarray, ref_mask: np.ndarray, case: _Case, options: _Options
) -> list[tuple[str, float, str, float]]:
    """(metric, threshold, stratum, value) rows of one region."""
    policy = options.policy
    _, _, table, ref_labels = _instances(pred_mask, ref_mask, case)
    situation = _situation(table.n_ref, table.n_pred)
    detection = detection_metrics(table)
    scores = {
        "dice": _dice(int(table.intersection.sum()), int(table.pred_sizes.sum() + table.ref_sizes.sum())),
        "sensitivity": detection.sensitivity,
        "precision": detection.precision,
        "f1": detection.f1,
        "cc_dice": _cc_dice(pred_mask, ref_labels, table.n_ref, situation, case),
    }
    scores["surface_dice"], hd95 = _surface_metrics(pred_mask, ref_mask, situation, case, options.tolerance)
    rows = [(metric, _NAN, "all", policy.fill(value, situation)) for metric, value in scores.items()]
    rows += [
        ("n_ref", _NAN, "all", float(table.n_ref)),
        ("n_pred", _NAN, "all", float(table.n_pred)),
        ("hd95", _NAN, "all", policy.fill_hd95(hd95, situation)),
    ]
    ref_mm3, pred_mm3 = table.ref_sizes * case.voxel_mm3, table.pred_sizes * case.voxel_mm3
    for threshold in options.thresholds:
        matching = match_instances(table, threshold)
        rows += _quality_rows(panoptic_quality(matching), threshold, "all", situation, policy)
        for stratum, quality in stratified_panoptic_quality(matching, ref_mm3, pred_mm3, options.edges).items():
            rows += _quality_rows(quality, threshold, stratum, _stratum_situation(quality), policy)
    return rows


def _surface_metrics(
    pred_mask: np.ndarray, ref_mask: np.ndarray, situation: Situation, case: _Case, tolerance: float
) -> tuple[float, float]:
    """Surface Dice and HD95 from one computation of the surface distances; NaN where undefined."""
    if situation == "normal":
        distances = surface_distances(pred_mask, ref_mask, spacing=case.spacing)
        return surface_dice_from_distances(*distances, tolerance_mm=tolerance), hd95_from_distances(*distances)
    if situation == "both_empty":
        return _NAN, _NAN
    return 0.0, _NAN  # no border voxel of the non-empty mask lies near the empty one's


def _cc_dice(pred_mask: np.ndarray, ref_labels: np.ndarray, n_ref: int, situation: Situation, case: _Case) -> float:
    """Mean CC-Dice over the reference components ``ref_labels`` (``1..n_ref``, already computed for
    the matching); NaN without any, 0 when nothing is predicted."""
    if situation != "normal":
        return 0.0 if situation == "pred_empty" else _NAN
    return float(cc_dice_from_components(pred_mask, ref_labels, n_ref, case.spacing).mean())


def _stratum_situation(quality: PanopticQuality) -> Situation | Literal["empty_stratum"]:
    n_ref, n_pred = quality.tp + quality.fn, quality.tp + quality.fp
    return "empty_stratum" if n_ref == n_pred == 0 else _situation(n_ref, n_pred)


def _quality_rows(
    quality: PanopticQuality,
    threshold: float,
    stratum: str,
    situation: Situation | Literal["empty_stratum"],
    policy: EmptyPolicy,
) -> list[tuple[str, float, str, float]]:
    if situation == "empty_stratum":
        scores = dict.fromkeys(("pq", "sq", "rq"), policy.empty_stratum)
    else:
        scores = {m: policy.fill(getattr(quality, m), situation) for m in ("pq", "sq", "rq")}
    counts = {m: float(getattr(quality, m)) for m in ("tp", "fp", "fn")}
    return [(metric, threshold, stratum, value) for metric, value in (scores | counts).items()]


@dataclass(frozen=True)
class _RegionLesions:
    """What a region's lesion rows need at any threshold: the overlap table and the centroids,
    shape (N, D), of the reference and the predicted components."""

    table: OverlapTable
    ref_centroids: np.ndarray
    pred_centroids: np.ndarray


def _region_lesions(pred_mask: np.ndarray, ref_mask: np.ndarray, case: _Case) -> _RegionLesions:
    """Components, overlaps and centroids of one region, computed once for every threshold."""
    pred_ids, ref_ids, table, _ = _instances(pred_mask, ref_mask, case)
    return _RegionLesions(
        table, _centroids(ref_ids, table.ref_sizes, case.coords), _centroids(pred_ids, table.pred_sizes, case.coords)
    )


def _lesion_rows(lesions: _RegionLesions, threshold: float, case: _Case) -> dict[str, np.ndarray]:
    """Columns of one region's lesion rows at one threshold: ``status``, ``dice``, the centroids,
    and ``ref_id, pred_id, ref_voxels, pred_voxels`` with 0 for absent; the reference lesions in id
    order, then the unmatched predicted ones."""
    table = lesions.table
    matching = match_instances(table, threshold)
    matched_pred = np.zeros(table.n_ref, dtype=np.int64)  # 0: unmatched
    matched_pred[matching.ref_ids - 1] = matching.pred_ids
    matched_dice = np.zeros(table.n_ref)
    matched_dice[matching.ref_ids - 1] = matching.dice
    matched_voxels = np.zeros(table.n_ref, dtype=np.int64)
    matched_voxels[matching.ref_ids - 1] = table.pred_sizes[matching.pred_ids - 1]
    unmatched = np.setdiff1d(np.arange(1, table.n_pred + 1), matching.pred_ids).astype(np.int64)
    none = np.zeros(unmatched.size, dtype=np.int64)
    centroids = np.concatenate([lesions.ref_centroids, lesions.pred_centroids[unmatched - 1]])
    axes = ("centroid_z", "centroid_y", "centroid_x")
    return {
        "ref_id": np.concatenate([np.arange(1, table.n_ref + 1, dtype=np.int64), none]),
        "pred_id": np.concatenate([matched_pred, unmatched]),
        "status": np.concatenate([np.where(matched_pred > 0, "TP", "FN"), np.full(unmatched.size, "FP")]),
        "dice": np.concatenate([matched_dice, np.zeros(unmatched.size)]),
        "ref_voxels": np.concatenate([table.ref_sizes.astype(np.int64), none]),
        "pred_voxels": np.concatenate([matched_voxels, table.pred_sizes[unmatched - 1].astype(np.int64)]),
        **{name: np.full(len(centroids), _NAN) for name in axes[: 3 - len(case.coords)]},  # 2D: no z
        **{name: centroids[:, axis] for axis, name in enumerate(axes[3 - len(case.coords) :])},
    }


def _centroids(ids: np.ndarray, sizes: np.ndarray, coords: tuple[np.ndarray, ...]) -> np.ndarray:
    """Centre of mass of components ``1..N``, shape (N, D) float64, from the component id (V,)
    and the whole-map coordinates (D arrays of shape (V,)) of the foreground voxels."""
    sums = [np.bincount(ids, weights=c, minlength=len(sizes) + 1)[1:] for c in coords]
    return np.stack(sums, axis=1).reshape(len(sizes), len(coords)) / sizes[:, None]
