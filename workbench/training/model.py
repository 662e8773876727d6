"""A run's network and where it runs: built from its config, loaded from its checkpoint.

Shared by the training loop and by prediction (``workbench predict``), so neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from workbench.training.checkpoint import load_checkpoint
from workbench.training.config import ConfigError, TrainConfig, validate
from workbench.training.network import build_network

__all__ = ["configured_network", "load_model", "resolve_device"]


def configured_network(config: TrainConfig, in_channels: int, out_channels: int) -> torch.nn.Module:
    """The network ``config`` describes, for ``in_channels`` image channels and ``out_channels`` logits."""
    return build_network(
        config.network, in_channels=in_channels, out_channels=out_channels, patch_size=config.patch_size,
        filters=config.filters, strides=config.strides, deep_supervision=config.deep_supervision,
    )


def resolve_device(config: TrainConfig, device: str | None = None) -> tuple[torch.device, torch.dtype | None]:
    """The device and autocast dtype of a run (None: full precision).

    ``device`` overrides ``config.device``. ``precision: auto`` gives bf16 on CUDA where
    supported, else fp16 (with a GradScaler in training), and fp32 on the CPU.

    Raises
    ------
    ConfigError
        CUDA asked for but unavailable, or bf16 / fp16 on the CPU.
    """
    choice = device or config.device
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Config field `device`: 'cuda' was asked for, but no CUDA device is available.", field="device")
    if choice not in ("cpu", "cuda"):
        raise ConfigError(f"Expected `device` to be one of ('auto', 'cpu', 'cuda'), but got {choice!r}.", field="device")
    precision = config.precision
    if choice == "cpu":
        if precision in ("bf16", "fp16"):
            raise ConfigError(
                f"Config field `precision`: {precision!r} needs CUDA; the CPU trains in fp32.", field="precision"
            )
        return torch.device("cpu"), None
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.device("cuda"), dtype


def load_model(run_dir: str | os.PathLike[str]) -> tuple[torch.nn.Module, TrainConfig]:
    """The trained network of a run folder (weights of ``checkpoints/last.pt``, on the CPU) and its config.

    Raises
    ------
    FileNotFoundError
        If the run folder has no checkpoint.
    ValueError
        If the checkpoint is damaged (:func:`~workbench.training.checkpoint.load_checkpoint`), its
        config does not validate, or its weights do not fit the network that config describes; the
        message names the checkpoint.
    """
    path = Path(run_dir) / "checkpoints" / "last.pt"
    checkpoint = load_checkpoint(path)
    try:
        config = validate(checkpoint["config"])
    except ConfigError as error:
        raise ValueError(f"Checkpoint {path}: its saved config is not valid ({error}).") from None
    network = checkpoint["network"]
    model = configured_network(config, network["in_channels"], network["out_channels"])
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        reason = " ".join(str(error).split())[:300]  # torch lists every missing key and shape; the start tells which
        raise ValueError(f"Checkpoint {path}: its weights do not fit the network its config describes ({reason}).") from None
    return model, config
