"""Operating points: exact curves on hand-made cases, agreement with picai-eval, bootstrap coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from workbench.data.phantoms import make_case
from workbench.metrics.detection_curves import (
    at_precision,
    best_f1,
    bootstrap_ci,
    bootstrap_mean_ci,
    froc,
    lesion_candidates,
    lesion_rows,
    operating_points,
    paired_bootstrap,
    precision_recall,
    region_rows,
    volume_bias,
)


def _toy_rows() -> pd.DataFrame:
    """Two reference lesions (A found at 0.9, B at 0.3) and a false positive at 0.6, in one case."""
    reference = np.zeros((1, 20), dtype=bool)
    reference[0, 1:4] = reference[0, 12:15] = True                # A, B
    candidates = np.zeros((1, 20), dtype=np.int32)
    candidates[0, 1:4] = 1                                        # on A
    candidates[0, 7:9] = 2                                        # nowhere: FP
    candidates[0, 13:16] = 3                                      # on B (IoU 2/4)
    return lesion_rows(candidates, np.array([0.9, 0.6, 0.3]), reference, case_id="c0", connectivity=8)


def test_curve_points_ap_and_froc_of_a_known_case():
    rows = _toy_rows()
    assert sorted(zip(rows.is_lesion, rows.confidence)) == [(0, 0.6), (1, 0.3), (1, 0.9)]
    curve = precision_recall(rows)
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.6, 0.3])
    np.testing.assert_array_equal(curve.tp, [1, 1, 2])
    np.testing.assert_array_equal(curve.fp, [0, 1, 1])
    np.testing.assert_allclose(curve.precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(curve.recall, [0.5, 0.5, 1])
    assert curve.average_precision == pytest.approx(0.5 * 1 + 0 * 0.5 + 0.5 * 2 / 3)
    table = froc(curve, fp_per_case=(0, 0.5, 1))
    assert table.sensitivity.tolist() == [0.5, 0.5, 1.0] and table.threshold.tolist() == [0.9, 0.9, 0.3]


def test_matched_precision_and_best_f1_are_exact_points():
    curve = precision_recall(_toy_rows())
    assert at_precision(curve, 0.6).recall == 1.0 and at_precision(curve, 0.6).threshold == 0.3
    assert at_precision(curve, 2 / 3).recall == 1.0                 # equality counts
    assert at_precision(curve, 0.7).recall == 0.5 and at_precision(curve, 0.7).threshold == 0.9
    assert at_precision(curve, 1.01) is None
    best = best_f1(curve)
    assert (best.threshold, best.f1) == (0.3, pytest.approx(0.8))


def test_missed_lesions_lower_recall_and_split_candidates_are_false_positives():
    reference = np.zeros((1, 12), dtype=bool)
    reference[0, 0:6] = True
    reference[0, 9:11] = True                                     # missed
    candidates = np.zeros((1, 12), dtype=np.int32)
    candidates[0, 0:3], candidates[0, 3:5] = 1, 2                 # a lesion split in two (touching ids)
    rows = lesion_rows(candidates, np.array([0.8, 0.7]), reference, case_id="c", connectivity=4)
    curve = precision_recall(rows)
    assert curve.n_lesions == 2 and curve.recall.max() == 0.5 and curve.fp[-1] == 1


def test_candidates_are_components_scored_by_max_or_mean():
    probability = np.zeros((1, 10))
    probability[0, 1:4] = [0.2, 0.9, 0.4]
    probability[0, 6:8] = [0.15, 0.05]
    labels, conf = lesion_candidates(probability, floor=0.1, connectivity=8)
    assert labels[0].tolist() == [0, 1, 1, 1, 0, 0, 2, 0, 0, 0]
    np.testing.assert_allclose(conf, [0.9, 0.15])
    _, mean = lesion_candidates(probability, floor=0.1, score="mean", connectivity=8)
    np.testing.assert_allclose(mean, [0.5, 0.15])
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        lesion_candidates(probability + 1)


def _probability_maps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A reference ET mask of a phantom and a blurred, noisy probability map made from it."""
    case = make_case(seed, shape=(40, 40, 40))
    reference = case.label == 3
    rng = np.random.default_rng(seed)
    shifted = np.roll(reference, rng.integers(-1, 2, size=3), axis=(0, 1, 2)).astype(float)
    noise = ndimage.gaussian_filter(rng.random(reference.shape), 1.5)
    probability = np.clip(0.8 * ndimage.gaussian_filter(shifted, 1.0) + 0.6 * (noise - noise.mean()) / noise.std() * 0.2, 0, 1)
    return probability, reference


