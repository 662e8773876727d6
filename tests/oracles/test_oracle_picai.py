"""Lesion-level detection curves (workbench.metrics.detection_curves) against picai_eval, the PI-CAI
challenge's evaluation: detections, average precision and TP / FP at every threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _lesions import probability_maps
from _sessions import import_or_skip

from workbench.metrics.detection_curves import lesion_candidates, lesion_rows, precision_recall

picai_eval = import_or_skip("picai_eval", "picai-eval", "oracles")


def test_agrees_with_picai_eval():
    """On detection maps (each candidate at its constant confidence), the components of ``p ≥ t`` at
    every distinct confidence ``t`` are picai's detections at ``t``; with no lesion eligible for two
    candidates the per-threshold matching is picai's single matching, so the curves agree."""
    detection_maps, references = [], []
    for seed in range(3, 9):
        probability, reference = probability_maps(seed)
        labels, confidences = lesion_candidates(probability, floor=0.2)
        confidences = confidences.astype(np.float32).astype(np.float64)  # picai reads float32 detection maps
        detection_maps.append(np.where(labels > 0, np.r_[0.0, confidences][labels], 0.0).astype(np.float32))
        references.append(reference.astype(np.int32))
    grid = np.unique(np.concatenate([m[m > 0] for m in detection_maps])).astype(np.float64)
    rows = [lesion_rows(m.astype(np.float64), r.astype(bool), thresholds=grid, case_id=f"case{seed}")
            for seed, m, r in zip(range(3, 9), detection_maps, references)]
    ours = precision_recall(pd.concat(rows, ignore_index=True))
    theirs = picai_eval.evaluate(
        y_det=detection_maps, y_true=references, subject_list=[f"case{s}" for s in range(3, 9)],
        allow_unmatched_candidates_with_minimal_overlap=False, num_parallel_calls=1,
    )
    expected = sorted((int(t), round(float(c), 6)) for t, c, _ in theirs.lesion_results_flat)
    lowest = pd.concat(rows).query("threshold == @grid.min()")       # every candidate, matched as picai does
    assert sorted(zip(lowest.is_lesion, lowest.confidence.round(6))) == expected
    assert ours.average_precision == pytest.approx(theirs.AP, abs=1e-9)
    assert ours.n_lesions == theirs.num_lesions and ours.n_cases == theirs.num_cases
    their_tp, their_fp = theirs.lesion_TP, theirs.lesion_FP  # computing these sets their thresholds
    for threshold, tp, fp in zip(ours.thresholds, ours.tp, ours.fp):
        k = int(np.flatnonzero(np.isclose(theirs.thresholds, threshold, rtol=0, atol=1e-12))[0])
        assert (their_tp[k], their_fp[k]) == (tp, fp)
