"""Random multi-class cases for the loss tests."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st


@st.composite
def loss_cases(draw, modes=("softmax", "sigmoid")):
    """(mode, logits float64, target, ignore_index) with 0 to ~50 components per class.

    Targets mix sparse single voxels (many components, some touching, some on the border) with
    boxes; some classes are left empty; softmax targets may carry an ignore label.
    """
    mode = draw(st.sampled_from(modes))
    ndim = draw(st.sampled_from([2, 3]))
    batch = draw(st.integers(1, 2))
    channels = draw(st.integers(1, 3))
    side = draw(st.integers(4, 12 if ndim == 3 else 24))
    shape = (side,) * ndim
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    volumes = []
    for _ in range(batch if mode == "softmax" else batch * channels):
        labels = np.zeros(shape, dtype=np.int64)
        for value in range(1, (channels if mode == "softmax" else 1) + 1):
            if rng.random() < 0.2:
                continue  # an empty class
            density = rng.choice([0.01, 0.05, 0.15])
            labels[(rng.random(shape) < density) & (labels == 0)] = value
            for _ in range(rng.integers(0, 3)):
                start = rng.integers(0, side, ndim)
                stop = np.minimum(start + rng.integers(1, 4, ndim), side)
                labels[tuple(slice(a, b) for a, b in zip(start, stop))] = value
        volumes.append(labels)
    ignore_index = None
    if mode == "softmax":
        target = torch.from_numpy(np.stack(volumes))
        if draw(st.booleans()):
            ignore_index = 255
            target[torch.from_numpy(rng.random(target.shape) < 0.05)] = ignore_index
        logits = torch.from_numpy(rng.normal(0, 3, (batch, channels + 1, *shape)))
    else:
        target = torch.from_numpy(np.stack(volumes).reshape(batch, channels, *shape).astype(np.float64))
        logits = torch.from_numpy(rng.normal(0, 3, (batch, channels, *shape)))
    return mode, logits, target, ignore_index
