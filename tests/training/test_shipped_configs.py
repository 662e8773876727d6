"""The configs shipped in configs/ are valid training configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.training import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path):
    config = load_config(path)
    assert config.manifest is None or Path(config.manifest).name.endswith(".yaml")


def test_there_is_a_shipped_config():
    assert CONFIGS


SWEEPS = sorted((Path(__file__).resolve().parents[2] / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweep_is_valid(path):
    from workbench.experiments import load_sweep

    spec = load_sweep(path)
    assert spec.notebook.exists() and spec.runs()
