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
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench._io import atomic_write

__all__ = ["CHECKPOINT_KEYS", "load_checkpoint", "rng_state", "save_checkpoint", "seed_everything", "set_rng_state"]

CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "scaler", "rng", "config", "network")
"""The keys of every checkpoint (the module table)."""


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
    ValueError
        If the file is empty, truncated, not a torch file, holds Python objects that
        ``weights_only=True`` refuses to load (they could run code), or is not a dict with the keys
        of the module table: ``Checkpoint runs/a/checkpoints/last.pt is damaged or not a workbench
        checkpoint (...); ...``. The file is never loaded with ``weights_only=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # a foreign pickle, refused below
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise _damaged(path, "not a torch file holding only tensors, numbers, strings, lists and dicts") from None
    except OSError:
        raise
    except Exception as error:  # torch.load's errors for an empty, truncated or foreign file vary by version
        empty = path.stat().st_size == 0
        reason = "the file is empty" if empty else f"truncated or not a torch file: {type(error).__name__}"
        raise _damaged(path, reason) from None
    missing = sorted(set(CHECKPOINT_KEYS) - set(checkpoint)) if isinstance(checkpoint, dict) else None
    if missing is None:
        raise _damaged(path, f"it holds a {type(checkpoint).__name__}, not a dict")
    if missing:
        raise _damaged(path, f"it lacks the keys {missing}")
    return checkpoint


def _damaged(path: Path, reason: str) -> ValueError:
    return ValueError(
        f"Checkpoint {path} is damaged or not a workbench checkpoint ({reason}); delete it and train again "
        "(without --resume), or point to the checkpoints/last.pt a workbench run wrote."
    )
