"""Random lesion cases (hypothesis strategies), shared by the metric tests and the oracle comparisons (tests/oracles)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy import ndimage

from workbench.data.phantoms import make_case

EDITS = ("keep", "shift", "grow", "shrink", "drop", "relabel")


@st.composite
def label_pairs(draw, shape=(16, 18, 20), values=(1, 2, 3, 4), max_lesions=6, max_false_positives=3):
    """``(pred, ref)`` uint8 label maps: boxes of ``values`` in the reference, each copied into
    the prediction shifted, grown, shrunk, relabelled, dropped or kept, plus false-positive boxes.
    Boxes drawn later overwrite earlier ones, so lesions touch, nest, merge and split."""
    ref = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)

    def clipped(corner, size):
        return tuple(slice(max(c, 0), max(min(c + s, n), 0)) for c, s, n in zip(corner, size, shape))

    for _ in range(draw(st.integers(0, max_lesions))):
        corner = [draw(st.integers(0, n - 2)) for n in shape]
        size = [draw(st.integers(1, 6)) for _ in shape]
        value = draw(st.sampled_from(values))
        ref[clipped(corner, size)] = value
        edit = draw(st.sampled_from(EDITS))
        if edit == "drop":
            continue
        if edit == "shift":
            corner = [c + draw(st.integers(-2, 2)) for c in corner]
        elif edit in ("grow", "shrink"):
            step = 1 if edit == "grow" else -1
            corner, size = [c - step for c in corner], [max(s + 2 * step, 1) for s in size]
        elif edit == "relabel":
            value = draw(st.sampled_from(values))
        pred[clipped(corner, size)] = value
    for _ in range(draw(st.integers(0, max_false_positives))):
        corner = [draw(st.integers(0, n - 2)) for n in shape]
        size = [draw(st.integers(1, 3)) for _ in shape]
        pred[clipped(corner, size)] = draw(st.sampled_from(values))
    return pred, ref


def mask_of(shape, *voxels) -> np.ndarray:
    """A bool mask of ``shape``, true at the given voxels (index tuples)."""
    mask = np.zeros(shape, dtype=bool)
    for voxel in voxels:
        mask[voxel] = True
    return mask


def box(shape, corner, size) -> np.ndarray:
    """A bool mask of ``shape``, true in the box at ``corner`` of ``size`` (clipped to the array)."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return mask


@st.composite
def mask_pairs(draw, ndim):
    """``(pred, ref)`` bool masks of ``ndim`` dimensions, 16-32 a side: a reference of 1-6 boxes
    and a prediction that keeps, moves or drops each of them, plus 0-3 false-positive boxes."""
    shape = tuple(draw(st.integers(16, 32)) for _ in range(ndim))

    def random_box(scale=1):
        size = [draw(st.integers(1, 5 * scale)) for _ in shape]
        corner = [draw(st.integers(0, s - 1)) for s in shape]
        return box(shape, corner, size)

    ref = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    for _ in range(draw(st.integers(1, 6))):
        lesion = random_box()
        ref |= lesion
        kept = draw(st.sampled_from(["same", "moved", "missed"]))
        if kept == "same":
            pred |= lesion
        elif kept == "moved":
            pred |= np.roll(lesion, [draw(st.integers(-2, 2)) for _ in shape], axis=tuple(range(ndim)))
    for _ in range(draw(st.integers(0, 3))):  # false positives
        pred |= random_box()
    return pred, ref


def probability_maps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A reference ET mask of a phantom and a blurred, noisy probability map made from it."""
    case = make_case(seed, shape=(40, 40, 40))
    reference = case.label == 3
    rng = np.random.default_rng(seed)
    shifted = np.roll(reference, rng.integers(-1, 2, size=3), axis=(0, 1, 2)).astype(float)
    noise = ndimage.gaussian_filter(rng.random(reference.shape), 1.5)
    probability = np.clip(0.8 * ndimage.gaussian_filter(shifted, 1.0) + 0.6 * (noise - noise.mean()) / noise.std() * 0.2, 0, 1)
    return probability, reference
