"""Challenge presets: every rule on hand-made cases (equal to the official BraTS scorer on perturbed
phantoms: tests/oracles/test_oracle_brats.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from workbench.metrics.challenge import PRESETS, score_case, summarize_scores

# --------------------------------------------------------------------------- hand-made cases


def _cube(shape, corner, size, value=3, out=None):
    out = np.zeros(shape, dtype=np.uint8) if out is None else out
    out[tuple(slice(c, c + s) for c, s in zip(corner, size))] = value
    return out


def _score(pred, ref, **kwargs):
    row, lesions = score_case(pred, ref, **kwargs)
    return {k.removesuffix("_et"): v for k, v in row.items() if k.endswith("_et")}, lesions[lesions.region == "et"]


@pytest.mark.parametrize(("overlap", "detected"), [(1, False), (4, True)])
def test_a_small_lesion_is_detected_only_at_dice_0_1_or_more(overlap, detected):
    ref = _cube((12, 12, 30), (2, 2, 2), (2, 2, 4))                  # 16 voxels = 16 mm³ < 20: small
    pred = _cube((12, 12, 30), (2, 2, 6 - overlap), (2, 2, 20))      # 80 voxels, `overlap` slices of 4 shared
    et, lesions = _score(pred, ref)
    assert et["all_instance_tp"] == 1                                  # matched (any overlap)...
    assert et["small_instance_tp"] == int(detected) and et["small_instance_fn"] == int(not detected)
    assert math.isnan(et["large_instance_tp"]) and math.isnan(et["lesionwise_dsc_mean"])  # no large lesion
    reference = lesions[lesions.kind == "reference"].iloc[0]
    assert reference.size_class == "small" and bool(reference.detected) == detected
    assert reference.dice == pytest.approx(2 * 4 * overlap / (16 + 80))   # 0.083 or 0.333


def test_a_missed_large_lesion_and_a_false_positive_score_zero_and_373():
    ref = _cube((20, 20, 20), (2, 2, 2), (3, 3, 3))                    # 27 mm³: large
    ref = _cube(None, (10, 10, 10), (3, 3, 3), out=ref)                # a second large lesion, found exactly
    pred = _cube((20, 20, 20), (10, 10, 10), (3, 3, 3))
    pred = _cube(None, (16, 16, 16), (2, 2, 2), out=pred)              # a false positive of 8 mm³
    et, lesions = _score(pred, ref)
    assert (et["large_instance_tp"], et["large_instance_fn"], et["large_instance_fp"]) == (1, 1, 1)
    # lesion-wise lists: found (1, 1, 0), missed (0, 0, 373), FP (0, 0, 373)
    assert et["lesionwise_dsc_mean"] == pytest.approx(1 / 3)
    assert et["lesionwise_nsd_mean"] == pytest.approx(1 / 3)
    assert et["lesionwise_hd95_mean"] == pytest.approx(2 * 373 / 3)
    assert et["lesionwise_dsc_std"] == pytest.approx(np.std([1, 0, 0]))
    # the official parser counts the small FP against the large class; the extras attribute it by size
    assert et["small_fp_by_size"] == 1 and et["large_fp_by_size"] == 0
    assert et["large_prec_by_size"] == 1.0 and et["large_f1_by_size"] == pytest.approx(2 / 3)
    fp = lesions[lesions.status == "FP"].iloc[0]
    assert (fp.kind, fp.size_class, fp.scored_dice, fp.scored_hd95) == ("prediction", "small", 0.0, 373.0)


def test_empty_prediction_reference_and_both():
    ref = _cube((12, 12, 12), (2, 2, 2), (3, 3, 3))
    empty = np.zeros_like(ref)
    missed, _ = _score(empty, ref)
    assert (missed["global_dsc"], missed["global_nsd"], missed["global_hd95"]) == (0.0, 0.0, 373.0)
    assert missed["all_instance_f1"] == 0.0 and math.isnan(missed["all_instance_prec"])
    assert missed["lesionwise_dsc_mean"] == 0.0 and missed["lesionwise_hd95_mean"] == 373.0
    invented, _ = _score(ref, empty)
    assert invented["global_hd95"] == 373.0 and invented["all_instance_fp"] == 1
    assert math.isnan(invented["all_instance_rec"]) and math.isnan(invented["lesionwise_dsc_mean"])
    assert math.isnan(invented["large_instance_tp"]) and math.isnan(invented["small_instance_tp"])
    nothing, lesions = _score(empty, empty)
    assert nothing["all_instance_tp"] == 0 and lesions.empty
    for key in ("all_instance_f1", "global_dsc", "global_nsd", "global_hd95", "lesionwise_dsc_mean"):
        assert math.isnan(nothing[key]), key


def test_global_surface_metrics_are_in_voxels_and_lesion_ones_in_mm():
    ref = _cube((10, 10, 30), (2, 2, 2), (4, 4, 4))
    pred = _cube((10, 10, 30), (2, 2, 4), (4, 4, 4))                   # shifted by 2 voxels along the last axis
    spacing = (1.0, 1.0, 3.0)
    true_distances = dataclasses.replace(PRESETS["brats_mets_2025"], reverse_spacing=False)
    et, _ = _score(pred, ref, spacing=spacing, preset=true_distances)
    assert et["global_hd95"] == pytest.approx(2.0)                      # voxels
    assert et["lesionwise_hd95_mean"] == pytest.approx(6.0)             # 2 voxels × 3 mm
    official, _ = _score(pred, ref, spacing=spacing)                   # spacing applied to the axes in reverse
    assert official["lesionwise_hd95_mean"] == pytest.approx(2.0)      # the last axis measured with 1 mm


def test_label_values_outside_the_preset_are_refused():
    ref = _cube((8, 8, 8), (1, 1, 1), (2, 2, 2), value=4)
    with pytest.raises(ValueError, match=r"holds label values \[4\] that no region of preset 'brats_goat_2025'"):
        score_case(ref, ref, preset="brats_goat_2025")
    with pytest.raises(ValueError, match="Unknown scoring preset 'brats'"):
        score_case(ref, ref, preset="brats")
    with pytest.raises(ValueError, match="same shape"):
        score_case(ref[:4], ref)


def test_summary_rows_are_mean_std_median_skipping_nan():
    rows = pd.DataFrame({"subject_id": ["a", "b", "c"], "x_et": [1.0, 3.0, np.nan], "y_et": [np.nan] * 3})
    summary = summarize_scores(rows)
    assert summary["subject_id"].tolist() == ["a", "b", "c", "mean", "std", "median"]
    assert summary["x_et"].tolist()[3:] == [2.0, pytest.approx(math.sqrt(2)), 2.0]
    assert summary["y_et"].isna().all()
