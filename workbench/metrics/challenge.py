"""Challenge scoring presets: the official BraTS 2025 scorer, reproduced rule for rule.

The BraTS 2025 challenges rank submissions with ``brats-evaluation`` (PyPI): ``brats-evaluate``
runs panoptica with one of its bundled configs on every case, then ``brats-parse-metrics``
turns panoptica's per-region results into the leaderboard columns. :func:`score_case` gives the
same columns for one case from two label maps, without panoptica, and the per-lesion table
behind every number; :data:`PRESETS` holds each bundled config as data.

The rules (all configs share them; only the label groups differ)
-----------------------------------------------------------------
* **Regions** (panoptica's label groups): a binary mask of the group's label values. A label
  value outside every group is an error, as in panoptica.
* **Axis order.** brats-evaluation reads NIfTI files with SimpleITK, whose arrays are (z, y, x):
  the reverse of nibabel's (i, j, k), in which :func:`score_case` takes its maps. The presets
  work on the maps transposed to SimpleITK's order, so that lesions are numbered as panoptica
  numbers them, which decides ties in the matching (below).
* **Lesions**: 26-connected components (cc3d) in 3D, 4-connected (scipy's default) in 2D,
  numbered in raster order of SimpleITK's array (x fastest, z slowest).
* **Matching**: panoptica's ``MaxBipartiteMatching`` on Dice, threshold 1e-6: one assignment
  (:func:`scipy.optimize.linear_sum_assignment`) over the whole reference × prediction cost
  matrix, rows and columns in lesion number order, cost ``1 - Dice`` for a pair with
  Dice ≥ 1e-6 and ``1 + 1e-6`` for any other; an assigned pair of cost < 1 is a match. Among
  matchings of equal cost (equal-Dice candidates, e.g. equal speckles inside one lesion) the
  solver's choice follows the lesion numbers, so it is made on the same matrix as panoptica's.
  :func:`~workbench.metrics.match_instances`, which the workbench's own metrics use, solves each
  group of overlapping lesions on its own and may break such ties otherwise.
* **Counts**: ``tp``, ``fp = n_pred - tp``, ``fn = n_ref - tp``; ``prec = tp / (tp + fp)`` and
  ``rec = tp / (tp + fn)`` (NaN when 0/0); ``f1 = rq = tp / (tp + ½fp + ½fn)``, 0 when
  ``tp = 0`` but lesions exist, NaN when neither map has any.
* **Spacing as SimpleITK reads it**: a NIfTI header stores voxel sizes in float32, and SimpleITK
  widens them to float64 unrounded (0.64 is 0.6399999856948853), while
  :func:`~workbench.data.nifti.load_label` gives the shortest decimal (0.64). The presets round
  every spacing they are given to float32 before any volume or distance, so that a lesion whose
  volume lands on a size threshold in decimal (25 voxels of 0.64 × 1.25 × 1 mm: 19.99999955 mm³
  < 20) falls on the same side as in the official scorer. A spacing read from a NIfTI header
  gives back the header's value exactly (the shortest decimal of a float32 rounds back to it).
  Voxel volume: the product of the spacing in (x, y, z) order, as panoptica computes it.
* **Spacing in reverse axis order.** panoptica takes the spacing as SimpleITK gives it,
  (x, y, z), for its (z, y, x) arrays: each axis is measured with another axis's voxel size.
  This changes nothing on isotropic data (BraTS is 1 mm isotropic) and skews every distance on
  anisotropic data. The presets reproduce it (``reverse_spacing=True``);
  ``dataclasses.replace(preset, reverse_spacing=False)`` measures true distances. Volumes (up to
  the rounding of the product) and the NSD tolerance do not depend on the order.
* **Per matched pair**, in mm (the reference header's spacing): Dice; NSD = the mean of the two
  directed fractions of border voxels within ``min(spacing)`` of the other border (border: voxels
  with a face neighbour outside the mask or the image); HD95 = the 95th percentile (linear
  interpolation) of both directed border distances pooled.
* **Global** (the whole region's masks): Dice, and NSD and HD95 as above but **in voxel units,
  with a tolerance of 0.5 voxel** (panoptica computes them without the spacing). When the two
  masks do not overlap: Dice 0, NSD 0, HD95 ∞ if either has a lesion, NaN if neither has.
* **mets parser** (``brats_mets_2025``): a reference lesion is *large* when its volume
  (voxels × voxel volume, mm³) is ≥ 20, else *small*. Large: a matched lesion counts its Dice,
  NSD and HD95 and is detected when its Dice ≥ 0.1; a missed one scores Dice 0, NSD 0, HD95 373
  (the diagonal of the SRI atlas space, mm). Small: detected when matched with Dice ≥ 0.1.
  **Every false positive** scores Dice 0, NSD 0 and HD95 373 in the lesion-wise means and counts
  as an FP of *both* size classes (the official parser cannot attribute FPs to a size). The
  lesion-wise means are over the large lesions and all FPs (NaN when the case has no large
  lesion); precision, recall and F1 per size class from those counts (0 when 0/0; NaN when the
  case has no lesion of that class). Global HD95 ∞ becomes 373.
* **seg parser** (the other challenges): counts as above, the lesion-wise means and (population)
  standard deviations over the matched pairs (Dice 0, NSD 0, HD95 ∞ when there is none; NaN
  when neither map has a lesion), the global metrics with ∞ → 373.

Beyond the official columns, a mets score also gives ``small_fp_by_size`` /
``large_fp_by_size`` (each FP assigned to the size class of its own volume) and the precision
and F1 of each class recomputed with them. ``docs/challenge_scoring.md`` lists every place where
these rules differ from :func:`~workbench.metrics.evaluate_case`'s defaults.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from workbench._validate import CONNECTIVITIES, DEFAULT_CONNECTIVITY, check_spacing
from scipy.optimize import linear_sum_assignment

from workbench.metrics.matching import Matching, OverlapTable, connected_components, overlap_table
from workbench.metrics.surface import border_voxels, point_set_distances

__all__ = ["PRESETS", "ChallengePreset", "RegionScore", "get_preset", "region_score", "score_case", "summarize_scores"]

SRI_DIAGONAL_MM = 373.0
"""HD95 given to a missed or false lesion and to an infinite global HD95 (SRI space diagonal)."""

# Distances within this relative margin of a tolerance count as equal to it (floating point only).
_TIE_RTOL = 1e-9

_OFFICIAL_CONNECTIVITY = {3: DEFAULT_CONNECTIVITY, 2: CONNECTIVITIES[2][0]}
"""The official scorer's lesion connectivity by dimension: full (26, cc3d) in 3D, but face-only (4,
scipy.ndimage.label's default) in 2D, not the full 8 used elsewhere in the package."""


