"""Operating points: exact curves on hand-made cases, per-threshold counts against an independent
labelling and matching, agreement with picai-eval, bootstrap coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _lesions import probability_maps
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from workbench.data.phantoms import make_case
from workbench.metrics.detection_curves import (
    DEFAULT_THRESHOLDS,
    ROW_COLUMNS,
    at_precision,
    at_threshold,
    best_f1,
    bootstrap_ci,
    bootstrap_mean_ci,
    curve_bootstrap_ci,
    froc,
    lesion_candidates,
    lesion_rows,
    operating_points,
    paired_bootstrap,
    paired_curve_bootstrap,
    precision_recall,
    region_rows,
    volume_bias,
)


def _toy_rows() -> pd.DataFrame:
    """Two reference lesions (A found from 0.9 down, B from 0.3 down) and a false positive at 0.6, in one case."""
    reference = np.zeros((1, 20), dtype=bool)
    reference[0, 1:4] = reference[0, 12:15] = True                # A, B
    probability = np.zeros((1, 20))
    probability[0, 1:4] = 0.9                                     # on A
    probability[0, 7:9] = 0.6                                     # nowhere: FP
    probability[0, 13:16] = 0.3                                   # on B (IoU 2/4)
    return lesion_rows(probability, reference, thresholds=(0.3, 0.6, 0.9), case_id="c0", connectivity=8)


def test_curve_points_ap_and_froc_of_a_known_case():
    rows = _toy_rows()
    assert list(rows.columns) == list(ROW_COLUMNS)
    blocks = {t: sorted(zip(b.is_lesion, b.confidence, b.overlap)) for t, b in rows.groupby("threshold")}
    assert blocks == {
        0.9: [(1, 0.0, 0.0), (1, 0.9, 1.0)],                      # B missed, no FP yet
        0.6: [(0, 0.6, 0.0), (1, 0.0, 0.0), (1, 0.9, 1.0)],
        0.3: [(0, 0.6, 0.0), (1, 0.3, 0.5), (1, 0.9, 1.0)],
    }
    assert rows[rows.is_lesion == 1].volume_mm3.tolist() == [3.0] * 6 and rows[rows.is_lesion == 0].volume_mm3.tolist() == [2.0] * 2
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
    reference[0, 9:11] = True                                     # missed at 0.5, found at 0.2
    probability = np.zeros((1, 12))
    probability[0, 0:6] = [0.8, 0.8, 0.8, 0.4, 0.8, 0.8]          # split in two at 0.5: the smaller part is an FP
    probability[0, 9:11] = 0.2
    rows = lesion_rows(probability, reference, thresholds=(0.2, 0.5), case_id="c", connectivity=4)
    curve = precision_recall(rows)
    assert curve.n_lesions == 2 and curve.thresholds.tolist() == [0.5, 0.2]
    assert curve.tp.tolist() == [1, 2] and curve.fp.tolist() == [1, 0] and curve.recall.tolist() == [0.5, 1.0]
    high = rows[rows.threshold == 0.5]
    assert sorted(high.overlap) == [0.0, 0.0, 0.5] and high[high.is_lesion == 0].volume_mm3.tolist() == [2.0]
    assert rows[rows.threshold == 0.2].overlap.tolist() == [1.0, 1.0]


def _merged_case() -> tuple[np.ndarray, np.ndarray]:
    """Two 2×2×2 lesions at p = 0.8 in a 12³ volume whose every other voxel is at p = 0.15."""
    reference = np.zeros((12, 12, 12), dtype=bool)
    reference[1:3, 1:3, 1:3] = reference[8:10, 8:10, 8:10] = True
    return np.where(reference, 0.8, 0.15), reference


def test_lesions_merged_at_the_floor_are_found_at_argmax():
    probability, reference = _merged_case()
    # The former rows: one set of candidates at the floor 0.1 — a single 1728-voxel blob, IoU 8/1728 with each lesion.
    floor = lesion_rows(probability, reference, thresholds=(0.1,), case_id="c")
    assert floor.is_lesion.tolist() == [1, 1, 0] and floor.confidence.tolist() == [0.0, 0.0, 0.8]
    assert floor.volume_mm3.tolist() == [8.0, 8.0, 1728.0]
    for old in (precision_recall(floor), precision_recall(floor.drop(columns="threshold"))):  # also as a detection map
        assert old.tp.tolist() == [0] and at_precision(old, 0.1) is None and froc(old, (1,)).sensitivity.tolist() == [0.0]

    rows = lesion_rows(probability, reference, case_id="c")
    assert sorted(rows.threshold.unique()) == list(DEFAULT_THRESHOLDS)
    assert (rows.groupby("threshold").is_lesion.sum() == 2).all()                    # every lesion at every threshold
    assert (rows[rows.is_lesion == 1].volume_mm3 == 8.0).all() and set(rows.stratum) == {"<100", ">=1000"}
    at_half = rows[rows.threshold == 0.5]
    assert at_half.is_lesion.tolist() == [1, 1] and at_half.confidence.tolist() == [0.8, 0.8]
    assert at_half.overlap.tolist() == [1.0, 1.0]
    curve = precision_recall(rows)
    np.testing.assert_allclose(curve.thresholds, sorted(DEFAULT_THRESHOLDS, reverse=True))
    assert curve.tp.tolist() == [0, 0, 2, 2, 2, 2, 2, 2, 2, 0]                      # 0.95, 0.9 above every voxel
    assert curve.fp.tolist() == [0] * 9 + [1]
    argmax = at_threshold(curve, 0.5)
    assert (argmax.threshold, argmax.precision, argmax.recall, argmax.f1) == (0.5, 1.0, 1.0, 1.0)
    matched = at_precision(curve, 0.85)
    assert matched is not None and (matched.recall, matched.threshold) == (1.0, 0.8)
    assert froc(curve, (0.0,)).sensitivity.tolist() == [1.0]
    assert curve.average_precision == pytest.approx(1.0)


def _independent_counts(probability: np.ndarray, reference: np.ndarray, threshold: float, min_iou: float = 0.1) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` by scipy labelling (26-connectivity) and a dense IoU matrix: the matching from scratch."""
    structure = ndimage.generate_binary_structure(3, 3)
    pred, n_pred = ndimage.label(probability >= threshold, structure)
    ref, n_ref = ndimage.label(reference, structure)
    inter = np.zeros((n_pred + 1, n_ref + 1))
    np.add.at(inter, (pred.ravel(), ref.ravel()), 1)
    inter = inter[1:, 1:]
    sizes_pred = np.bincount(pred.ravel(), minlength=n_pred + 1)[1:]
    sizes_ref = np.bincount(ref.ravel(), minlength=n_ref + 1)[1:]
    iou = inter / (sizes_pred[:, None] + sizes_ref[None, :] - inter)
    weight = np.where(iou >= min_iou, iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    tp = int((weight[rows, cols] > 0).sum())
    return tp, n_pred - tp, n_ref - tp


def test_at_threshold_equals_thresholding_and_matching_by_hand():
    cases = {f"case{seed}": probability_maps(seed) for seed in (3, 4, 5, 6)}
    rows = pd.concat([lesion_rows(p, r, case_id=c) for c, (p, r) in cases.items()], ignore_index=True)
    curve = precision_recall(rows)
    assert curve.n_cases == 4
    for threshold in DEFAULT_THRESHOLDS:
        tp, fp, fn = np.sum([_independent_counts(p, r, threshold) for p, r in cases.values()], axis=0)
        point = at_threshold(curve, threshold)
        k = int(np.flatnonzero(curve.thresholds == threshold)[0])
        assert (curve.tp[k], curve.fp[k], curve.n_lesions - curve.tp[k]) == (tp, fp, fn)
        assert point.threshold == threshold and point.recall == pytest.approx(tp / (tp + fn))
        assert point.precision == pytest.approx(tp / max(tp + fp, 1)) and point.fp_per_case == pytest.approx(fp / 4)
    assert at_threshold(curve, 0.5).recall > 0 and at_threshold(curve, 0.1).recall == 0    # merged at 0.1, found at 0.5


_LEVELS = st.sampled_from([0.0, 0.05, 0.15, 0.35, 0.5, 0.65, 0.85, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, (5, 6, 7), elements=_LEVELS),
    arrays(np.bool_, (5, 6, 7)),
    st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.6, 0.9, 1.0]), min_size=1, max_size=4, unique=True),
    st.sampled_from([6, 18, 26]),
)
def test_counts_at_every_threshold_are_consistent(probability, reference, thresholds, connectivity):
    rows = lesion_rows(probability, reference, thresholds=thresholds, connectivity=connectivity, case_id="c")
    structure = ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    n_lesions = ndimage.label(reference, structure)[1]
    assert set(rows.threshold) <= set(thresholds) and (n_lesions == 0 or set(rows.threshold) == set(thresholds))
    curve = precision_recall(rows)
    for threshold in thresholds:
        block = rows[rows.threshold == threshold]
        n_candidates = ndimage.label(probability >= threshold, structure)[1]
        lesions = block[block.is_lesion == 1]
        tp, fn, fp = int((lesions.confidence > 0).sum()), int((lesions.confidence == 0).sum()), int((block.is_lesion == 0).sum())
        assert tp <= min(n_lesions, n_candidates) and tp + fn == n_lesions and tp + fp == n_candidates
        assert (block[block.is_lesion == 0].confidence >= threshold).all()
        assert (lesions[lesions.confidence > 0].overlap >= 0.1).all() and (lesions[lesions.confidence == 0].overlap == 0).all()
        if len(block):
            k = int(np.flatnonzero(curve.thresholds == threshold)[0])
            assert (curve.tp[k], curve.fp[k]) == (tp, fp)
    assert curve.n_lesions == n_lesions


