"""Issue 21, training side: wrong options refused, damaged checkpoints and run configs named, padding not silent."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch

from workbench.data.manifest import CaseEntry, Manifest
from workbench.labels import BINARY
from workbench.training.checkpoint import CHECKPOINT_KEYS, load_checkpoint, save_checkpoint
from workbench.training.config import ConfigError, check_case_ids, load_config, read_saved_config, validate
from workbench.training.data import CaseArrays, PatchDataset, PatchSampling
from workbench.training.model import load_model

SMALL = {"patch_size": [16, 16, 16], "filters": [4, 8, 16]}


# --- NaN / inf options ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["learning_rate", "weight_decay", "grad_clip", "poly_exponent", "momentum"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_naming_the_field(name, value):
    with pytest.raises(ConfigError, match=rf"`{name}` to be a finite number, but got -?(nan|inf)") as info:
        validate({**SMALL, name: value})
    assert info.value.field == name


@pytest.mark.parametrize(("text", "name"), [("learning_rate: .nan", "learning_rate"), ("grad_clip: .inf", "grad_clip")])
def test_non_finite_numbers_in_a_yaml_file_are_refused(tmp_path, text, name):
    path = tmp_path / "train.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"`{name}` to be a finite number"):
        load_config(path, **SMALL)


def test_a_non_finite_list_item_names_its_field():
    with pytest.raises(ConfigError, match=r"`val_thresholds\[1\]` to be a finite number, but got nan") as info:
        validate({**SMALL, "val_thresholds": [0.5, float("nan")]})
    assert info.value.field == "val_thresholds"


# --- patch larger than the case ---------------------------------------------------------------


def _case(case_id: str, shape: tuple[int, int, int]) -> CaseArrays:
    label = np.zeros(shape, dtype=np.uint8)
    label[1:3, 1:3, 1:3] = 1
    return CaseArrays(case_id, np.ones((1, *shape), dtype=np.float32), label, (1.0, 1.0, 1.0), np.eye(4))


def test_a_patch_larger_than_a_case_warns_naming_the_case_its_shape_and_the_patch():
    cases = [_case("big", (16, 16, 16)), _case("flat", (16, 16, 6))]
    with pytest.warns(UserWarning, match=r"`patch_size` \(16, 16, 16\) is larger than 1 of 2 cases .*'flat' of shape \(16, 16, 6\)"):
        PatchDataset(cases, schema="binary", mode="softmax", sampling=PatchSampling((16, 16, 16)), samples_per_epoch=1, seed=0)


def test_a_patch_that_fits_every_case_does_not_warn(recwarn):
    PatchDataset(
        [_case("big", (16, 16, 16))], schema="binary", mode="softmax",
        sampling=PatchSampling((16, 16, 8)), samples_per_epoch=1, seed=0,
    )
    assert not [w for w in recwarn if "patch_size" in str(w.message)]


# --- damaged checkpoints ----------------------------------------------------------------------


def _checkpoint() -> dict:
    return {key: {} for key in CHECKPOINT_KEYS} | {"epoch": 1, "model": {"weight": torch.zeros(512)}}


def _refused(path) -> None:
    torch.save({**_checkpoint(), "config": np.zeros(3)}, path)  # a numpy array: weights_only refuses it


def _truncated(path) -> None:
    save_checkpoint(path, _checkpoint())
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (_truncated, r"truncated or not a torch file"),
        (lambda path: path.write_bytes(b""), r"the file is empty"),
        (lambda path: path.write_text("not a checkpoint"), r"not a torch file holding only tensors"),
        (_refused, r"not a torch file holding only tensors, numbers, strings, lists and dicts"),
        (lambda path: path.write_bytes(pickle.dumps({"epoch": 1})), r"not a torch file holding only tensors"),
        (lambda path: torch.save(torch.zeros(3), path), r"holds a Tensor, not a dict"),
        (lambda path: torch.save({"epoch": 3}, path), r"lacks the keys \['config', 'model'"),
    ],
)
def test_a_damaged_checkpoint_gives_one_error_naming_the_file(tmp_path, recwarn, write, reason):
    path = tmp_path / "last.pt"
    write(path)
    with pytest.raises(ValueError, match=r"Checkpoint .*last\.pt is damaged or not a workbench checkpoint") as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    assert re.search(reason, message)
    assert "weights_only" not in message and "trust" not in message
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]


def test_a_good_checkpoint_still_loads(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _checkpoint())
    assert load_checkpoint(path)["epoch"] == 1


def test_load_model_names_a_checkpoint_whose_weights_do_not_fit(tmp_path):
    config = validate(SMALL)
    from workbench.training.config import config_to_dict

    save_checkpoint(
        tmp_path / "checkpoints" / "last.pt",
        _checkpoint() | {"config": config_to_dict(config), "network": {"in_channels": 1, "out_channels": 2}},
    )
    with pytest.raises(ValueError, match=r"Checkpoint .*last\.pt: its weights do not fit the network its config describes"):
        load_model(tmp_path)


# --- a run's config.yaml on resume ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("epochs: [1, 2\n", r"is damaged \("),
        ("- just\n- a list\n", r"is not a mapping of field: value \(got list\)"),
        (b"\xff\xfe\x00binary", r"is damaged \("),
    ],
)
def test_a_malformed_saved_config_is_named(tmp_path, text, reason):
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=rf"Cannot resume: the run's config .*config\.yaml {reason}.*train into a new out_dir"):
        read_saved_config(path)


def test_a_missing_saved_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"Cannot resume: the run's config .*config\.yaml is missing"):
        read_saved_config(tmp_path / "config.yaml")


def test_a_saved_config_reads_back(tmp_path):
    (tmp_path / "config.yaml").write_text("epochs: 3\nloss: blob\n", encoding="utf-8")
    assert read_saved_config(tmp_path / "config.yaml") == {"epochs": 3, "loss": "blob"}


# --- case ids the manifest lacks ----------------------------------------------------------------


def _manifest() -> Manifest:
    cases = [CaseEntry(id=f"case{i:02d}", images={"t1": f"c{i}.nii.gz"}, label=f"l{i}.nii.gz", split="train") for i in range(4)]
    return Manifest(name="tiny", schema=BINARY, modalities=("t1",), cases=cases, root=".")


@pytest.mark.parametrize("name", ["train_cases", "val_cases", "predict_cases"])
def test_an_unknown_case_id_names_the_field_the_id_and_the_manifest(name):
    config = validate({**SMALL, name: ["case01", "case99"]})
    with pytest.raises(ConfigError, match=rf"Config field `{name}`: manifest 'tiny' has no case 'case99' \(closest ids: .*'case0"):
        check_case_ids(config, _manifest())


def test_known_case_ids_pass():
    check_case_ids(validate({**SMALL, "train_cases": ["case00"], "val_cases": ["case01"], "predict_cases": []}), _manifest())
