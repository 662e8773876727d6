"""Label maps on which the challenge presets are scored, shared by tests/metrics and the official
scorer's comparison (tests/oracles/test_oracle_brats.py)."""

from __future__ import annotations

import numpy as np

from workbench.data.perturb import Perturbation, perturb_labels
from workbench.data.phantoms import make_case


def split_lesion(label: np.ndarray, value: int) -> np.ndarray:
    """Cut the largest lesion of ``value`` in two with a plane of background through its centre."""
    out = label.copy()
    zs = np.flatnonzero((label == value).any(axis=(1, 2)))
    if zs.size >= 3:
        out[zs[zs.size // 2]][out[zs[zs.size // 2]] == value] = 0
    return out


def merge_lesions(label: np.ndarray, value: int) -> np.ndarray:
    """Join two lesions of ``value`` with a straight bridge of that label."""
    import cc3d

    ids, n = cc3d.connected_components((label == value).astype(np.uint8), connectivity=26, return_N=True)
    out = label.copy()
    if n >= 2:
        a, b = (np.argwhere(ids == i).mean(axis=0) for i in (1, 2))
        for t in np.linspace(0, 1, 200):
            out[tuple(np.round(a + t * (b - a)).astype(int))] = value
    return out


def perturbed_cases(preset) -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    """(name, prediction, reference, spacing): missed lesions, FPs, splits, merges, empty regions, empty maps."""
    keep = np.array([0, *preset.labels])
    cases = []
    for seed, spacing in ((3, None), (4, (1.0, 1.0, 3.0)), (5, None), (6, (0.8, 1.2, 2.5))):
        phantom = make_case(seed, shape=(48, 48, 48), spacing=spacing)
        ref = np.where(np.isin(phantom.label, keep), phantom.label, 0)
        ref = np.where(np.isin(ref, preset.labels), ref, 0)
        perturbation = Perturbation(drop=0.25, dilate=0.2, erode=0.2, false_positives=3, fp_values=preset.labels)
        pred = perturb_labels(ref, seed=seed, perturbation=perturbation)
        cases.append((f"perturbed-{seed}", pred, ref, phantom.spacing))
    phantom = make_case(7, shape=(48, 48, 48))
    ref = np.where(np.isin(phantom.label, preset.labels), phantom.label, 0)
    main = max(preset.labels, key=lambda v: int((ref == v).sum()))
    cases += [
        ("split", split_lesion(ref, main), ref, phantom.spacing),
        ("merge", merge_lesions(ref, main), ref, phantom.spacing),
        ("region-missing", np.where(ref == main, 0, ref), ref, phantom.spacing),
        ("empty-prediction", np.zeros_like(ref), ref, phantom.spacing),
        ("empty-reference", ref, np.zeros_like(ref), phantom.spacing),
        ("both-empty", np.zeros_like(ref), np.zeros_like(ref), phantom.spacing),
    ]
    return cases


SHAPE = (26, 30, 22)
THRESHOLD_SPACING = (0.64, 1.25, 1.0)  # 0.64 is 0.6399999856948853 in float32: 25 voxels = 19.99999955 mm³


def isolated_voxels(box: tuple[slice, ...], count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``count`` voxels inside ``box``, no two of them 26-adjacent (each one its own component)."""
    chosen: list[tuple[int, ...]] = []
    candidates = np.argwhere(np.ones([s.stop - s.start for s in box], dtype=bool)) + [s.start for s in box]
    for voxel in rng.permutation(candidates):
        if all(np.max(np.abs(voxel - np.array(c))) >= 2 for c in chosen):
            chosen.append(tuple(int(v) for v in voxel))
        if len(chosen) == count:
            break
    return chosen


def speckle_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
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
        for voxel in isolated_voxels(box, int(rng.integers(2, 5)), rng):
            pred[voxel] = value
    twins = [(slice(20, 25), slice(4, 8), slice(3, 7)), (slice(20, 25), slice(9, 13), slice(3, 7))]
    for box in twins:
        ref[box] = 3
        for voxel in isolated_voxels(box, 2, rng):
            pred[voxel] = 3
    pred[22, 7:10, 5] = 3     # the bridge: one voxel in each twin, one in the gap
    pred[8, 26, 20] = 2       # a false positive (edema: WT only)
    return pred, ref


def threshold_case() -> tuple[np.ndarray, np.ndarray]:
    """(pred, ref): a 25-voxel lesion (19.99999955 mm³ as the official reader measures it), found
    exactly; a large lesion found in part; a small false positive."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[3:8, 3:8, 4] = 3
    ref[14:20, 16:22, 10:15] = 3
    pred = ref.copy()
    pred[14:17, 16:22, 10:15] = 0
    pred[2:4, 24:26, 18] = 3
    return pred, ref


def tie_cases() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    # seeds 114 and 124: cases where solving each group of overlapping lesions on its own (the
    # workbench's own matching) breaks a tie otherwise than the one global assignment
    cases = [(f"speckles-{seed}", *speckle_case(seed), (1.0, 1.0, 1.0)) for seed in (0, 1, 114, 124)]
    cases.append(("speckles-anisotropic", *speckle_case(4), THRESHOLD_SPACING))
    cases.append(("threshold", *threshold_case(), THRESHOLD_SPACING))
    return cases
