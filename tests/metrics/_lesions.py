"""Random multi-lesion cases (hypothesis) and panoptica as the PQ oracle, shared by the metric tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from panoptica import (
    CCABackend,
    ConnectedComponentsInstanceApproximator,
    InputType,
    MaxBipartiteMatching,
    Metric,
    Panoptica_Evaluator,
    disable_citation_reminder,
)

disable_citation_reminder()

EDITS = ("keep", "shift", "grow", "shrink", "drop", "relabel")


@st.composite
def label_pairs(draw, shape=(16, 18, 20), values=(1, 2, 3, 4), max_lesions=6, max_false_positives=3):
    """``(pred, ref)`` uint8 label maps: boxes of ``values`` in the reference, each copied into
    the prediction shifted, grown, shrunk, relabelled, dropped or kept, plus false-positive boxes.
    Boxes drawn later overwrite earlier ones, so lesions touch, nest, merge and split."""
    ref = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)

    def box(corner, size):
        return tuple(slice(max(c, 0), max(min(c + s, n), 0)) for c, s, n in zip(corner, size, shape))

    for _ in range(draw(st.integers(0, max_lesions))):
        corner = [draw(st.integers(0, n - 2)) for n in shape]
        size = [draw(st.integers(1, 6)) for _ in shape]
        value = draw(st.sampled_from(values))
        ref[box(corner, size)] = value
        edit = draw(st.sampled_from(EDITS))
        if edit == "drop":
            continue
        if edit == "shift":
            corner = [c + draw(st.integers(-2, 2)) for c in corner]
        elif edit in ("grow", "shrink"):
            step = 1 if edit == "grow" else -1
            corner, size = [c - step for c in corner], [max(s + 2 * step, 1) for s in size]
        elif edit == "relabel":
            value = draw(st.sampled_from(values))
        pred[box(corner, size)] = value
    for _ in range(draw(st.integers(0, max_false_positives))):
        corner = [draw(st.integers(0, n - 2)) for n in shape]
        size = [draw(st.integers(1, 3)) for _ in shape]
        pred[box(corner, size)] = draw(st.sampled_from(values))
    return pred, ref


def panoptica_quality(pred_mask: np.ndarray, ref_mask: np.ndarray, threshold: float) -> dict[str, float]:
    """panoptica's PQ, SQ, RQ (Dice) and TP/FP/FN of two binary masks: its own connected
    components (cc3d, 26 in 3D), Hungarian matching on Dice (``MaxBipartiteMatching``, ``>=``)."""
    evaluator = Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(cca_backend=CCABackend.cc3d),
        instance_matcher=MaxBipartiteMatching(matching_metric=Metric.DSC, matching_threshold=threshold),
        instance_metrics=[Metric.DSC],
    )
    result = evaluator.evaluate(pred_mask.astype(np.uint8), ref_mask.astype(np.uint8), verbose=False)["ungrouped"]
    return {
        "pq": result.pq_dsc,
        "sq": result.sq_dsc,
        "rq": result.rq,
        "tp": result.tp,
        "fp": result.fp,
        "fn": result.fn,
    }