def test_agrees_with_picai_eval():
    picai_eval = pytest.importorskip("picai_eval", reason="picai-eval is in the test extra")
    detection_maps, references, rows = [], [], []
    for seed in range(3, 9):
        probability, reference = _probability_maps(seed)
        labels, confidences = lesion_candidates(probability, floor=0.2)
        confidences = confidences.astype(np.float32).astype(np.float64)  # picai reads float32 detection maps
        detection_maps.append(np.where(labels > 0, np.r_[0.0, confidences][labels], 0.0).astype(np.float32))
        references.append(reference.astype(np.int32))
        rows.append(lesion_rows(labels, confidences, reference, case_id=f"case{seed}"))
    ours = precision_recall(pd.concat(rows, ignore_index=True))
    theirs = picai_eval.evaluate(
        y_det=detection_maps, y_true=references, subject_list=[f"case{s}" for s in range(3, 9)],
        allow_unmatched_candidates_with_minimal_overlap=False, num_parallel_calls=1,
    )
    expected = sorted((int(t), round(float(c), 6)) for t, c, _ in theirs.lesion_results_flat)
    assert sorted(zip(pd.concat(rows).is_lesion, pd.concat(rows).confidence.round(6))) == expected
    assert ours.average_precision == pytest.approx(theirs.AP, abs=1e-9)
    assert ours.n_lesions == theirs.num_lesions and ours.n_cases == theirs.num_cases
    their_tp, their_fp = theirs.lesion_TP, theirs.lesion_FP  # computing these sets their thresholds
    for threshold, tp, fp in zip(ours.thresholds, ours.tp, ours.fp):
        k = int(np.flatnonzero(np.isclose(theirs.thresholds, threshold, rtol=0, atol=1e-12))[0])
        assert (their_tp[k], their_fp[k]) == (tp, fp)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits, trials = 0, 80
    for _ in range(trials):
        values = rng.normal(0.5, 0.1, size=25)
        rows = pd.DataFrame({"case_id": [f"c{i}" for i in range(25)], "confidence": values})
        _, low, high = bootstrap_ci(rows, lambda r: r["confidence"].mean(), n_resamples=200, seed=int(rng.integers(1 << 30)))
        hits += low <= 0.5 <= high
    assert 0.85 <= hits / trials <= 0.99


def test_paired_bootstrap_separates_a_consistent_gain_from_noise():
    cases = [f"c{i}" for i in range(20)]
    rng = np.random.default_rng(2)
    base = pd.DataFrame({"case_id": cases, "confidence": rng.random(20)})
    better = base.assign(confidence=base.confidence + 0.1)
    mean = lambda r: r["confidence"].mean()
    gain = paired_bootstrap(better, base, mean, n_resamples=300)
    assert gain["difference"] == pytest.approx(0.1) and gain["within_noise"] == 0.0 and gain["p_value"] < 0.01
    same = paired_bootstrap(base, base.copy(), mean, n_resamples=100)
    assert same["difference"] == 0.0 and same["within_noise"] == 1.0
    with pytest.raises(ValueError, match="same cases"):
        paired_bootstrap(base, base.iloc[:10], mean)


def test_operating_points_per_region_and_stratum_of_a_known_case():
    rows = _toy_rows().assign(region="ET")
    table = operating_points(rows, precision=0.6, argmax_threshold=0.5)
    everything = table[table.stratum == "all"].iloc[0]
    assert (everything.n_lesions, everything.ap) == (2, pytest.approx(5 / 6))
    assert (everything.argmax_precision, everything.argmax_recall) == (0.5, 0.5)      # detections at ≥ 0.5: A and the FP
    assert (everything.matched_threshold, everything.matched_recall) == (0.3, 1.0)
    assert everything.best_f1_f1 == pytest.approx(0.8)
    assert table.stratum.tolist() == ["all", "<100"]


def test_rows_from_stored_probabilities_round_trip(tmp_path):
    from workbench.labels import BRATS_METS_2025
    from workbench.training.probabilities import load_probabilities, save_probabilities

    case = make_case(5, shape=(32, 32, 32))
    masks = BRATS_METS_2025.to_region_masks(case.label).astype(np.float32)
    probabilities = np.clip(0.9 * masks + 0.02, 0, 1)
    save_probabilities(tmp_path / "c.probabilities.npz", probabilities, BRATS_METS_2025.region_names, floor=0.05)
    loaded, channels = load_probabilities(tmp_path / "c.probabilities.npz")
    assert channels == BRATS_METS_2025.region_names
    np.testing.assert_allclose(loaded, np.where(probabilities >= 0.05, probabilities, 0), atol=1 / 510)
    rows = region_rows(loaded, channels, case.label, schema=BRATS_METS_2025, mode="sigmoid", case_id="c",
                       spacing=case.spacing)
    lesions = rows[rows.is_lesion == 1]
    assert (lesions.confidence > 0.9).all() and (rows.is_lesion == 1).all()            # every lesion found, no FP
    assert set(rows.region) <= set(BRATS_METS_2025.region_names)


def test_volume_bias_is_predicted_over_true_volume_of_detected_lesions():
    lesions = pd.DataFrame({
        "region": ["ET"] * 4, "status": ["TP", "TP", "FN", "FP"], "threshold": 0.1,
        "ref_mm3": [50.0, 2000.0, 30.0, np.nan], "pred_mm3": [40.0, 1800.0, np.nan, 10.0],
    })
    table = volume_bias(lesions).set_index("stratum")
    assert table.loc["all", "volume_ratio"] == pytest.approx(1840 / 2050) and table.loc["all", "n"] == 2
    assert table.loc["<100", "volume_ratio"] == pytest.approx(0.8) and table.loc[">=1000", "median_ratio"] == pytest.approx(0.9)


def test_vectorised_mean_interval_matches_the_general_bootstrap():
    values = np.random.default_rng(3).normal(size=40)
    rows = pd.DataFrame({"case_id": [f"c{i:02d}" for i in range(40)], "value": values})
    general = bootstrap_ci(rows, lambda r: r["value"].mean(), n_resamples=2000, seed=5)
    fast = bootstrap_mean_ci(values, n_resamples=2000, seed=7)
    assert fast[0] == pytest.approx(values.mean())
    assert fast[1] == pytest.approx(general[1], abs=0.05) and fast[2] == pytest.approx(general[2], abs=0.05)
    assert np.isnan(bootstrap_mean_ci(np.array([np.nan]))[0])
