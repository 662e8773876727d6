"""workbench's panoptic quality (PQ, SQ, RQ, TP/FP/FN) against panoptica: per binary mask
(workbench.metrics.panoptic) and per BraTS region and threshold (workbench.metrics.evaluate_case)."""

from __future__ import annotations

import numpy as np
import pytest
from _lesions import label_pairs
from _sessions import import_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.labels import BRATS_METS_2025
from workbench.metrics import EmptyPolicy, evaluate_case
from workbench.metrics.matching import connected_components, match_instances, overlap_table
from workbench.metrics.panoptic import panoptic_quality

panoptica = import_or_skip("panoptica", "panoptica", "oracles")
panoptica.disable_citation_reminder()


def panoptica_quality(pred_mask: np.ndarray, ref_mask: np.ndarray, threshold: float) -> dict[str, float]:
    """panoptica's PQ, SQ, RQ (Dice) and TP/FP/FN of two binary masks: its own connected
    components (cc3d, 26 in 3D), Hungarian matching on Dice (``MaxBipartiteMatching``, ``>=``)."""
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(cca_backend=panoptica.CCABackend.cc3d),
        instance_matcher=panoptica.MaxBipartiteMatching(matching_metric=panoptica.Metric.DSC, matching_threshold=threshold),
        instance_metrics=[panoptica.Metric.DSC],
    )
    result = evaluator.evaluate(pred_mask.astype(np.uint8), ref_mask.astype(np.uint8), verbose=False)["ungrouped"]
    return {"pq": result.pq_dsc, "sq": result.sq_dsc, "rq": result.rq, "tp": result.tp, "fp": result.fp, "fn": result.fn}


def situation(n_ref: int, n_pred: int) -> str:
    if n_ref == 0:
        return "both_empty" if n_pred == 0 else "ref_empty"
    return "pred_empty" if n_pred == 0 else "normal"


@settings(max_examples=60, deadline=None)
@given(label_pairs(values=(1,)), st.sampled_from([0.1, 0.3, 0.5]))
def test_quality_agrees_with_panoptica(pair, threshold):
    """panoptica: 26-connected components, Hungarian matching on Dice ≥ t; NaN when nothing at
    all; SQ 0 when there is no TP. That is EmptyPolicy(both_empty=NaN) with the other defaults."""
    pred, ref = (m > 0 for m in pair)
    t = overlap_table(connected_components(pred)[0], connected_components(ref)[0])
    ours = panoptic_quality(match_instances(t, threshold))
    policy = EmptyPolicy(both_empty=float("nan"))
    where = situation(t.n_ref, t.n_pred)
    expected = panoptica_quality(pred, ref, threshold)
    assert (ours.tp, ours.fp, ours.fn) == (expected["tp"], expected["fp"], expected["fn"])
    for name in ("pq", "sq", "rq"):
        assert policy.fill(getattr(ours, name), where) == pytest.approx(expected[name], abs=1e-6, nan_ok=True)


@pytest.mark.filterwarnings("ignore:The prediction is empty")
@settings(max_examples=30, deadline=None)
@given(label_pairs(shape=(14, 16, 18)))
def test_panoptic_metrics_agree_with_panoptica(pair):
    """Per region and threshold; panoptica's NaN for a region empty in both maps is
    EmptyPolicy(both_empty=NaN)."""
    pred, ref = pair
    thresholds = (0.1, 0.3, 0.5)
    table = evaluate_case(pred, ref, thresholds=thresholds, empty=EmptyPolicy(both_empty=float("nan")))
    for threshold in thresholds:
        rows = table[(table["stratum"] == "all") & (table["threshold"] == threshold)]
        got = rows.pivot(index="metric", columns="region", values="value")
        for k, region in enumerate(BRATS_METS_2025.region_names):
            p, r = BRATS_METS_2025.to_region_masks(pred)[k], BRATS_METS_2025.to_region_masks(ref)[k]
            expected = panoptica_quality(p, r, threshold)
            for metric in ("pq", "sq", "rq", "tp", "fp", "fn"):
                expectation = pytest.approx(expected[metric], abs=1e-6, nan_ok=True)
                assert got.loc[metric, region] == expectation, (region, threshold, metric)
