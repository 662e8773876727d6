"""Segmentation metrics of one case, from label maps to tidy tables (numpy/scipy, no torch).

The entry points are :func:`evaluate_case` (one row per region, metric, threshold and size
stratum) and :func:`lesion_table` (one row per lesion). The building blocks are public too:

- :mod:`~workbench.metrics.matching`: components, the overlap table, Hungarian matching;
- :mod:`~workbench.metrics.panoptic`: PQ/SQ/RQ, size strata, detection metrics;
- :mod:`~workbench.metrics.ccmetric`: CC-Dice (Dice inside each reference lesion's Voronoi cell);
- :mod:`~workbench.metrics.surface`: surface distances, surface Dice, HD95;
- :mod:`~workbench.metrics.case`: the two tables and the :class:`EmptyPolicy` for empty cases;
- :mod:`~workbench.metrics.challenge`: challenge scoring presets (``score_case(pred, ref,
  preset="brats_mets_2025")``), the official BraTS 2025 scorer reproduced rule for rule;
- :mod:`~workbench.metrics.detection_curves`: lesion candidates from probabilities, PR / FROC
  curves, matched-precision operating points, bootstrap intervals and paired comparisons.
"""

from workbench.metrics.case import (
    DEFAULT_SURFACE_TOLERANCE_MM,
    EMPTY_PRESETS,
    EVALUATE_COLUMNS,
    LESION_COLUMNS,
    EmptyPolicy,
    dice,
    evaluate_case,
    lesion_table,
    validation_scores,
)
from workbench.metrics.ccmetric import cc_dice
from workbench.metrics.challenge import ChallengePreset, score_case, summarize_scores
from workbench.metrics.matching import Matching, OverlapTable, connected_components, match_instances, overlap_table
from workbench.metrics.panoptic import (
    DEFAULT_SIZE_EDGES_MM3,
    Detection,
    PanopticQuality,
    detection_metrics,
    panoptic_quality,
    size_strata,
    stratified_panoptic_quality,
    stratum_names,
)
from workbench.metrics.surface import hd95, surface_dice, surface_distances

__all__ = [
    "DEFAULT_SIZE_EDGES_MM3",
    "DEFAULT_SURFACE_TOLERANCE_MM",
    "EMPTY_PRESETS",
    "EVALUATE_COLUMNS",
    "LESION_COLUMNS",
    "ChallengePreset",
    "Detection",
    "EmptyPolicy",
    "Matching",
    "OverlapTable",
    "PanopticQuality",
    "cc_dice",
    "connected_components",
    "detection_metrics",
    "dice",
    "evaluate_case",
    "hd95",
    "lesion_table",
    "validation_scores",
    "match_instances",
    "overlap_table",
    "panoptic_quality",
    "score_case",
    "size_strata",
    "stratified_panoptic_quality",
    "stratum_names",
    "summarize_scores",
    "surface_dice",
    "surface_distances",
]
