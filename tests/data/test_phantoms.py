"""Tests of the synthetic BraTS-METS phantoms (workbench.data.phantoms)."""

from __future__ import annotations

import os

import cc3d
import nibabel as nib
import nilearn
import numpy as np
import pytest

from workbench.data.phantoms import KINDS, MODALITIES, PhantomCase, make_case

NETC, SNFH, ET, RC = 1, 2, 3, 4
T1N, T1C, T2W, T2F = (MODALITIES.index(m) for m in ("t1n", "t1c", "t2w", "t2f"))
SMALL = (32, 32, 32)
COHORT_SEEDS = range(16)
COHORT_SHAPE = (64, 64, 64)


@pytest.fixture(scope="module")
def cohort() -> list[PhantomCase]:
    return [make_case(seed, shape=COHORT_SHAPE) for seed in COHORT_SEEDS]


@pytest.fixture(scope="module")
def brain_extent_mm() -> np.ndarray:
    """Bounding-box size of the MNI152 brain (1 mm), read independently of the module."""
    folder = os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data")
    path = os.path.join(folder, "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    t1 = np.asarray(nib.load(path).dataobj)
    corners = np.argwhere(t1 > 0)
    return (corners.max(axis=0) - corners.min(axis=0) + 1).astype(float)


def _components(mask: np.ndarray) -> np.ndarray:
    """Sizes (voxels) of the 26-connected components of ``mask``."""
    labels, n = cc3d.connected_components(mask, connectivity=26, return_N=True)
    return np.bincount(labels.ravel(), minlength=n + 1)[1:]


def _brain_extent_in(case: PhantomCase) -> np.ndarray:
    corners = np.argwhere(case.image[T1N] > 0)
    return (corners.max(axis=0) - corners.min(axis=0) + 1) * np.asarray(case.spacing)


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_bit_identical_case() -> None:
    first, second = make_case(3, shape=SMALL), make_case(3, shape=SMALL)
    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.label, second.label)
    assert first.spacing == second.spacing


def test_different_seeds_give_different_cases() -> None:
    first, second = make_case(3, shape=SMALL), make_case(4, shape=SMALL)
    assert not np.array_equal(first.image, second.image)
    assert not np.array_equal(first.label, second.label)


def test_generating_other_cases_in_between_changes_nothing() -> None:
    before = make_case(5, shape=SMALL)
    make_case(6, shape=SMALL)
    make_case(5, shape=(24, 24, 24))
    after = make_case(5, shape=SMALL)
    assert np.array_equal(before.image, after.image)
    assert np.array_equal(before.label, after.label)


# --------------------------------------------------------------------------- output contract


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [(SMALL, None), ((40, 48, 36), None), ((36, 40, 24), (4.5, 5.0, 7.0)), (SMALL, (2.0, 2.0, 2.0))],
)
def test_output_contract(shape: tuple[int, int, int], spacing: tuple[float, float, float] | None) -> None:
    case = make_case(1, shape=shape, spacing=spacing)
    assert isinstance(case, PhantomCase)
    assert case.image.shape == (len(MODALITIES), *shape) == (4, *shape)
    assert case.image.dtype == np.float32
    assert case.label.shape == shape
    assert case.label.dtype == np.uint8
    assert len(case.spacing) == 3 and all(isinstance(s, float) and s > 0 for s in case.spacing)
    assert set(np.unique(case.label).tolist()) <= {0, NETC, SNFH, ET, RC}
    assert np.all(np.isfinite(case.image))
    assert case.image.min() >= 0.0
    assert 300.0 < case.image.max() < 2000.0


def test_background_is_zero_and_labels_lie_in_the_brain() -> None:
    case = make_case(4, shape=SMALL)
    brain = case.image[T1N] > 0
    assert 0.1 < brain.mean() < 0.9
    assert np.all(case.image[:, ~brain] == 0)
    assert np.all(brain[case.label > 0])


def test_default_spacing_is_isotropic_and_fits_the_brain(brain_extent_mm: np.ndarray) -> None:
    case = make_case(2, shape=(40, 48, 44))
    assert case.spacing[0] == case.spacing[1] == case.spacing[2]
    field_of_view = np.asarray((40, 48, 44)) * case.spacing[0]
    assert np.all(field_of_view >= brain_extent_mm)
    assert np.any(field_of_view <= brain_extent_mm + 12.0)  # just fits: a small margin on the tightest axis
    np.testing.assert_allclose(_brain_extent_in(case), brain_extent_mm, atol=2 * case.spacing[0])


def test_anisotropic_spacing_gives_requested_field_of_view(brain_extent_mm: np.ndarray) -> None:
    spacing = (2.5, 2.5, 4.0)
    case = make_case(0, shape=(64, 80, 42), spacing=spacing)
    assert case.spacing == spacing
    np.testing.assert_allclose(_brain_extent_in(case), brain_extent_mm, atol=2 * max(spacing))
    corners = np.argwhere(case.image[T1N] > 0)
    margin_lo, margin_hi = corners.min(axis=0), np.asarray((64, 80, 42)) - 1 - corners.max(axis=0)
    assert np.all(np.abs(margin_lo - margin_hi) <= 1)  # centred on the brain


def test_small_field_of_view_crops_the_brain() -> None:
    case = make_case(0, shape=(48, 48, 16), spacing=(1.0, 1.0, 3.0))
    brain = case.image[T1N] > 0
    assert brain.mean() > 0.9  # a 48 x 48 x 48 mm window in the middle of the brain
    assert case.label.shape == (48, 48, 16)


# --------------------------------------------------------------------------- cohort statistics