@dataclass(frozen=True)
class ChallengePreset:
    """One bundled configuration of ``brats-evaluation`` and the parser its challenge uses.

    Attributes
    ----------
    name : str
        Workbench name, e.g. ``"brats_mets_2025"``.
    config : str
        The bundled config it reproduces (``brats-evaluate --config NAME``).
    groups : Mapping[str, tuple[int, ...]]
        Region name (as the official column suffix) -> label values, in the config's order.
    parser : {"mets", "seg"}
        ``brats-parse-metrics`` step.
    volume_threshold_mm3, overlap_threshold : float
        mets parser: size split and the Dice a lesion needs to count as detected.
    hd95_penalty : float
    matching_threshold : float
    reverse_spacing : bool
        Measure distances with the spacing in reverse axis order, as brats-evaluation does.
    """

    name: str
    config: str
    groups: Mapping[str, tuple[int, ...]]
    parser: Literal["mets", "seg"] = "seg"
    volume_threshold_mm3: float = 20.0
    overlap_threshold: float = 0.1
    hd95_penalty: float = SRI_DIAGONAL_MM
    matching_threshold: float = 1e-6
    reverse_spacing: bool = True

    @property
    def labels(self) -> tuple[int, ...]:
        """Every label value some group uses; other non-zero values are errors."""
        return tuple(sorted({v for values in self.groups.values() for v in values}))


