"""The training data pipeline: z-scoring, deterministic patch draws, augmentation, instance maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.data.cohort import make_cohort
from workbench.data.manifest import load_case, load_manifest
from workbench.data.phantoms import make_case
from workbench.instances import instance_maps
from workbench.labels import BRATS_METS_2025
from workbench.training.data import (
    CaseArrays,
    PatchDataset,
    PatchSampling,
    collate_patches,
    load_training_cases,
    patch_loader,
    zscore,
)

SHAPE = (32, 32, 32)
PATCH = (16, 16, 16)


@pytest.fixture(scope="module")
def phantom_cases() -> list[CaseArrays]:
    cases = []
    for seed in (0, 4):  # seed 4 has a resection cavity (label 4)
        case = make_case(seed, shape=SHAPE)
        cases.append(CaseArrays(f"p{seed}", zscore(case.image), case.label, case.spacing, np.eye(4)))
    return cases


def dataset(cases, *, mode="softmax", samples=8, seed=0, **options) -> PatchDataset:
    sampling_keys = ("foreground_fraction", "class_balanced", "flips", "intensity")
    chosen = {k: options.pop(k) for k in sampling_keys if k in options}
    sampling = PatchSampling(options.pop("patch_size", PATCH), **chosen)
    return PatchDataset(
        cases, schema="brats_mets_2025", mode=mode, sampling=sampling, samples_per_epoch=samples, seed=seed, **options
    )


def assert_samples_equal(a: dict, b: dict) -> None:
    assert a["case_id"] == b["case_id"]
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    torch.testing.assert_close(a["target"], b["target"], rtol=0, atol=0)
    if a["instances"] is None:
        assert b["instances"] is None
        return
    np.testing.assert_array_equal(a["instances"].components, b["instances"].components)
    np.testing.assert_array_equal(a["instances"].counts, b["instances"].counts)
    if a["instances"].cells is not None:
        np.testing.assert_array_equal(a["instances"].cells, b["instances"].cells)


# --------------------------------------------------------------------------- zscore


def test_zscore_by_hand():
    image = np.zeros((2, 1, 2, 3), dtype=np.float32)
    image[0, 0, 0, :2] = [1.0, 3.0]  # channel 0 is 0 at the other mask voxel
    image[1, 0, 1, 0] = 5.0
    # Default mask: any channel non-zero -> voxels (0,0), (0,1), (1,0).
    out = zscore(image)
    assert out.dtype == np.float32
    values0 = np.array([1.0, 3.0, 0.0])
    expected0 = (values0 - values0.mean()) / values0.std()
    np.testing.assert_allclose(out[0, 0, 0, :2], expected0[:2], rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1, 0], expected0[2], rtol=1e-6)
    values1 = np.array([0.0, 0.0, 5.0])
    np.testing.assert_allclose(out[1, 0, 1, 0], (5.0 - values1.mean()) / values1.std(), rtol=1e-6)
    outside = np.ones((1, 2, 3), bool)
    outside[0, 0, :2] = outside[0, 1, 0] = False
    assert np.all(out[:, outside] == 0)


def test_zscore_explicit_mask_and_constant_channel():
    image = np.stack([np.full((4, 4), 7.0), np.arange(16.0).reshape(4, 4)])
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    out = zscore(image, mask)
    assert np.isfinite(out).all()
    assert np.all(out[0] == 0)  # constant channel: centred, not NaN
    inside = out[1][mask]
    np.testing.assert_allclose([inside.mean(), inside.std()], [0.0, 1.0], atol=1e-6)
    assert np.all(out[1][~mask] == 0)


def test_zscore_errors_and_empty_mask():
    with pytest.raises(ValueError, match="`mask` of shape"):
        zscore(np.ones((1, 4, 4)), np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="shape \\(C, \\*S\\)"):
        zscore(np.ones(4))
    with pytest.raises(ValueError, match="finite values"):
        zscore(np.array([[[1.0, np.nan]]]))
    with pytest.warns(UserWarning, match="mask is empty"):
        assert not zscore(np.zeros((2, 3, 3))).any()


def test_load_training_cases_from_a_cohort(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    manifest = load_manifest(make_cohort(3, 5, tmp_path / "cohort", shape=(16, 16, 16)))
    cases = load_training_cases(manifest)  # the train split
    assert [c.case_id for c in cases] == [c.id for c in manifest.split("train")]
    chosen = load_training_cases(manifest, ["phantom-002", "phantom-000"])
    assert [c.case_id for c in chosen] == ["phantom-002", "phantom-000"]
    case, raw = chosen[0], load_case(manifest, "phantom-002")
    assert case.image.dtype == np.float32 and case.label.dtype == np.uint8
    np.testing.assert_array_equal(case.label, raw.label)
    np.testing.assert_array_equal(case.image, zscore(raw.image))
    mask = np.any(raw.image != 0, axis=0)
    np.testing.assert_allclose(case.image[:, mask].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(case.image[:, mask].std(axis=1), 1, atol=1e-4)
    assert case.spacing == pytest.approx(raw.spacing) and case.affine.shape == (4, 4)
    with pytest.raises(KeyError, match="no case"):
        load_training_cases(manifest, ["phantom-999"])


# --------------------------------------------------------------------------- determinism


def test_same_seed_epoch_index_gives_identical_samples(phantom_cases):
    a = dataset(phantom_cases, mode="sigmoid", voronoi=True, class_balanced=True)
    b = dataset(phantom_cases, mode="sigmoid", voronoi=True, class_balanced=True)
    a.set_epoch(3)
    b.set_epoch(3)
    for index in (5, 0, 7, 5):  # any order, repeated
        assert_samples_equal(a[index], b[index])
    b.set_epoch(4)
    assert any(not torch.equal(a[i]["image"], b[i]["image"]) for i in range(4))
    c = dataset(phantom_cases, mode="sigmoid", seed=1, voronoi=True, class_balanced=True)
    c.set_epoch(3)
    assert any(not torch.equal(a[i]["image"], c[i]["image"]) for i in range(4))


def test_loader_batches_do_not_depend_on_workers(phantom_cases):
    data = dataset(phantom_cases, samples=6, voronoi=True, foreground_fraction=0.5)
    data.set_epoch(2)
    torch_state = torch.random.get_rng_state()
    serial = list(patch_loader(data, batch_size=4, workers=0))
    parallel = list(patch_loader(data, batch_size=4, workers=2))
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # the global torch RNG is untouched
    assert [len(b["case_ids"]) for b in serial] == [4, 2]  # drop_last=False
    for one, two in zip(serial, parallel, strict=True):
        assert one["case_ids"] == two["case_ids"]
        torch.testing.assert_close(one["image"], two["image"], rtol=0, atol=0)
        torch.testing.assert_close(one["target"], two["target"], rtol=0, atol=0)
        np.testing.assert_array_equal(one["instances"].components, two["instances"].components)
        np.testing.assert_array_equal(one["instances"].cells, two["instances"].cells)
    # The loader shows the dataset's samples, in index order, for the current epoch.
    assert_samples_equal({**data[5], "instances": None}, {
        "image": serial[1]["image"][1], "target": serial[1]["target"][1], "instances": None,
        "case_id": serial[1]["case_ids"][1],
    })
    data.set_epoch(3)
    other = next(iter(patch_loader(data, batch_size=4, workers=2)))
    assert not torch.equal(other["image"], serial[0]["image"])


# --------------------------------------------------------------------------- sampling


def contains_foreground(sample) -> bool:
    return bool(sample["target"].any())


def test_foreground_fraction_is_met(phantom_cases):
    # A sparse case (uniform 8³ patches rarely hit its lesions) and a lesion-rich phantom.
    label = np.zeros((40, 40, 40), dtype=np.uint8)
    label[5:7, 5:7, 5:7] = 3
    label[30:33, 20:22, 10:12] = 2
    sparse = CaseArrays("sparse", np.ones((1, 40, 40, 40), np.float32), label, (1.0, 1.0, 1.0), np.eye(4))
    draws = 300
    for cases in ([sparse], [phantom_cases[0]]):
        shares = {}
        for fraction in (0.0, 1 / 3, 0.8, 1.0):
            data = dataset(cases, samples=draws, instances=False, patch_size=(8, 8, 8), foreground_fraction=fraction)
            shares[fraction] = np.mean([contains_foreground(data[i]) for i in range(draws)])
            assert shares[fraction] >= fraction
        assert shares[1.0] == 1.0
        if cases[0] is sparse:
            assert shares[0.0] < 0.1
            assert shares[1 / 3] < 1 / 3 + 0.1  # the forced share, plus a few random hits
    # Stratified: every 3 consecutive samples hold exactly one forced foreground patch.
    data = dataset([sparse], samples=30, instances=False, patch_size=(8, 8, 8), foreground_fraction=1 / 3,
                   flips=False)
    forced = np.array([contains_foreground(data[i]) for i in range(30)])
    assert forced[0::3].all()


def test_class_balanced_sampling_finds_the_rare_class():
    label = np.zeros(SHAPE, dtype=np.uint8)
    label[2:14, 2:14, 2:14] = 2  # large oedema
    label[26:28, 26:28, 26:28] = 4  # tiny resection cavity, far away
    image = np.ones((1, *SHAPE), dtype=np.float32)
    case = CaseArrays("rare", image, label, (1.0, 1.0, 1.0), np.eye(4))
    draws = 200
    counts = {}
    for balanced in (False, True):
        data = dataset([case], samples=draws, instances=False, patch_size=(8, 8, 8), foreground_fraction=1.0,
                       class_balanced=balanced, mode="sigmoid")
        counts[balanced] = sum(bool(data[i]["target"][3].any()) for i in range(draws))  # region RC
    assert counts[False] <= 0.05 * draws
    assert counts[True] >= 0.35 * draws
    assert counts[True] >= 10 * max(counts[False], 1)


def test_flips_move_image_and_target_together():
    # Channel 0 repeats the label, channel 1 a unique ramp: each patch must keep them aligned.
    label = np.zeros(SHAPE, dtype=np.uint8)
    rng = np.random.default_rng(0)
    label[rng.random(SHAPE) < 0.2] = 2
    label[rng.random(SHAPE) < 0.05] = 3
    ramp = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    case = CaseArrays("c", np.stack([label.astype(np.float32), ramp]), label, (1.0, 1.0, 1.0), np.eye(4))
    data = dataset([case], samples=24, instances=False, intensity=False)
    flipped_axes = np.zeros(3, bool)
    for i in range(len(data)):
        sample = data[i]
        target, image = sample["target"].numpy(), sample["image"].numpy()
        classes = BRATS_METS_2025.to_class_map(image[0].astype(np.uint8))
        np.testing.assert_array_equal(target, classes)  # target flipped with the image
        assert set(np.unique(target)) <= {0, 2, 3}  # class indices of labels 2 and 3 (softmax)
        for axis in range(3):
            flipped_axes[axis] |= bool(np.all(np.diff(image[1], axis=axis) < 0))
    assert flipped_axes.all()
    unflipped = dataset([case], samples=24, instances=False, intensity=False, flips=False)
    assert all(np.all(np.diff(unflipped[i]["image"].numpy()[1], axis=a) > 0) for i in range(6) for a in range(3))


def test_intensity_changes_only_the_image(phantom_cases):
    plain = dataset(phantom_cases, samples=12, mode="sigmoid", instances=False, intensity=False)
    jittered = dataset(phantom_cases, samples=12, mode="sigmoid", instances=False, intensity=True)
    for i in range(len(plain)):
        a, b = plain[i], jittered[i]
        torch.testing.assert_close(a["target"], b["target"], rtol=0, atol=0)  # same patch, same labels
        x, y = a["image"].numpy(), b["image"].numpy()
        for c in range(x.shape[0]):
            slope, intercept = np.polyfit(x[c].ravel(), y[c].ravel(), 1)
            assert 0.9 <= slope <= 1.1 and -0.1 <= intercept <= 0.1
            np.testing.assert_allclose(y[c], slope * x[c] + intercept, atol=1e-4)
        assert not np.array_equal(x, y)


@pytest.mark.parametrize("mode", ["softmax", "sigmoid"])
def test_batch_instances_equal_maps_of_the_collated_target(phantom_cases, mode):
    data = dataset(phantom_cases, samples=5, mode=mode, voronoi=True, foreground_fraction=1.0, connectivity=18)
    batch = next(iter(patch_loader(data, batch_size=5, workers=0)))
    target = batch["target"]
    assert batch["image"].shape == (5, 4, *PATCH) and batch["image"].dtype == torch.float32
    if mode == "softmax":
        assert target.shape == (5, *PATCH) and target.dtype == torch.int64
        expected = instance_maps(target.numpy(), "softmax", 18, phantom_cases[0].spacing, True, num_classes=4)
    else:
        assert target.shape == (5, 4, *PATCH) and target.dtype == torch.float32
        expected = instance_maps(target.numpy(), "sigmoid", 18, phantom_cases[0].spacing, True)
    got = batch["instances"]
    np.testing.assert_array_equal(got.components, expected.components)
    np.testing.assert_array_equal(got.cells, expected.cells)
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert got.counts.sum() > 0
    assert [list(map(list, s)) for s in got.sizes] == [list(map(list, s)) for s in expected.sizes]
    assert (got.spacing, got.connectivity, got.mode) == (expected.spacing, 18, mode)
    without = dataset(phantom_cases, samples=2, instances=False)
    assert collate_patches([without[0], without[1]])["instances"] is None


def test_case_smaller_than_the_patch_is_padded():
    label = np.zeros((10, 12, 14), dtype=np.uint8)
    label[3:6, 4:8, 5:9] = 3
    image = np.ones((2, 10, 12, 14), dtype=np.float32)
    case = CaseArrays("small", image, label, (1.0, 1.0, 2.0), np.eye(4))
    with pytest.warns(UserWarning, match="zero-padded"):
        data = dataset([case], samples=4, flips=False, intensity=False)
    for i in range(len(data)):
        sample = data[i]
        assert sample["image"].shape == (2, *PATCH) and sample["target"].shape == PATCH
        # The padded case is exactly one patch: everything is inside, padding is 0.
        assert float(sample["image"].sum()) == image.sum()
        assert int((sample["target"] == 3).sum()) == int((label == 3).sum())
        np.testing.assert_array_equal(sample["image"][0, 3:13, 2:14, 1:15].numpy(), 1.0)
        assert sample["instances"].counts.tolist() == [[0, 0, 1, 0]]
        assert sample["instances"].spacing == (1.0, 1.0, 2.0)


def test_bad_sampling_config():
    with pytest.raises(ValueError, match="`patch_size` to be 3 positive integers"):
        PatchSampling((16, 16))
    with pytest.raises(ValueError, match="`patch_size` to be 3 positive integers"):
        PatchSampling((16, 0, 16))
    with pytest.raises(ValueError, match="`patch_size` to be 3 positive integers"):
        PatchSampling((16, 16.0, 16))
    with pytest.raises(ValueError, match=r"`foreground_fraction` to be in \[0, 1\], but got 1.5"):
        PatchSampling(PATCH, foreground_fraction=1.5)
    with pytest.raises(TypeError, match="`foreground_fraction` to be a number"):
        PatchSampling(PATCH, foreground_fraction="half")
    with pytest.raises(TypeError, match="`class_balanced` to be a bool"):
        PatchSampling(PATCH, class_balanced="yes")
    assert PatchSampling([8, 8, 8]).patch_size == (8, 8, 8)


def test_bad_dataset_arguments(phantom_cases):
    with pytest.raises(ValueError, match="`samples_per_epoch` to be a positive integer"):
        dataset(phantom_cases, samples=0)
    with pytest.raises(ValueError, match="`seed` to be a non-negative integer"):
        dataset(phantom_cases, seed=-1)
    with pytest.raises(ValueError, match="`mode` to be one of"):
        dataset(phantom_cases, mode="softmaxx")
    with pytest.raises(ValueError, match="`connectivity` to be one of"):
        dataset(phantom_cases, connectivity=8)
    with pytest.raises(ValueError, match="at least one case"):
        dataset([])
    data = dataset(phantom_cases, samples=3)
    with pytest.raises(IndexError, match="out of range"):
        data[3]
    with pytest.raises(ValueError, match="`epoch` to be a non-negative integer"):
        data.set_epoch(-1)
    with pytest.raises(ValueError, match="`batch_size` to be a positive integer"):
        patch_loader(data, batch_size=0, workers=0)
