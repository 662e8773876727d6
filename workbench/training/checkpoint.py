"""Checkpoints that resume a run exactly, written atomically, loadable with ``weights_only=True``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only (no pickled numpy or
Python objects), so ``torch.load(path, weights_only=True)`` reads it:

=================  ============================================================================
key                content
=================  ============================================================================
``epoch``          number of completed epochs (training resumes at this epoch index)
``model``          ``model.state_dict()``
``optimizer``      ``optimizer.state_dict()``
``scheduler``      ``scheduler.state_dict()``
``scaler``         ``GradScaler.state_dict()`` or ``{}`` without one
``rng``            :func:`rng_state`: Python, numpy, torch CPU and CUDA generator states
``config``         the run's :func:`~workbench.training.config.config_to_dict`
``network``        ``{"in_channels": C, "out_channels": K}``
=================  ============================================================================
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench._io import atomic_write

__all__ = ["load_checkpoint", "rng_state", "save_checkpoint", "seed_everything", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global generators' states as plain lists, ints and tensors.

    Examples
    --------
    >>> state = rng_state(); a = torch.rand(1); set_rng_state(state); bool(torch.rand(1) == a)
    True
    """
    version, internal, gauss = random.getstate()
    legacy = np.random.get_state(legacy=False)
    return {
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(legacy["state"]["key"].astype(np.int64)),
            "pos": int(legacy["state"]["pos"]),
            "has_gauss": int(legacy["has_gauss"]),
            "gauss": float(legacy["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`rng_state` (CUDA states only where CUDA is present)."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].cpu().numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` (the keys of the module table) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    return torch.load(path, map_location=map_location, weights_only=True)
