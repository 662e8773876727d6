"""Patch-based 3D U-Net training for every workbench loss (issue 6).

- :func:`train` runs a :class:`TrainConfig` into a run folder (config, run.json, per-epoch
  metrics as Parquet, atomic checkpoints, final predictions) and resumes it exactly;
- :func:`load_config` / :func:`validate` read and check a config (YAML or JSON);
- :func:`predict_manifest` writes a trained run's predictions for a manifest's cases;
- :mod:`~workbench.training.data` holds the patch pipeline with instance maps.

From the shell: ``workbench train --config FILE [--resume]`` and
``workbench predict RUN_DIR --manifest M -o OUT``.
"""

from workbench.labels import regions_to_labels
from workbench.training.config import ConfigError, TrainConfig, config_to_dict, load_config, validate
from workbench.training.loop import RunResult, train
from workbench.training.model import load_model
from workbench.training.predict import predict_manifest

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
