"""Challenge presets where a near miss would show: equal-Dice candidates in the lesion matching and
a lesion volume on the size threshold with a spacing that float32 cannot hold, on hand-made cases
(the same cases against the official scorer: tests/oracles/test_oracle_brats.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _challenge_cases import THRESHOLD_SPACING, threshold_case

from workbench.data.nifti import save_nifti
from workbench.metrics.challenge import score_case
from workbench.runs.cases import CasePair
from workbench.runs.scoring import score_cohort


def test_a_lesion_on_the_volume_threshold_is_small_as_the_official_reader_measures_it(tmp_path):
    pred, ref = threshold_case()
    save_nifti(tmp_path / "ref.nii.gz", ref, spacing=THRESHOLD_SPACING)
    save_nifti(tmp_path / "pred.nii.gz", pred, spacing=THRESHOLD_SPACING)
    pair = CasePair("case", tmp_path / "pred.nii.gz", tmp_path / "ref.nii.gz")
    from_files = score_cohort([pair], "brats_mets_2025", progress=False)
    from_arrays = score_case(pred, ref, spacing=THRESHOLD_SPACING, case_id="case")
    read_spacing = np.float32(THRESHOLD_SPACING).astype(float)  # as SimpleITK reads it (tests/oracles)
    assert read_spacing[0] == 0.6399999856948853
    for row, lesions in ((from_files.scores.iloc[0], from_files.lesions), from_arrays):
        threshold_lesion = lesions[(lesions.region == "et") & (lesions.kind == "reference") & (lesions.voxels == 25)]
        assert threshold_lesion.volume_mm3.tolist() == [25 * float(np.prod(read_spacing))]  # 19.99999955
        assert threshold_lesion.size_class.tolist() == ["small"]
        assert (row["small_instance_tp_et"], row["large_instance_tp_et"], row["large_instance_fn_et"]) == (1, 1, 0)
        assert row["lesionwise_dsc_mean_et"] == pytest.approx((2 * 90 / (180 + 90) + 0) / 2)  # the large lesion and the FP


def test_of_equal_dice_candidates_the_first_in_the_official_scan_order_is_matched():
    ref = np.zeros((9, 9, 9), dtype=np.uint8)
    ref[1:8, 1:8, 1:8] = 3
    # scanning x fastest (SimpleITK's order, z slowest) the centre voxel comes first; scanning z fastest
    # (nibabel's array in C order) the corner one
    corner, centre = (1, 1, 5), (4, 4, 1)
    alone = {}
    for name, voxel in (("corner", corner), ("centre", centre)):
        pred = np.zeros_like(ref)
        pred[voxel] = 3
        alone[name] = score_case(pred, ref)[0]["lesionwise_hd95_mean_et"]  # one pair: its HD95
    assert alone["corner"] != pytest.approx(alone["centre"])
    pred = np.zeros_like(ref)
    pred[corner] = pred[centre] = 3  # equal Dice 2 / (343 + 1) with the reference lesion
    both, lesions = score_case(pred, ref)
    assert (both["all_instance_tp_et"], both["all_instance_fp_et"]) == (1, 1)
    assert both["lesionwise_hd95_mean_et"] == pytest.approx((alone["centre"] + 373) / 2)  # the pair, then the FP
