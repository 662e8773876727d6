"""Challenge presets where a near miss would show: equal-Dice candidates in the lesion matching and
a lesion volume on the size threshold with a spacing that float32 cannot hold, against the
official scorer (brats-evaluation, the oracle) from the files, as ``workbench evaluate --preset``
scores them."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.nifti import save_nifti
from workbench.metrics.challenge import get_preset, score_case, summarize_scores
from workbench.runs.cases import CasePair
from workbench.runs.scoring import score_cohort

from _brats_oracle import assert_frames_equal, official  # skips without brats-evaluation

SHAPE = (26, 30, 22)
THRESHOLD_SPACING = (0.64, 1.25, 1.0)  # 0.64 is 0.6399999856948853 in float32: 25 voxels = 19.99999955 mm³


def _isolated_voxels(box: tuple[slice, ...], count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``count`` voxels inside ``box``, no two of them 26-adjacent (each one its own component)."""
    chosen: list[tuple[int, ...]] = []
    candidates = np.argwhere(np.ones([s.stop - s.start for s in box], dtype=bool)) + [s.start for s in box]
    for voxel in rng.permutation(candidates):
        if all(np.max(np.abs(voxel - np.array(c))) >= 2 for c in chosen):
            chosen.append(tuple(int(v) for v in voxel))
        if len(chosen) == count:
            break
    return chosen


def _speckle_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred, ref): reference boxes far apart, each found only by 2–4 single-voxel speckles inside
    it (equal Dice, different HD95), two equal boxes one voxel apart bridged by one 3-voxel
    prediction of equal Dice to both, and a false positive."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(SHAPE, dtype=np.uint8)
    pred = np.zeros(SHAPE, dtype=np.uint8)
    corners = [(1, 1, 1), (1, 16, 12), (14, 2, 12), (14, 18, 1)]
    for corner, value in zip(corners, rng.choice([1, 3], size=len(corners))):
        size = rng.integers(4, 8, size=3)
        box = tuple(slice(c, c + s) for c, s in zip(corner, size))
        ref[box] = value
        for voxel in _isolated_voxels(box, int(rng.integers(2, 5)), rng):
            pred[voxel] = value
    twins = [(slice(20, 25), slice(4, 8), slice(3, 7)), (slice(20, 25), slice(9, 13), slice(3, 7))]
    for box in twins:
        ref[box] = 3
        for voxel in _isolated_voxels(box, 2, rng):
            pred[voxel] = 3
    pred[22, 7:10, 5] = 3     # the bridge: one voxel in each twin, one in the gap
    pred[8, 26, 20] = 2       # a false positive (edema: WT only)
    return pred, ref


def _threshold_case() -> tuple[np.ndarray, np.ndarray]:
    """(pred, ref): a 25-voxel lesion (19.99999955 mm³ as the official reader measures it), found
    exactly; a large lesion found in part; a small false positive."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[3:8, 3:8, 4] = 3
    ref[14:20, 16:22, 10:15] = 3
    pred = ref.copy()
    pred[14:17, 16:22, 10:15] = 0
    pred[2:4, 24:26, 18] = 3
    return pred, ref


def _cases() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    # seeds 114 and 124: cases where solving each group of overlapping lesions on its own (the
    # workbench's own matching) breaks a tie otherwise than the one global assignment
    cases = [(f"speckles-{seed}", *_speckle_case(seed), (1.0, 1.0, 1.0)) for seed in (0, 1, 114, 124)]
    cases.append(("speckles-anisotropic", *_speckle_case(4), THRESHOLD_SPACING))
    cases.append(("threshold", *_threshold_case(), THRESHOLD_SPACING))
    return cases


@pytest.mark.parametrize("name", ["brats_mets_2025", "brats_gli_2025"])
def test_equal_dice_ties_and_float32_spacing_score_as_the_official_scorer(tmp_path, name):
    preset = get_preset(name)
    pairs, files = [], []
    for index, (_, pred, ref, spacing) in enumerate(_cases()):
        ref_path, pred_path = tmp_path / f"ref-{index:05d}.nii.gz", tmp_path / f"pred-{index:05d}.nii.gz"
        save_nifti(ref_path, ref, spacing=spacing)
        save_nifti(pred_path, pred, spacing=spacing)
        pairs.append(CasePair(ref_path.name, pred_path, ref_path))
        files.append((pred_path, ref_path))
    ours = score_cohort(pairs, preset, progress=False)  # the files path of `workbench evaluate --preset`
    official_rows = official(preset, files, tmp_path)
    leaderboard = summarize_scores(ours.scores)  # the case rows, then mean / std / median
    assert official_rows["subject_id"].tolist() == leaderboard["subject_id"].tolist()
    assert_frames_equal(official_rows, leaderboard, atol=1e-9, hd95_atol=1e-9)


def test_a_lesion_on_the_volume_threshold_is_small_as_the_official_reader_measures_it(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    pred, ref = _threshold_case()
    save_nifti(tmp_path / "ref.nii.gz", ref, spacing=THRESHOLD_SPACING)
    save_nifti(tmp_path / "pred.nii.gz", pred, spacing=THRESHOLD_SPACING)
    pair = CasePair("case", tmp_path / "pred.nii.gz", tmp_path / "ref.nii.gz")
    from_files = score_cohort([pair], "brats_mets_2025", progress=False)
    from_arrays = score_case(pred, ref, spacing=THRESHOLD_SPACING, case_id="case")
    read_spacing = sitk.ReadImage(str(tmp_path / "ref.nii.gz")).GetSpacing()
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