def test_rows_of_different_threshold_grids_are_refused():
    probability, reference = _merged_case()
    rows = pd.concat([lesion_rows(probability, reference, case_id="a"),
                      lesion_rows(probability, reference, thresholds=(0.5,), case_id="b")])
    with pytest.raises(ValueError, match="same lesions"):
        precision_recall(rows)
    with pytest.raises(ValueError, match="thresholds"):
        lesion_rows(probability, reference, thresholds=(0.0, 0.5))


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
    assert everything.argmax_threshold == 0.6                                         # the lowest grid threshold ≥ 0.5
    assert (everything.argmax_precision, everything.argmax_recall) == (0.5, 0.5)      # detections at 0.6: A and the FP
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
    assert list(rows.columns) == [*ROW_COLUMNS, "region"] and set(rows.threshold) == set(DEFAULT_THRESHOLDS)
    assert (rows.is_lesion == 1).all()                                                  # no FP at any threshold
    found = rows[rows.threshold <= 0.9]
    assert (found.confidence > 0.9).all() and (found.overlap == 1).all()                 # every lesion found, exactly
    assert (rows[rows.threshold == 0.95].confidence == 0).all()                          # above every voxel (0.92)
    assert set(rows.region) <= set(BRATS_METS_2025.region_names)
    for region, part in rows.groupby("region"):
        point = at_threshold(precision_recall(part), 0.5)
        n_lesions = ndimage.label(BRATS_METS_2025.to_region_masks(case.label)[channels.index(region)],
                                  ndimage.generate_binary_structure(3, 3))[1]
        assert (point.precision, point.recall, (part.threshold == 0.5).sum()) == (1.0, 1.0, n_lesions)


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