PRESETS: dict[str, ChallengePreset] = {
    preset.name: preset
    for preset in (
        ChallengePreset(
            "brats_mets_2025", "mets", {"et": (3,), "rc": (4,), "tc": (1, 3), "wt": (1, 2, 3)}, parser="mets"
        ),
        ChallengePreset(
            "brats_gli_2025", "gli",
            {"snfh": (2,), "et": (3,), "netc": (1,), "rc": (4,), "tc": (1, 3), "wt": (1, 2, 3)},
        ),
        ChallengePreset(
            "brats_ped_2025", "ped",
            {"et": (1,), "netc": (2,), "cc": (3,), "ed": (4,), "tc": (1, 2, 3), "wt": (1, 2, 3, 4)},
        ),
        ChallengePreset("brats_menrt_2025", "MenRT", {"gtv": (1,)}),
        ChallengePreset("brats_menpre_2025", "MenPre", {"et": (3,), "tc": (1, 3), "wt": (1, 2, 3)}),
        ChallengePreset("brats_goat_2025", "GoAT", {"et": (3,), "tc": (1, 3), "wt": (1, 2, 3)}),
    )
}
"""The bundled configs of brats-evaluation 0.0.10, by workbench name."""


def get_preset(name: str | ChallengePreset) -> ChallengePreset:
    """A preset by name (a :class:`ChallengePreset` passes through).

    Raises
    ------
    ValueError
        Unknown name; the message lists the known ones.
    """
    if isinstance(name, ChallengePreset):
        return name
    if name not in PRESETS:
        raise ValueError(f"Unknown scoring preset {name!r}; known presets: {sorted(PRESETS)}.")
    return PRESETS[name]


