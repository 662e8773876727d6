"""workbench.metrics.case: evaluate_case and lesion_table against hand-computed label maps,
the empty-case policy and input checks (panoptica as the PQ oracle: tests/oracles)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _lesions import label_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.labels import BRATS_METS_2025, LabelValueError
from workbench.metrics import (
    LESION_COLUMNS,
    EmptyPolicy,
    cc_dice,
    connected_components,
    evaluate_case,
    hd95,
    lesion_table,
    surface_dice,
)

NAN = float("nan")
THRESHOLD_FREE = ("dice", "sensitivity", "precision", "f1", "cc_dice", "surface_dice", "n_ref", "n_pred", "hd95")
PER_THRESHOLD = ("pq", "sq", "rq", "tp", "fp", "fn")


def values(table: pd.DataFrame, threshold: float = NAN, stratum: str = "all") -> pd.DataFrame:
    """metric × region pivot of one threshold (NaN: the threshold-free metrics) and stratum."""
    rows = table[(table["stratum"] == stratum)]
    rows = rows[rows["threshold"].isna()] if math.isnan(threshold) else rows[rows["threshold"] == threshold]
    return rows.pivot(index="metric", columns="region", values="value")


def hand_case_2d() -> tuple[np.ndarray, np.ndarray]:
    """Reference: ET lesion A at row 1, cols 1–3; SNFH lesion B at row 4, cols 8–9.
    Prediction: ET at row 1, cols 1–2 (inside A); SNFH at row 4, col 5 (a false positive)."""
    ref = np.zeros((6, 12), dtype=np.uint8)
    pred = np.zeros_like(ref)
    ref[1, 1:4] = 3
    ref[4, 8:10] = 2
    pred[1, 1:3] = 3
    pred[4, 5] = 2
    return pred, ref


# --- hand-computed cases -------------------------------------------------------------------


def test_hand_case_threshold_free_metrics():
    table = evaluate_case(*hand_case_2d(), thresholds=(0.5,))
    got = values(table)
    # WT: pred {A' (2 voxels), P2 (1)}, ref {A (3), B (2)}; A'–A Dice 4/5; P2 overlaps nothing.
    # Surface (tolerance 1 mm): pred→ref [0, 0, 3], ref→pred [0, 0, 1, 3, 4] → 5/8 within;
    # HD95 = max(P95[0, 0, 3], P95[0, 0, 1, 3, 4]) = max(2.7, 3.8). CC-Dice: P2 lies in B's cell
    # (distance 3 to B, √13 to A): mean(2·2/(2 + 3), 0).
    expected_wt = dict(dice=0.5, n_ref=2, n_pred=2, sensitivity=0.5, precision=0.5, f1=0.5, cc_dice=0.4)
    expected_wt |= dict(surface_dice=5 / 8, hd95=3.8)
    # TC and ET: A' inside A only. Surface: pred→ref [0, 0], ref→pred [0, 0, 1]; HD95 = P95 = 0.9.
    expected_tc = dict(dice=0.8, n_ref=1, n_pred=1, sensitivity=1, precision=1, f1=1, cc_dice=0.8)
    expected_tc |= dict(surface_dice=1.0, hd95=0.9)
    # RC is empty in both: BraTS policy.
    expected_rc = dict(dice=1, n_ref=0, n_pred=0, sensitivity=1, precision=1, f1=1, cc_dice=1)
    expected_rc |= dict(surface_dice=1.0, hd95=0.0)
    for region, expected in (("WT", expected_wt), ("TC", expected_tc), ("ET", expected_tc), ("RC", expected_rc)):
        for metric, value in expected.items():
            assert got.loc[metric, region] == pytest.approx(value), (region, metric)
    assert got.loc["dice", "mean"] == pytest.approx((0.5 + 0.8 + 0.8 + 1.0) / 4)
    assert got.loc["hd95", "mean"] == pytest.approx((3.8 + 0.9 + 0.9 + 0.0) / 4)


def test_hand_case_panoptic_metrics():
    table = evaluate_case(*hand_case_2d(), thresholds=(0.5, 0.9))
    at_05, at_09 = values(table, 0.5), values(table, 0.9)
    # WT at 0.5: TP 1 (Dice 0.8), FP 1, FN 1 → SQ 0.8, RQ 1/2, PQ 0.4.
    assert [at_05.loc[m, "WT"] for m in ("tp", "fp", "fn", "sq", "rq", "pq")] == pytest.approx([1, 1, 1, 0.8, 0.5, 0.4])
    assert [at_05.loc[m, "ET"] for m in ("tp", "fp", "fn", "sq", "rq", "pq")] == pytest.approx([1, 0, 0, 0.8, 1, 0.8])
    assert [at_05.loc[m, "RC"] for m in ("tp", "fp", "fn", "sq", "rq", "pq")] == pytest.approx([0, 0, 0, 1, 1, 1])
    # At 0.9 nothing matches: SQ of a region with lesions but no TP is `no_match` = 0.
    assert [at_09.loc[m, "ET"] for m in ("tp", "fp", "fn", "sq", "rq", "pq")] == pytest.approx([0, 1, 1, 0, 0, 0])
    assert at_05.loc["pq", "mean"] == pytest.approx((0.4 + 0.8 + 0.8 + 1.0) / 4)


def test_table_layout():
    table = evaluate_case(*hand_case_2d(), case_id="c1")
    assert list(table.columns) == ["case_id", "region", "metric", "threshold", "stratum", "value"]
    assert (table["case_id"] == "c1").all() and table["value"].dtype == np.float64
    assert list(table["region"].unique()) == ["WT", "TC", "ET", "RC", "mean"]
    per_region = len(THRESHOLD_FREE) + 3 * len(PER_THRESHOLD) * 4  # strata: all + 3 sizes
    assert len(table) == 5 * per_region
    free = table[table["threshold"].isna()]
    assert set(free["metric"]) == set(THRESHOLD_FREE) and (free["stratum"] == "all").all()
    assert set(table.loc[table["threshold"].notna(), "metric"]) == set(PER_THRESHOLD)
    assert set(table["threshold"].dropna()) == {0.1, 0.3, 0.5}
    assert set(table["stratum"]) == {"all", "<100", "100-1000", ">=1000"}
    assert not table.duplicated(["region", "metric", "threshold", "stratum"]).any()
    config = table.attrs["config"]
    assert config["connectivity"] == 8 and config["spacing"] == [1.0, 1.0] and config["empty"]["hd95_one_empty"] == 374


def lesion_3d(spacing):
    """A 3×3×3 ET lesion found exactly, plus a 2×5×5 false-positive ET lesion, in a 10×24×24 map."""
    ref = np.zeros((10, 24, 24), dtype=np.uint8)
    ref[5:8, 10:13, 20:23] = 3
    pred = ref.copy()
    pred[0:2, 0:5, 0:5] = 3
    return pred, ref


@pytest.mark.parametrize(
    ("spacing", "stratum_of_both", "ref_mm3", "fp_mm3"),
    [((1.0, 1.0, 1.0), "<100", 27.0, 50.0), ((4.0, 1.0, 1.0), "100-1000", 108.0, 200.0)],
)
def test_size_strata_follow_anisotropic_spacing(spacing, stratum_of_both, ref_mm3, fp_mm3):
    table = evaluate_case(*lesion_3d(spacing), regions=["ET"], spacing=spacing, thresholds=(0.5,))
    for stratum in ("<100", "100-1000", ">=1000"):
        got = values(table, 0.5, stratum)["ET"]
        if stratum == stratum_of_both:
            assert (got["tp"], got["fp"], got["fn"]) == (1, 1, 0)
            assert got["pq"] == pytest.approx(1 / 1.5)
        else:
            assert (got["tp"], got["fp"], got["fn"]) == (0, 0, 0)
            assert math.isnan(got["pq"]) and math.isnan(got["sq"]) and math.isnan(got["rq"])  # empty stratum
    lesions = lesion_table(*lesion_3d(spacing), regions=["ET"], spacing=spacing)
    assert lesions["ref_mm3"].iloc[0] == pytest.approx(ref_mm3) and lesions["pred_mm3"].iloc[1] == pytest.approx(fp_mm3)


def test_lesion_table_rows():
    pred, ref = lesion_3d((1.0, 1.0, 1.0))
    ref[1, 20, 1] = 3  # a one-voxel lesion that is missed
    table = lesion_table(pred, ref, regions=["ET"], spacing=(2.0, 1.0, 0.5), case_id="c7", threshold=0.3)
    assert list(table.columns) == [
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
    ]
    # cc3d raster order: the missed voxel (z = 1) comes before the lesion (z = 5) in the reference;
    # the false positive (z = 0) before the found lesion in the prediction.
    assert table["status"].tolist() == ["FN", "TP", "FP"]
    assert table["ref_id"].tolist() == [1, 2, pd.NA]
    assert table["pred_id"].tolist() == [pd.NA, 2, 1]
    assert table["dice"].tolist() == [0.0, 1.0, 0.0]
    assert table["ref_voxels"].tolist() == [1, 27, pd.NA]
    assert table["pred_voxels"].tolist() == [pd.NA, 27, 50]
    np.testing.assert_allclose(table["ref_mm3"], [1.0, 27.0, NAN])
    np.testing.assert_allclose(table["pred_mm3"], [NAN, 27.0, 50.0])
    centroids = table[["centroid_z", "centroid_y", "centroid_x"]]
    np.testing.assert_allclose(centroids, [[1, 20, 1], [6, 11, 21], [0.5, 2, 2]])
    assert (table["case_id"] == "c7").all() and (table["threshold"] == 0.3).all() and (table["region"] == "ET").all()


def test_lesion_ids_are_those_of_the_whole_map():
    pred, ref = lesion_3d((1, 1, 1))
    ref[8, 22, 2] = 3
    components, n = connected_components(BRATS_METS_2025.to_region_masks(ref)[2])
    table = lesion_table(pred, ref, regions=["ET"])
    refs = table.dropna(subset=["ref_id"])
    assert refs["ref_id"].tolist() == list(range(1, n + 1))
    for _, row in refs.iterrows():
        coords = np.argwhere(components == row["ref_id"])
        np.testing.assert_allclose(row[["centroid_z", "centroid_y", "centroid_x"]].astype(float), coords.mean(0))
        assert row["ref_voxels"] == len(coords)


def test_lesion_table_in_2d():
    table = lesion_table(*hand_case_2d(), regions=["WT"])
    assert table["status"].tolist() == ["TP", "FN", "FP"]
    assert table["centroid_z"].isna().all()
    np.testing.assert_allclose(table[["centroid_y", "centroid_x"]], [[1, 2], [4, 8.5], [4, 5]])


def test_lesion_table_without_lesions():
    empty = np.zeros((4, 5, 6), dtype=np.uint8)
    table = lesion_table(empty, empty)
    assert len(table) == 0 and len(table.columns) == 14


def test_lesion_table_at_several_thresholds():
    # WT's lesion A' matches A with Dice 4/5: TP at 0.5, FN (and A' an FP) at 0.9.
    table = lesion_table(*hand_case_2d(), regions=["WT", "ET"], threshold=(0.9, 0.5), case_id="c1")
    assert table["threshold"].tolist() == [0.9] * 6 + [0.5] * 4
    assert table["region"].tolist() == ["WT"] * 4 + ["ET"] * 2 + ["WT"] * 3 + ["ET"]
    assert table["status"].tolist() == ["FN", "FN", "FP", "FP", "FN", "FP", "TP", "FN", "FP", "TP"]
    assert table["pred_id"].tolist() == [pd.NA, pd.NA, 1, 2, pd.NA, 1, 1, pd.NA, 2, 1]
    assert (table["case_id"] == "c1").all() and list(table.columns) == list(LESION_COLUMNS)


def test_lesion_table_without_lesions_at_several_thresholds():
    empty = np.zeros((4, 5, 6), dtype=np.uint8)
    table = lesion_table(empty, empty, threshold=[0.1, 0.5])
    pd.testing.assert_frame_equal(table, lesion_table(empty, empty, threshold=0.1))


@pytest.mark.filterwarnings("ignore:The prediction is empty")
@settings(max_examples=25, deadline=None)
@given(
    label_pairs(shape=(10, 12, 14)),
    st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.75, 1.0]), min_size=1, max_size=4, unique=True),
    st.sampled_from([None, (2.5, 1.0, 0.75)]),
)
def test_lesion_table_of_several_thresholds_is_the_concatenation(pair, thresholds, spacing):
    """One call for all thresholds equals one call per threshold, concatenated in that order."""
    common = {"spacing": spacing, "case_id": "c"}
    table = lesion_table(*pair, threshold=thresholds, **common)
    singles = [lesion_table(*pair, threshold=t, **common) for t in thresholds]
    pd.testing.assert_frame_equal(table, pd.concat(singles, ignore_index=True), check_exact=True)
    pd.testing.assert_frame_equal(lesion_table(*pair, threshold=np.array(thresholds), **common), table)


# --- empty-case policy ---------------------------------------------------------------------


def one_lesion():
    label = np.zeros((8, 9, 10), dtype=np.uint8)
    label[2:5, 3:6, 4:7] = 3
    return label


def test_both_empty_brats_policy():
    empty = np.zeros((8, 9, 10), dtype=np.uint8)
    table = evaluate_case(empty, empty)
    for metric in ("dice", "sensitivity", "precision", "f1", "cc_dice", "surface_dice"):
        assert (values(table).loc[metric] == 1.0).all(), metric
    assert (values(table).loc["hd95"] == 0.0).all() and (values(table).loc["n_ref"] == 0).all()
    for metric in ("pq", "sq", "rq"):
        assert (values(table, 0.5).loc[metric] == 1.0).all()
        assert values(table, 0.5, "<100").loc[metric].isna().all()  # empty strata stay NaN


def test_both_empty_nan_policy():
    empty = np.zeros((8, 9, 10), dtype=np.uint8)
    table = evaluate_case(empty, empty, empty="nan")
    scores = table[~table["metric"].isin(["tp", "fp", "fn", "n_ref", "n_pred"])]
    assert scores["value"].isna().all()  # the "mean" region too: NaN when every region is NaN
    assert (table.loc[table["metric"].isin(["tp", "fp", "fn"]), "value"] == 0).all()


def test_reference_empty():
    label = one_lesion()
    table = evaluate_case(label, np.zeros_like(label), regions=["ET"], thresholds=(0.5,))
    got = {**values(table)["ET"].to_dict(), **values(table, 0.5)["ET"].to_dict()}
    zero = ("dice", "sensitivity", "precision", "f1", "cc_dice", "surface_dice", "pq", "sq", "rq", "tp", "fn", "n_ref")
    assert got == pytest.approx(dict.fromkeys(zero, 0.0) | {"hd95": 374.0, "n_pred": 1, "fp": 1})
    custom = EmptyPolicy(ref_empty=0.25, hd95_one_empty=500.0)
    table = evaluate_case(label, np.zeros_like(label), regions=["ET"], thresholds=(0.5,), empty=custom)
    got = {**values(table)["ET"].to_dict(), **values(table, 0.5)["ET"].to_dict()}
    # Only undefined values change: SQ, sensitivity, CC-Dice, HD95. Dice, precision, F1, PQ, RQ are 0.
    assert [got[m] for m in ("sq", "sensitivity", "cc_dice", "hd95")] == [0.25, 0.25, 0.25, 500.0]
    assert [got[m] for m in ("dice", "precision", "f1", "pq", "rq", "surface_dice")] == [0.0] * 6


def test_prediction_empty_warns_and_scores_a_miss():
    label = one_lesion()
    with pytest.warns(UserWarning, match="prediction of case 'x' is empty"):
        table = evaluate_case(np.zeros_like(label), label, regions=["ET"], thresholds=(0.5,), case_id="x")
    got = {**values(table)["ET"].to_dict(), **values(table, 0.5)["ET"].to_dict()}
    zero = ("dice", "sensitivity", "precision", "f1", "cc_dice", "surface_dice", "pq", "sq", "rq", "tp", "fp", "n_pred")
    assert got == pytest.approx(dict.fromkeys(zero, 0.0) | {"hd95": 374.0, "n_ref": 1, "fn": 1})
    with pytest.warns(UserWarning):
        table = evaluate_case(np.zeros_like(label), label, regions=["ET"], empty=EmptyPolicy(pred_empty=0.5))
    got = values(table)["ET"]
    assert (got["precision"], got["sensitivity"], got["cc_dice"]) == (0.5, 0.0, 0.0)


def test_mean_skips_nan_regions():
    pred, ref = hand_case_2d()
    table = evaluate_case(pred, ref, empty="nan", thresholds=(0.5,))
    got = values(table)
    assert math.isnan(got.loc["dice", "RC"])
    assert got.loc["dice", "mean"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)


# --- consistency with the sibling metrics and with the whole map ---------------------------


@pytest.mark.filterwarnings("ignore:The prediction is empty")
@settings(max_examples=25, deadline=None)
@given(label_pairs(shape=(10, 12, 14)), st.sampled_from([(1.0, 1.0, 1.0), (2.5, 1.0, 0.75)]))
def test_crop_changes_nothing(pair, spacing):
    """Surface, CC-Dice and HD95 equal the sibling functions on the whole map's masks; padding the
    maps with background changes no value."""
    pred, ref = pair
    table = evaluate_case(pred, ref, spacing=spacing, thresholds=(0.3,), empty="nan")
    got = values(table)
    for k, region in enumerate(BRATS_METS_2025.region_names):
        p, r = BRATS_METS_2025.to_region_masks(pred)[k], BRATS_METS_2025.to_region_masks(ref)[k]
        if p.any() and r.any():
            expected = surface_dice(p, r, spacing=spacing, tolerance_mm=1.0)
            assert got.loc["surface_dice", region] == pytest.approx(expected)
            assert got.loc["hd95", region] == pytest.approx(hd95(p, r, spacing=spacing))
            assert got.loc["cc_dice", region] == pytest.approx(cc_dice(p, r, spacing=spacing).mean())
    padded_maps = (np.pad(m, ((3, 1), (0, 4), (2, 2))) for m in pair)
    padded = evaluate_case(*padded_maps, spacing=spacing, thresholds=(0.3,), empty="nan")
    pd.testing.assert_frame_equal(padded, table)


@pytest.mark.filterwarnings("ignore:The prediction is empty")
@settings(max_examples=25, deadline=None)
@given(label_pairs(shape=(10, 12, 14)), st.sampled_from([0.1, 0.5]))
def test_lesion_table_agrees_with_evaluate_case(pair, threshold):
    counts = values(evaluate_case(*pair, thresholds=(threshold,)), threshold)
    lesions = lesion_table(*pair, threshold=threshold)
    for region in BRATS_METS_2025.region_names:
        status = lesions.loc[lesions["region"] == region, "status"]
        for name in ("tp", "fp", "fn"):
            assert (status == name.upper()).sum() == counts.loc[name, region]


# --- input checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref", "kwargs", "error", "message"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, ValueError, r"same shape, but got \(4, 4\) and \(4, 5\)"),
        (np.zeros(4, int), np.zeros(4, int), {}, ValueError, r"2D \(Y, X\) or 3D .* shape \(4,\)"),
        (np.zeros((2, 2, 2, 2), int), np.zeros((2, 2, 2, 2), int), {}, ValueError, r"shape \(2, 2, 2, 2\)"),
        (np.full((3, 3), 7), np.zeros((3, 3), int), {}, LabelValueError, r"`pred`: Label map holds values \[7\]"),
        (np.zeros((3, 3), int), np.full((3, 3), -1), {}, LabelValueError, r"`ref`: Label map holds values \[-1\]"),
        (np.full((3, 3), 0.5), np.zeros((3, 3), int), {}, LabelValueError, "`pred`: Label map must hold integers"),
        (np.zeros((3, 3), complex), np.zeros((3, 3), int), {}, ValueError, "`pred` to be an integer label map"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"regions": ["XX"]}, ValueError, r"`regions` to be distinct regions of schema 'brats_mets_2025'"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"schema": "nope"}, ValueError, "Unknown label schema 'nope'"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"spacing": (1, 1, 1)}, ValueError, r"`spacing` to be 2 positive"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"spacing": (1, 0)}, ValueError, r"`spacing` to be 2 positive"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"connectivity": 6}, ValueError, r"`connectivity` to be one of \(4, 8\)"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"thresholds": (0.5, 0.5)}, ValueError, r"`thresholds` to be distinct Dice values in \(0, 1\]"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"thresholds": (0.0,)}, ValueError, r"`thresholds` to be distinct"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"thresholds": ()}, ValueError, r"`thresholds` to be distinct"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"size_edges_mm3": (10, 5)}, ValueError, "`size_edges_mm3` to be strictly increasing"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"surface_tolerance_mm": -1}, ValueError, "`surface_tolerance_mm` to be a finite, non-negative"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"empty": "zero"}, ValueError, r"`empty` to be one of \('brats', 'nan'\) or an EmptyPolicy, but got 'zero'"),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"case_id": 3}, TypeError, "`case_id` to be a str or None, but got int"),
    ],
)
def test_evaluate_case_rejects_bad_input(pred, ref, kwargs, error, message):
    with pytest.raises(error, match=message):
        evaluate_case(pred, ref, **kwargs)


@pytest.mark.parametrize("threshold", [0, 1.5, float("nan"), (), [0.3, 0.3], (0.5, 0.0), "0.5", [[0.1], [0.2, 0.3]]])
def test_lesion_table_rejects_a_bad_threshold(threshold):
    message = r"`threshold` to be a Dice value in \(0, 1\] or a non-empty sequence of distinct such values, but got"
    with pytest.raises(ValueError, match=message):
        lesion_table(*hand_case_2d(), threshold=threshold)


def test_other_schemas_and_whole_number_floats():
    pred, ref = hand_case_2d()
    binary = evaluate_case((pred > 0).astype(bool), (ref > 0).astype(float), schema="binary", thresholds=(0.5,))
    assert list(binary["region"].unique()) == ["FG", "mean"]
    assert values(binary).loc["dice", "FG"] == pytest.approx(0.5)


def test_validation_scores_equal_the_full_evaluation_on_its_metrics():
    from workbench.data.phantoms import make_case
    from workbench.metrics import validation_scores

    ref = make_case(3, shape=(32, 32, 32)).label
    pred = ref.copy()
    pred[ref == 3] = 1  # ET lost, TC kept
    pred[:4, :4, :4] = 3  # a false-positive ET lesion
    spacing = (1.5, 1.0, 2.0)
    full = evaluate_case(pred, ref, spacing=spacing, thresholds=[0.3, 0.5])
    full = full[(full["stratum"] == "all") & full["metric"].isin(["dice", "f1", "pq"])]
    quick = validation_scores(pred, ref, spacing=spacing, thresholds=[0.3, 0.5])
    keys = ["region", "metric", "threshold"]
    merged = full.merge(quick, on=keys, suffixes=("_full", "_quick"), how="outer", validate="one_to_one")
    assert len(merged) == len(full) == len(quick) == 5 * 4
    np.testing.assert_allclose(merged["value_quick"], merged["value_full"], atol=1e-12)