def _random_grid_rows(seed: int, n_cases: int = 9) -> pd.DataFrame:
    """Threshold-grid rows: each case's lesions at every threshold (found below a random level), a
    random number of false positives per threshold (more at low thresholds), some cases without lesions."""
    rng = np.random.default_rng(seed)
    thresholds = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    records = []
    for case in range(n_cases):
        found_below = rng.random(rng.integers(0, 4))
        for t in thresholds:
            records += [(f"c{case}", t, 1, float(t < level)) for level in found_below]
            records += [(f"c{case}", t, 0, t)] * int(rng.poisson(2 * (1 - t)))
    return pd.DataFrame(records, columns=["case_id", "threshold", "is_lesion", "confidence"])


def _curve_statistics(curve):
    matched = at_precision(curve, 0.6)
    return np.array([curve.average_precision, at_threshold(curve, 0.5).recall, matched.recall if matched else np.nan])


@pytest.mark.parametrize("seed", range(4))
def test_curve_bootstraps_equal_the_row_resampling_bootstraps(seed):
    rows_a, rows_b = _random_grid_rows(seed), _random_grid_rows(seed + 100)
    of_rows = lambda rows: _curve_statistics(precision_recall(rows))
    slow = bootstrap_ci(rows_a, of_rows, n_resamples=60, seed=seed)
    fast = curve_bootstrap_ci(rows_a, _curve_statistics, n_resamples=60, seed=seed)
    for expected, got in zip(slow, fast):
        np.testing.assert_allclose(got, expected, equal_nan=True)
    slow_pair = paired_bootstrap(rows_a, rows_b, of_rows, n_resamples=60, seed=seed)
    fast_pair = paired_curve_bootstrap(rows_a, rows_b, _curve_statistics, n_resamples=60, seed=seed)
    for key in ("difference", "low", "high", "p_value", "within_noise"):
        np.testing.assert_allclose(fast_pair[key], slow_pair[key], equal_nan=True)


def test_paired_curve_bootstrap_needs_the_same_cases():
    rows = _random_grid_rows(0)
    with pytest.raises(ValueError, match="same cases"):
        paired_curve_bootstrap(rows, rows[rows.case_id != "c0"], _curve_statistics)


def test_curve_bootstraps_of_detection_maps_resample_rows():
    """Rows without a threshold column (one detection map per case) take the row-resampling way."""
    maps = _random_grid_rows(5).drop(columns="threshold").assign(confidence=lambda r: r.confidence * 0.9 + 0.05)
    expected = bootstrap_ci(maps, lambda r: _curve_statistics(precision_recall(r)), n_resamples=30, seed=1)
    for want, got in zip(expected, curve_bootstrap_ci(maps, _curve_statistics, n_resamples=30, seed=1)):
        np.testing.assert_allclose(got, want, equal_nan=True)