@dataclass(frozen=True)
class RegionScore:
    """What panoptica reports for one region of one case, and the lesions behind it.

    ``lesions`` has one row per reference lesion (``kind == "reference"``) and per predicted
    lesion (``"prediction"``): ``id``, ``voxels``, ``volume_mm3``, ``matched_id`` (0: none),
    ``dice``, ``nsd``, ``hd95`` (the matched pair's; NaN when unmatched).
    """

    n_ref: int
    n_pred: int
    tp: int
    global_dsc: float
    global_nsd: float
    global_hd95: float
    lesions: pd.DataFrame = field(repr=False)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_ref - self.tp

    @property
    def prec(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def rec(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def rq(self) -> float:
        if self.tp == 0:
            return 0.0 if self.n_ref + self.n_pred else math.nan
        return self.tp / (self.tp + 0.5 * self.fp + 0.5 * self.fn)

    def matched(self) -> pd.DataFrame:
        """The reference rows of the matched pairs."""
        return self.lesions[(self.lesions["kind"] == "reference") & (self.lesions["matched_id"] > 0)]


def region_score(
    pred_mask: np.ndarray,
    ref_mask: np.ndarray,
    *,
    spacing: tuple[float, ...],
    matching_threshold: float = 1e-6,
) -> RegionScore:
    """Panoptica's result for one region under the brats-evaluation rules (module docstring).

    Parameters
    ----------
    pred_mask, ref_mask : ndarray of bool, shape (Y, X) or (Z, Y, X)
        In SimpleITK's axis order (the reverse of nibabel's): lesions are numbered, and ties in
        the matching broken, in raster order of these arrays.
    spacing : tuple of float
        Voxel size in mm applied to each array axis, in that order; the voxel volume is their
        product in that order.
    matching_threshold : float

    Returns
    -------
    RegionScore
    """
    ndim = ref_mask.ndim
    connectivity = _OFFICIAL_CONNECTIVITY[ndim]
    ref_labels, n_ref = connected_components(ref_mask, connectivity=connectivity)
    pred_labels, n_pred = connected_components(pred_mask, connectivity=connectivity)
    voxel_volume = float(np.prod(spacing))
    table = overlap_table(pred_labels, ref_labels)
    ref_voxels, pred_voxels = table.ref_sizes, table.pred_sizes
    matching = _official_matching(table, matching_threshold)
    ref_match = np.zeros(n_ref, dtype=np.int64)
    pred_match = np.zeros(n_pred, dtype=np.int64)
    ref_match[matching.ref_ids - 1] = matching.pred_ids
    pred_match[matching.pred_ids - 1] = matching.ref_ids
    metrics = np.full((n_ref, 3), np.nan)
    ref_border, pred_border = _component_borders(ref_labels, n_ref), _component_borders(pred_labels, n_pred)
    scale = np.asarray(spacing, dtype=np.float64)
    tolerance = min(spacing)
    for ref_id, pred_id, pair_dice in zip(matching.ref_ids, matching.pred_ids, matching.dice):
        sd_ref, sd_pred = point_set_distances(ref_border[ref_id - 1], pred_border[pred_id - 1], scale)
        metrics[ref_id - 1] = (pair_dice, _nsd(sd_ref, sd_pred, tolerance), _pooled_hd95(sd_ref, sd_pred))
    lesions = pd.DataFrame(
        {
            "kind": ["reference"] * n_ref + ["prediction"] * n_pred,
            "id": np.concatenate([np.arange(1, n_ref + 1), np.arange(1, n_pred + 1)]),
            "voxels": np.concatenate([ref_voxels, pred_voxels]).astype(np.int64),
            "volume_mm3": np.concatenate([ref_voxels, pred_voxels]) * voxel_volume,
            "matched_id": np.concatenate([ref_match, pred_match]),
            "dice": np.concatenate([metrics[:, 0], _pred_side(metrics[:, 0], pred_match, n_pred)]),
            "nsd": np.concatenate([metrics[:, 1], _pred_side(metrics[:, 1], pred_match, n_pred)]),
            "hd95": np.concatenate([metrics[:, 2], _pred_side(metrics[:, 2], pred_match, n_pred)]),
        }
    )
    dsc, nsd, hd95 = _global_metrics(pred_mask, ref_mask, n_pred, n_ref, ref_border, pred_border)
    return RegionScore(n_ref, n_pred, int(matching.ref_ids.size), dsc, nsd, hd95, lesions)


def score_case(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    preset: str | ChallengePreset = "brats_mets_2025",
    spacing: tuple[float, ...] | None = None,
    case_id: str | None = None,
) -> tuple[dict[str, object], pd.DataFrame]:
    """The leaderboard row of one case and its per-lesion table.

    Parameters
    ----------
    pred, ref : ndarray of int, shape (I, J) or (I, J, K)
        Label maps with the preset's label values (and 0), in nibabel's voxel axis order (as
        :func:`~workbench.data.nifti.load_label` gives them).
    preset : str or ChallengePreset
        A :data:`PRESETS` name.
    spacing : tuple of float, optional
        Voxel size in mm per axis, in the same order (default 1 mm), as the reference header
        gives it. Each value is rounded to float32, as a NIfTI header stores it and SimpleITK
        reads it (module docstring): ``0.64`` and ``load_label``'s ``0.64`` both become
        0.6399999856948853.
    case_id : str, optional
        Written into the row (``subject_id``) and the lesion table.

    Returns
    -------
    row : dict
        ``subject_id`` then, per region, the columns of ``brats-parse-metrics`` (mets: 27 per
        region; seg: 15 per region) and, for mets, the FP-by-size extras.
    lesions : DataFrame
        One row per reference and predicted lesion of every region: ``subject_id, region, kind,
        id, voxels, volume_mm3, size_class, matched_id, dice, nsd, hd95, status`` (TP, FN, FP),
        ``detected`` (mets: counted as detected), and ``scored_dice, scored_nsd, scored_hd95``
        (the values it enters the lesion-wise means with; NaN where it enters none).

    Raises
    ------
    ValueError
        Maps of different shapes, not 2D/3D, non-integer, or with label values that no region of
        the preset uses (as brats-evaluation refuses them); a bad spacing.
    """
    preset = get_preset(preset)
    pred, ref = _checked_maps(pred, ref, preset)
    spacing = tuple(float(np.float32(s)) for s in check_spacing(spacing, ref.ndim))  # as SimpleITK reads it
    if not preset.reverse_spacing:  # the maps are in reverse axis order now: so must the spacing be
        spacing = spacing[::-1]
    row: dict[str, object] = {"subject_id": case_id}
    extras: dict[str, object] = {}
    tables = []
    for region, values in preset.groups.items():
        score = region_score(
            _in_group(pred, values), _in_group(ref, values), spacing=spacing, matching_threshold=preset.matching_threshold
        )
        if preset.parser == "mets":
            columns, lesions = _mets_columns(score, preset)
        else:
            columns, lesions = _seg_columns(score, preset)
        for name, value in columns.items():
            (extras if name.endswith("_by_size") else row)[f"{name}_{region}"] = value
        tables.append(lesions.assign(region=region))
    row.update(extras)  # the official columns first, in the official order
    lesions = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    lesions.insert(0, "subject_id", case_id)
    order = ["subject_id", "region", "kind", "id", "voxels", "volume_mm3", "size_class", "matched_id",
             "dice", "nsd", "hd95", "status", "detected", "scored_dice", "scored_nsd", "scored_hd95"]
    return row, lesions[order]


def summarize_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """The official parser's summary: ``mean``, ``std`` (ddof 1) and ``median`` rows appended.

    Parameters
    ----------
    rows : DataFrame
        One row per case (``subject_id`` and numeric columns), as :func:`score_case` rows.

    Returns
    -------
    DataFrame
        ``rows`` followed by three rows whose ``subject_id`` is ``mean``, ``std``, ``median``;
        each skips NaN values, as pandas does.
    """
    numeric = rows.drop(columns="subject_id").apply(pd.to_numeric, errors="coerce")
    with warnings.catch_warnings():  # an all-NaN column (no case has that lesion class) has a NaN median
        warnings.simplefilter("ignore", RuntimeWarning)
        extra = pd.DataFrame([numeric.mean(), numeric.std(), numeric.median()])
    extra.insert(0, "subject_id", ["mean", "std", "median"])
    return pd.concat([rows, extra], ignore_index=True)


def _official_matching(table: OverlapTable, threshold: float) -> Matching:
    """panoptica's ``MaxBipartiteMatching`` on Dice: one assignment over the whole cost matrix.

    Rows are reference lesions ``1..N_ref``, columns predicted ones ``1..N_pred``; a pair costs
    ``1 - Dice`` when its Dice ≥ ``threshold`` and ``1 + 1e-6`` otherwise (panoptica's numbers,
    computed as it computes them), and an assigned pair of cost < 1 is a match. Equal-cost ties
    are thereby broken by :func:`scipy.optimize.linear_sum_assignment` on the same matrix as in
    panoptica.
    """
    dice = table.dice
    eligible = np.flatnonzero(dice >= threshold)
    ref_ids, pred_ids, pair_dice = table.ref_ids[eligible], table.pred_ids[eligible], dice[eligible]
    # When no lesion has two eligible partners, every optimal assignment holds every eligible pair
    # (leaving one out costs at least 1e-6 more), so the solver has nothing to choose.
    if np.unique(ref_ids).size < ref_ids.size or np.unique(pred_ids).size < pred_ids.size:
        cost = np.ones((table.n_ref, table.n_pred)) * (1.0 + 1e-6)
        cost[ref_ids - 1, pred_ids - 1] = 1.0 - pair_dice
        rows, cols = linear_sum_assignment(cost)
        position = np.full((table.n_ref, table.n_pred), -1)
        position[ref_ids - 1, pred_ids - 1] = np.arange(eligible.size)
        picked = position[rows, cols]
        keep = np.sort(picked[(picked >= 0) & (cost[rows, cols] < 1.0)])
        ref_ids, pred_ids, pair_dice = ref_ids[keep], pred_ids[keep], pair_dice[keep]
    return Matching(pred_ids, ref_ids, pair_dice, table.n_pred, table.n_ref, threshold)


# --------------------------------------------------------------------------- parsers


def _mets_columns(score: RegionScore, preset: ChallengePreset) -> tuple[dict[str, float], pd.DataFrame]:
    """``brats-parse-metrics mets`` for one region, and the lesion table it reads."""
    lesions = score.lesions.copy()
    is_ref = (lesions["kind"] == "reference").to_numpy()
    large = (lesions["volume_mm3"] >= preset.volume_threshold_mm3).to_numpy()
    matched = (lesions["matched_id"] > 0).to_numpy()
    dice = lesions["dice"].to_numpy()
    detected = is_ref & matched & (dice >= preset.overlap_threshold)
    fp_rows = ~is_ref & ~matched
    lesions["size_class"] = np.where(large, "large", "small")
    lesions["status"] = np.where(is_ref, np.where(matched, "TP", "FN"), np.where(matched, "TP", "FP"))
    lesions["detected"] = np.where(is_ref, detected, False)
    scored = (is_ref & large) | fp_rows
    penalty = scored & ~matched
    lesions["scored_dice"] = np.where(scored, np.where(penalty, 0.0, dice), np.nan)
    lesions["scored_nsd"] = np.where(scored, np.where(penalty, 0.0, lesions["nsd"]), np.nan)
    lesions["scored_hd95"] = np.where(scored, np.where(penalty, preset.hd95_penalty, lesions["hd95"]), np.nan)

    num_fp = score.fp
    small_ref, large_ref = is_ref & ~large, is_ref & large
    columns = _count_columns(score)
    counts = {
        "large": (int((detected & large_ref).sum()), int((large_ref & ~detected).sum()), bool(large_ref.any())),
        "small": (int((detected & small_ref).sum()), int((small_ref & ~detected).sum()), bool(small_ref.any())),
    }
    for size in ("large", "small"):
        tp, fn, present = counts[size]
        columns.update(_detection_columns(size, tp, fn, num_fp, present))
        if size == "large":
            columns.update(_lesionwise_columns(lesions, scored, score.n_ref > 0 and present, preset))
    columns.update(_global_columns(score, preset))
    fp_sizes = {"small": int((fp_rows & ~large).sum()), "large": int((fp_rows & large).sum())}
    for size in ("small", "large"):
        tp, fn, present = counts[size]
        own = fp_sizes[size]
        columns[f"{size}_fp_by_size"] = own
        columns[f"{size}_prec_by_size"] = tp / (tp + own) if tp + own else (0.0 if present else math.nan)
        columns[f"{size}_f1_by_size"] = 2 * tp / (2 * tp + own + fn) if 2 * tp + own + fn else math.nan
    return columns, lesions


def _seg_columns(score: RegionScore, preset: ChallengePreset) -> tuple[dict[str, float], pd.DataFrame]:
    """``brats-parse-metrics seg`` for one region, and the lesion table it reads."""
    lesions = score.lesions.copy()
    is_ref = (lesions["kind"] == "reference").to_numpy()
    matched = (lesions["matched_id"] > 0).to_numpy()
    lesions["size_class"] = ""
    lesions["status"] = np.where(matched, "TP", np.where(is_ref, "FN", "FP"))
    lesions["detected"] = is_ref & matched
    for metric in ("dice", "nsd", "hd95"):
        lesions[f"scored_{metric}"] = np.where(is_ref & matched, lesions[metric], np.nan)
    columns = _count_columns(score)
    columns.update(_global_columns(score, preset))
    values = score.matched()
    edge = {"dice": 0.0, "nsd": 0.0, "hd95": math.inf} if score.n_ref + score.n_pred else dict.fromkeys(
        ("dice", "nsd", "hd95"), math.nan
    )
    for metric, name in (("dice", "dsc"), ("nsd", "nsd"), ("hd95", "hd95")):
        column = values[metric].to_numpy()
        columns[f"lesionwise_{name}_mean"] = float(np.mean(column)) if score.tp else edge[metric]
        columns[f"lesionwise_{name}_std"] = float(np.std(column)) if column.size else math.nan
    return columns, lesions


def _count_columns(score: RegionScore) -> dict[str, float]:
    return {
        "all_instance_tp": score.tp,
        "all_instance_fp": score.fp,
        "all_instance_fn": score.fn,
        "all_instance_prec": score.prec,
        "all_instance_rec": score.rec,
        "all_instance_f1": score.rq,
    }


def _detection_columns(size: str, tp: int, fn: int, fp: int, present: bool) -> dict[str, float]:
    values = {
        "tp": tp, "fp": fp, "fn": fn,
        "prec": tp / (tp + fp) if tp + fp else 0.0,
        "rec": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0,
    }
    # the official parser writes fp before fn for large lesions and after it for small ones
    order = ("tp", "fp", "fn", "prec", "rec", "f1") if size == "large" else ("tp", "fn", "fp", "prec", "rec", "f1")
    return {f"{size}_instance_{n}": values[n] if present else math.nan for n in order}


def _lesionwise_columns(lesions: pd.DataFrame, scored: np.ndarray, defined: bool, preset: ChallengePreset) -> dict[str, float]:
    names = [f"lesionwise_{m}_{s}" for m in ("dsc", "hd95", "nsd") for s in ("mean", "std")]
    if not defined:
        return dict.fromkeys(names, math.nan)
    dice = lesions.loc[scored, "scored_dice"].to_numpy()
    nsd = lesions.loc[scored, "scored_nsd"].to_numpy()
    hd95 = lesions.loc[scored, "scored_hd95"].to_numpy()
    hd95 = hd95[np.isfinite(hd95)]
    return {
        "lesionwise_dsc_mean": float(np.mean(dice)) if dice.size else 0.0,
        "lesionwise_dsc_std": float(np.std(dice)) if dice.size else 0.0,
        "lesionwise_hd95_mean": float(np.mean(hd95)) if hd95.size else preset.hd95_penalty,
        "lesionwise_hd95_std": float(np.std(hd95)) if hd95.size else 0.0,
        "lesionwise_nsd_mean": float(np.mean(nsd)) if nsd.size else 0.0,
        "lesionwise_nsd_std": float(np.std(nsd)) if nsd.size else 0.0,
    }


def _global_columns(score: RegionScore, preset: ChallengePreset) -> dict[str, float]:
    hd95 = preset.hd95_penalty if math.isinf(score.global_hd95) else score.global_hd95
    return {"global_dsc": score.global_dsc, "global_nsd": score.global_nsd, "global_hd95": hd95}


# --------------------------------------------------------------------------- geometry


def _global_metrics(
    pred: np.ndarray, ref: np.ndarray, n_pred: int, n_ref: int, ref_border: list[np.ndarray], pred_border: list[np.ndarray]
) -> tuple[float, float, float]:
    """Panoptica's global binary Dice, NSD and HD95: voxel units, NSD tolerance 0.5 voxel."""
    intersection = int(np.count_nonzero(pred & ref))
    if intersection == 0:
        if n_pred + n_ref == 0:
            return math.nan, math.nan, math.nan
        return 0.0, 0.0, math.inf
    dsc = 2 * intersection / (int(np.count_nonzero(pred)) + int(np.count_nonzero(ref)))
    unit = np.ones(ref.ndim)
    sd_ref, sd_pred = point_set_distances(np.concatenate(ref_border), np.concatenate(pred_border), unit)
    return dsc, _nsd(sd_ref, sd_pred, 0.5), _pooled_hd95(sd_ref, sd_pred)


def _component_borders(labels: np.ndarray, count: int) -> list[np.ndarray]:
    """Border voxel coordinates of each component ``1..count`` (the border of the union, split by id)."""
    coords = border_voxels(labels > 0)
    ids = labels[tuple(coords.T)]
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(1, count + 2))
    return [coords[order[bounds[i] : bounds[i + 1]]] for i in range(count)]


def _nsd(sd_ref: np.ndarray, sd_pred: np.ndarray, tolerance: float) -> float:
    limit = tolerance * (1.0 + _TIE_RTOL)
    return float((np.mean(sd_ref <= limit) + np.mean(sd_pred <= limit)) / 2)


def _pooled_hd95(sd_ref: np.ndarray, sd_pred: np.ndarray) -> float:
    return float(np.percentile(np.concatenate([sd_ref, sd_pred]), 95))


def _foreground_box(pred: np.ndarray, ref: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of both maps' foreground grown by one voxel (clipped to the image)."""
    foreground = (pred != 0) | (ref != 0)
    box = []
    for axis in range(foreground.ndim):
        hits = np.flatnonzero(foreground.any(axis=tuple(a for a in range(foreground.ndim) if a != axis)))
        if hits.size == 0:
            return tuple(slice(0, 0) for _ in range(foreground.ndim))
        box.append(slice(max(int(hits[0]) - 1, 0), min(int(hits[-1]) + 2, foreground.shape[axis])))
    return tuple(box)


def _pred_side(values: np.ndarray, pred_match: np.ndarray, n_pred: int) -> np.ndarray:
    """A per-reference value copied to the predicted lesion matched with it (NaN for the others)."""
    out = np.full(n_pred, np.nan)
    hit = pred_match > 0
    out[hit] = values[pred_match[hit] - 1]
    return out


def _checked_maps(pred: np.ndarray, ref: np.ndarray, preset: ChallengePreset) -> tuple[np.ndarray, np.ndarray]:
    """Both maps cropped to their foreground (+1 voxel) and transposed to SimpleITK's axis order,
    after checking shapes, dtypes and label values."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"Expected `pred` and `ref` of the same shape, but got {pred.shape} and {ref.shape}.")
    if ref.ndim not in (2, 3):
        raise ValueError(f"Expected 2D or 3D label maps, but got shape {ref.shape}.")
    for name, label_map in (("pred", pred), ("ref", ref)):
        if not (np.issubdtype(label_map.dtype, np.integer) or label_map.dtype == np.bool_):
            raise ValueError(f"Expected an integer label map as `{name}`, but got dtype {label_map.dtype}.")
    box = _foreground_box(pred, ref)  # every rule is unchanged by cropping to the lesions (+1 voxel)
    pred, ref = np.ascontiguousarray(pred[box].T), np.ascontiguousarray(ref[box].T)
    allowed = np.array((0, *preset.labels))
    for name, label_map in (("pred", pred), ("ref", ref)):
        values = _values_present(label_map)
        bad = values[~np.isin(values, allowed)]
        if bad.size:
            raise ValueError(
                f"`{name}` holds label values {bad.tolist()} that no region of preset {preset.name!r} uses "
                f"(its regions: {dict(preset.groups)}); brats-evaluation refuses them too."
            )
    return pred, ref


def _in_group(label_map: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """``np.isin(label_map, values)`` by a lookup table (checked maps hold small non-negative values)."""
    if len(values) == 1:
        return label_map == values[0]
    table = np.zeros(max(int(label_map.max(initial=0)), max(values)) + 1, dtype=bool)
    table[list(values)] = True
    return table[label_map]


def _values_present(label_map: np.ndarray) -> np.ndarray:
    """The distinct values of an integer map; one counting pass when they are small and non-negative."""
    low, high = int(label_map.min(initial=0)), int(label_map.max(initial=0))
    if low < 0 or high > 4096:
        return np.unique(label_map)
    return np.flatnonzero(np.bincount(label_map.ravel(), minlength=high + 1))