def test_cohort_has_every_label(cohort: list[PhantomCase]) -> None:
    present = set().union(*(np.unique(case.label).tolist() for case in cohort))
    assert present == {0, NETC, SNFH, ET, RC}


def test_resection_cavities_are_rare_and_single(cohort: list[PhantomCase]) -> None:
    rc_counts = np.array([len(_components(case.label == RC)) for case in cohort])
    et_counts = np.array([len(_components(case.label == ET)) for case in cohort])
    cases_with_rc = int(np.count_nonzero(rc_counts))
    assert 1 <= cases_with_rc <= len(cohort) // 3
    assert rc_counts.max() == 1
    assert rc_counts.sum() * 5 < et_counts.sum()


def test_lesion_sizes_range_from_tiny_to_large(cohort: list[PhantomCase]) -> None:
    sizes = np.concatenate([_components(np.isin(case.label, (NETC, ET))) for case in cohort])
    et_sizes = np.concatenate([_components(case.label == ET) for case in cohort])
    assert sizes.min() >= 3  # no single-voxel lesions
    assert et_sizes.min() <= 10  # tiny, hard-to-detect lesions exist
    assert sizes.max() >= 300  # and large ones (>= 300 voxels of 3 mm, about 8 cm3)
    voxel_mm3 = float(np.prod(cohort[0].spacing))
    assert sizes.max() * voxel_mm3 >= 8_000.0


def test_lesion_counts_are_heavy_tailed(cohort: list[PhantomCase]) -> None:
    counts = np.array([len(_components(np.isin(case.label, (NETC, ET)))) for case in cohort])
    assert counts.min() >= 1
    assert np.mean((counts >= 1) & (counts <= 5)) >= 0.5  # most cases have 1-5 lesions
    assert counts.max() >= 3 * np.median(counts)
    assert counts.max() >= 10


def test_larger_lesions_have_necrotic_cores(cohort: list[PhantomCase]) -> None:
    with_core = sum(bool(np.any(case.label == NETC)) for case in cohort)
    assert with_core >= len(cohort) // 2


def test_edema_surrounds_lesions(cohort: list[PhantomCase]) -> None:
    for seed, case in zip(COHORT_SEEDS, cohort, strict=True):
        snfh = case.label == SNFH
        if snfh.any():
            # Oedema belongs to a lesion: nearly all of it is connected to tumour or a cavity
            # (small islands cut off by grey matter or CSF are allowed).
            components = cc3d.connected_components(case.label > 0, connectivity=26)
            with_lesion = np.unique(components[np.isin(case.label, (NETC, ET, RC))])
            assert np.isin(components[snfh], with_lesion).mean() > 0.95, seed


# --------------------------------------------------------------------------- contrasts


def test_mr_contrasts_are_plausible(cohort: list[PhantomCase]) -> None:
    for seed, case in zip(COHORT_SEEDS, cohort, strict=True):
        image, label = case.image, case.label
        normal = (label == 0) & (image[T1N] > 0)
        white_matter_t1c = np.percentile(image[T1C][normal], 90)  # WM is the brightest normal tissue on T1c
        assert image[T1C][label == ET].mean() > white_matter_t1c, seed
        if np.any(label == SNFH):
            assert image[T2F][label == SNFH].mean() > 1.2 * image[T2F][normal].mean(), seed
        if np.any(label == NETC):
            assert image[T1C][label == NETC].mean() < image[T1C][label == ET].mean(), seed
        if np.any(label == RC):
            assert image[T2W][label == RC].mean() > np.percentile(image[T2W][normal], 90), seed
            assert image[T2F][label == RC].mean() < image[T2F][normal].mean(), seed


def test_fluid_is_bright_on_t2_dark_on_t1_and_flair() -> None:
    case = make_case(0, shape=(48, 48, 48))
    image = case.image
    normal = (image[T1N] > 0) & (case.label == 0)
    fluid = normal & (image[T2W] > np.percentile(image[T2W][normal], 95))  # mostly CSF
    assert image[T1N][fluid].mean() < 0.8 * np.median(image[T1N][normal])
    assert image[T2F][fluid].mean() < 0.8 * np.median(image[T2F][normal])


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, r"`seed`.*-1"),
        ({"seed": 1.5}, r"`seed`.*1\.5"),
        ({"seed": True}, r"`seed`.*True"),
        ({"kind": "glioma"}, r"`kind`.*\('brats_mets',\).*'glioma'"),
        ({"shape": (32, 32)}, r"`shape`.*\(32, 32\)"),
        ({"shape": (32, 0, 32)}, r"`shape`.*\(32, 0, 32\)"),
        ({"shape": (32.0, 32, 32)}, r"`shape`.*32\.0"),
        ({"shape": 32}, r"`shape`.*32"),
        ({"spacing": (1.0, 1.0)}, r"`spacing`.*\(1\.0, 1\.0\)"),
        ({"spacing": (1.0, 0.0, 1.0)}, r"`spacing`.*0\.0"),
        ({"spacing": (1.0, -2.0, 1.0)}, r"`spacing`.*-2\.0"),
        ({"spacing": (1.0, float("nan"), 1.0)}, r"`spacing`.*nan"),
        ({"spacing": "1mm"}, r"`spacing`.*1mm"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    arguments = {"seed": 0, "shape": SMALL} | kwargs
    with pytest.raises(ValueError, match=message):
        make_case(**arguments)


def test_kinds_are_listed() -> None:
    assert KINDS == ("brats_mets",)
    assert MODALITIES == ("t1n", "t1c", "t2w", "t2f")
