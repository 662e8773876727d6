"""Challenge presets against the official BraTS scorer (brats-evaluation 0.0.10 → panoptica), from
NIfTI files: every leaderboard column on perturbed phantoms of four challenges, and the cases where
a near miss would show (equal-Dice candidates, a lesion on the size threshold at a spacing float32
cannot hold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _brats_oracle import assert_frames_equal, official  # skips without brats-evaluation
from _challenge_cases import THRESHOLD_SPACING, perturbed_cases, tie_cases

from workbench.data.nifti import load_label, save_nifti
from workbench.metrics.challenge import get_preset, score_case, summarize_scores
from workbench.runs.cases import CasePair
from workbench.runs.scoring import score_cohort


@pytest.mark.parametrize("name", ["brats_mets_2025", "brats_gli_2025", "brats_ped_2025", "brats_menrt_2025"])
def test_every_leaderboard_column_equals_the_official_scorer(tmp_path, name):
    preset = get_preset(name)
    pairs, rows = [], []
    for case, pred, ref, spacing in perturbed_cases(preset):
        affine = np.diag([*spacing, 1.0])
        ref_path, pred_path = tmp_path / f"ref-{len(pairs):05d}.nii.gz", tmp_path / f"pred-{len(pairs):05d}.nii.gz"
        save_nifti(ref_path, ref, affine)
        save_nifti(pred_path, pred, affine)
        pairs.append((pred_path, ref_path))
        loaded_ref, _, loaded_spacing = load_label(ref_path)
        row, _ = score_case(load_label(pred_path)[0], loaded_ref, preset=preset, spacing=loaded_spacing,
                            case_id=ref_path.name)
        rows.append(row)
    official_rows = official(preset, pairs, tmp_path)
    ours = summarize_scores(pd.DataFrame(rows))  # the case rows and the mean / std / median rows
    assert official_rows["subject_id"].tolist() == ours["subject_id"].tolist()
    assert_frames_equal(official_rows, ours)


@pytest.mark.parametrize("name", ["brats_mets_2025", "brats_gli_2025"])
def test_equal_dice_ties_and_float32_spacing_score_as_the_official_scorer(tmp_path, name):
    preset = get_preset(name)
    pairs, files = [], []
    for index, (_, pred, ref, spacing) in enumerate(tie_cases()):
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


def test_the_official_reader_holds_the_spacing_in_float32(tmp_path):
    """SimpleITK (the official scorer's reader) reads 0.64 mm as float32's 0.6399999856948853, as
    score_case rounds it (tests/metrics/test_challenge_ties.py relies on it)."""
    import SimpleITK as sitk

    save_nifti(tmp_path / "ref.nii.gz", np.zeros((4, 4, 4), dtype=np.uint8), spacing=THRESHOLD_SPACING)
    read_spacing = sitk.ReadImage(str(tmp_path / "ref.nii.gz")).GetSpacing()
    assert read_spacing == tuple(np.float32(THRESHOLD_SPACING).astype(float).tolist())
    assert read_spacing[0] == 0.6399999856948853
