"""TrainConfig: defaults, validation messages that name the field, YAML/JSON files, the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

from workbench.cli import main
from workbench.training import ConfigError, TrainConfig, config_to_dict, load_config, validate
from workbench.training.config import momentum_of

TINY = {"patch_size": [16, 16, 16], "filters": [4, 8, 16]}


def test_defaults_are_nnunet_like():
    config = validate({})
    assert (config.optimizer, config.learning_rate, momentum_of(config), config.poly_exponent) == ("sgd", 0.01, 0.99, 0.9)
    assert momentum_of(validate({"optimizer": "adamw"})) == 0.9 and config.momentum is None
    assert config.network == "dynunet" and not config.deep_supervision
    assert config.patch_size == (128, 128, 128) and config.batch_size == 2
    assert config.precision == "auto" and config.grad_clip == 12.0


def test_lists_become_tuples_and_round_trip():
    config = validate({**TINY, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "loss": "blob"})
    assert config.patch_size == (16, 16, 16) and config.strides[1] == (2, 2, 2)
    assert validate(config_to_dict(config)) == config


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"lr": 0.1}, r"Unknown config field 'lr' \(did you mean 'learning_rate'\?\)"),
        ({"epoch": 3}, r"Unknown config field 'epoch' \(did you mean 'epochs'\?\)"),
        ({"zzz": 3}, r"Unknown config field 'zzz'; known fields: \['out_dir'"),
        ({"epochs": 1.5}, r"`epochs` to be an integer, but got 1.5 \(float\)"),
        ({"epochs": True}, r"`epochs` to be an integer"),
        ({"learning_rate": "fast"}, r"`learning_rate` to be a number, but got 'fast' \(str\)"),
        ({"patch_size": "32"}, r"`patch_size` to be a list"),
        ({"patch_size": [32, "a", 32]}, r"`patch_size\[1\]` to be an integer"),
        ({"deterministic": "yes"}, r"`deterministic` to be true or false"),
        ({"optimizer": "adam"}, r"`optimizer` to be one of \('sgd', 'adamw'\), but got 'adam'"),
        ({"loss": "dice"}, r"`loss` to be one of \('dc_ce'"),
        ({"epochs": 0}, r"`epochs` to be positive"),
        ({"momentum": 1.5}, r"`momentum` to be in \[0, 1\]"),
        ({"schema": "nope"}, r"`schema`: Unknown label schema 'nope'"),
        ({"patch_size": [32, 32]}, r"`patch_size` to be 3 positive sizes"),
        ({"patch_size": [18, 18, 18], "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]]}, r"axis 0 of size 18 is not divisible by"),
        ({"filters": [4, 8]}, r"DynUNet needs at least 3 levels"),
        ({"network": "basicunet", "filters": [4, 8, 16]}, r"BasicUNet takes exactly 6"),
        ({"loss": "dc_ce", "loss_options": {"beta": 2.0}}, r"`loss_options` \(loss 'dc_ce'\)"),
        ({"loss": "blob", "loss_options": {"wrong": 1}}, r"`loss_options` \(loss 'blob'\).*unexpected options \['wrong'\]"),
        ({"loss_options": {"mode": "softmax"}}, r"set \['mode'\] through the top-level fields"),
        ({"device": "cpu", "precision": "bf16"}, r"`precision`: 'bf16' needs device 'cuda'"),
        ({"connectivity": 8}, r"`connectivity` to be one of \(6, 18, 26\)"),
    ],
)
def test_invalid_fields_are_named(fields, match):
    with pytest.raises(ConfigError, match=match) as info:
        validate({**TINY, **fields})
    last = list(fields)[-1]  # the field at fault is the last one given; strides that do not fit blame the patch
    assert info.value.field == ("patch_size" if last == "strides" else last)


def test_yaml_and_json_files(tmp_path):
    document = {**TINY, "loss": "iwl_cc", "loss_options": {"max_weight": 50.0}, "mode": "softmax"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "c.json").write_text(json.dumps(document))
    from_yaml = load_config(tmp_path / "c.yaml")
    assert from_yaml == load_config(tmp_path / "c.json")
    assert isinstance(from_yaml, TrainConfig) and from_yaml.loss_options == {"max_weight": 50.0}
    assert load_config(tmp_path / "c.yaml", epochs=3).epochs == 3


def test_file_that_is_not_a_mapping(tmp_path):
    (tmp_path / "c.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.json").write_text("{oops")
    with pytest.raises(ConfigError, match="Cannot parse config"):
        load_config(tmp_path / "d.json")


def test_cli_reports_the_bad_field(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**TINY, "batchsize": 4}))
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 1
    assert "Unknown config field 'batchsize' (did you mean 'batch_size'?)" in capsys.readouterr().err
