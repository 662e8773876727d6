"""A run's class probabilities on disk: what moving the operating point needs, at a small cost.

Storage decision: per case one ``<case_id>.probabilities.npz`` (compressed) holding, for each
foreground channel (region in sigmoid mode, class in softmax mode), only the voxels whose
probability is at least ``floor`` (default 0.05): their flat indices (int32) and the probability
quantised to uint8 (``round(255 · p)``, a step of 0.004). Lesion candidates, PR and FROC curves
only ever look at voxels above the lowest operating threshold, so nothing they use is lost, and
a case costs what its lesions cost: a 96³ phantom case with a dozen lesions takes a few tens of
kB, where float16 maps of all voxels would take 7 MB (4 channels × 96³ × 2 bytes) before
compression. Reading gives float32 maps that are 0 below the floor.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from workbench._io import atomic_write

__all__ = ["foreground_probabilities", "load_probabilities", "save_probabilities"]

PROBABILITY_SUFFIX = ".probabilities.npz"
_FORMAT = 1


def foreground_probabilities(logits: torch.Tensor, mode: str) -> np.ndarray:
    """Probabilities of the foreground channels, shape (K, *S) float32, from logits (K', *S).

    sigmoid mode: ``sigmoid(logits)`` of every region; softmax mode: ``softmax(logits)`` without
    the background channel.
    """
    if mode == "sigmoid":
        return torch.sigmoid(logits.float()).cpu().numpy()
    if mode == "softmax":
        return torch.softmax(logits.float(), dim=0)[1:].cpu().numpy()
    raise ValueError(f"Expected `mode` to be one of ('softmax', 'sigmoid'), but got {mode!r}.")


def save_probabilities(
    path: str | os.PathLike[str], probabilities: np.ndarray, channels: tuple[str, ...], *, floor: float = 0.05
) -> None:
    """Write the sparse, quantised probabilities of one case (module docstring), atomically.

    Parameters
    ----------
    path : path
        Should end in :data:`PROBABILITY_SUFFIX`.
    probabilities : ndarray of float, shape (K, *S), values in [0, 1]
    channels : tuple of str
        The K channel names (regions or classes).
    floor : float
        Voxels below it are not stored (read back as 0).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 3 or len(channels) != probabilities.shape[0]:
        raise ValueError(
            f"Expected probabilities (K, *S) with one name per channel, got shape {probabilities.shape} and {channels}."
        )
    if not 0 < floor < 1:
        raise ValueError(f"Expected `floor` in (0, 1), but got {floor!r}.")
    arrays: dict[str, np.ndarray] = {
        "format": np.asarray(_FORMAT),
        "shape": np.asarray(probabilities.shape[1:], dtype=np.int64),
        "channels": np.asarray(channels),
        "floor": np.asarray(floor),
    }
    for k, channel in enumerate(probabilities.reshape(probabilities.shape[0], -1)):
        kept = np.flatnonzero(channel >= floor)
        arrays[f"index_{k}"] = kept.astype(np.int32)
        arrays[f"value_{k}"] = np.round(channel[kept] * 255).astype(np.uint8)
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_probabilities(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read :func:`save_probabilities`' file: (probabilities (K, *S) float32, channel names).

    Raises
    ------
    ValueError
        A file of another format.
    """
    with np.load(Path(path), allow_pickle=False) as data:
        if int(data["format"]) != _FORMAT:
            raise ValueError(f"{path}: probability file format {int(data['format'])}, expected {_FORMAT}.")
        shape = tuple(int(s) for s in data["shape"])
        channels = tuple(str(c) for c in data["channels"])
        out = np.zeros((len(channels), int(np.prod(shape))), dtype=np.float32)
        for k in range(len(channels)):
            out[k, data[f"index_{k}"]] = data[f"value_{k}"].astype(np.float32) / 255
    return out.reshape(len(channels), *shape), channels
