"""Patch-based 3D U-Net training for every workbench loss (issue 6).

- :func:`train` runs a :class:`TrainConfig` into a run folder (config, run.json, per-epoch
  metrics as Parquet, atomic checkpoints, final predictions) and resumes it exactly;
- :func:`load_config` / :func:`validate` read and check a config (YAML or JSON);
- :func:`predict_manifest` writes a trained run's predictions for a manifest's cases;
- :mod:`~workbench.training.data` holds the patch pipeline with instance maps.

From the shell: ``workbench train --config FILE [--resume]`` and
``workbench predict RUN_DIR --manifest M -o OUT``.
"""

from importlib import import_module
from typing import Any

from workbench.labels import regions_to_labels
from workbench.training.config import ConfigError, TrainConfig, config_to_dict, load_config, validate

# torch, MONAI and the network load when first used, not with the config (``workbench audit`` reads a
# run's config only; importing the training loop cost it ~6 s).
_LAZY = {"RunResult": "loop", "train": "loop", "load_model": "model", "predict_manifest": "predict"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"workbench.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'workbench.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

__all__ = [
    "ConfigError",
    "RunResult",
    "TrainConfig",
    "config_to_dict",
    "load_config",
    "load_model",
    "predict_manifest",
    "regions_to_labels",
    "train",
    "validate",
]
