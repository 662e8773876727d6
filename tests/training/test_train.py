"""The training loop on a tiny DynUNet and 32³ phantoms, on the CPU.

- every loss overfits one fixed batch (loss goes down in 20 steps, gradients finite throughout);
- a run killed after an epoch and resumed ends with the weights of an uninterrupted run;
- the run folder: config, run.json, metrics.parquet, checkpoints (``weights_only=True``),
  predictions in the reference geometry.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.data.cohort import make_cohort
from workbench.data.manifest import load_manifest
from workbench.data.nifti import load_label, read_header
from workbench.losses import LOSS_NAMES
from workbench.training import ConfigError, train, validate
from workbench.training import loop
from workbench.training.checkpoint import seed_everything
from workbench.training.data import collate_patches


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """4 phantom cases of 32³: 2 train, 1 val, 1 test."""
    return make_cohort(4, 5, tmp_path_factory.mktemp("cohort"), shape=(32, 32, 32))


def tiny(manifest, out_dir, **fields):
    base = {
        "manifest": str(manifest), "out_dir": str(out_dir), "filters": [4, 8, 16], "patch_size": [16, 16, 16],
        "batch_size": 2, "epochs": 2, "steps_per_epoch": 2, "workers": 0, "progress": False,
        "deterministic": True, "val_cases": [], "predict_final": False,
    }
    return validate({**base, **fields})


@pytest.mark.parametrize("mode", ["sigmoid", "softmax"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_every_loss_overfits_one_batch(cohort, tmp_path, loss, mode):
    config = tiny(cohort, tmp_path, loss=loss, mode=mode, foreground_fraction=1.0)
    seed_everything(0)
    _, schema, cases, _, _ = loop._load_data(config)
    dataset = loop._dataset(config, schema, cases)
    batch = collate_patches([dataset[0], dataset[1]])
    assert (batch["instances"] is None) == (loss == "dc_ce")
    state = loop._build_state(config, schema, cases[0].image.shape[0])
    losses = []
    for step in range(20):
        value, norm = loop._train_step(state, batch, config)
        assert np.isfinite(value) and np.isfinite(norm), f"step {step}"
        assert all(torch.isfinite(p.grad).all() for p in state.model.parameters() if p.grad is not None)
        losses.append(value)
    assert np.mean(losses[-3:]) < losses[0], losses


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_with_more_epochs_equals_uninterrupted(cohort, tmp_path):
    whole = train(tiny(cohort, tmp_path / "whole", loss="blob", epochs=3))
    first = train(tiny(cohort, tmp_path / "split", loss="blob", epochs=1))
    assert first.epochs_completed == 1
    resumed = train(tiny(cohort, tmp_path / "split", loss="blob", epochs=3), resume=True)
    _assert_same_weights(_weights(whole.run_dir), _weights(resumed.run_dir))
    pd.testing.assert_frame_equal(
        whole.metrics.query("metric == 'loss'").reset_index(drop=True),
        resumed.metrics.query("metric == 'loss'").reset_index(drop=True),
    )


def test_killed_run_resumes_exactly(cohort, tmp_path, monkeypatch):
    config = tiny(cohort, tmp_path / "killed", loss="iwl_cc", optimizer="adamw", learning_rate=1e-3, epochs=3)
    whole = train(config.__class__(**{**config.__dict__, "out_dir": str(tmp_path / "whole")}))

    original = loop._train_epoch

    def dies_in_epoch_2(state, loader, cfg, epoch):
        if epoch == 1:
            raise KeyboardInterrupt("killed")
        return original(state, loader, cfg, epoch)

    monkeypatch.setattr(loop, "_train_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    info = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert info["status"] == "interrupted" and "KeyboardInterrupt" in info["error"]
    monkeypatch.setattr(loop, "_train_epoch", original)

    resumed = train(config, resume=True)
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["start_epoch"] == 1
    _assert_same_weights(_weights(whole.run_dir), _weights(resumed.run_dir))
    assert sorted(resumed.metrics["epoch"].unique()) == [0, 1, 2]


def test_run_folder(cohort, tmp_path):
    config = tiny(
        cohort, tmp_path / "run", loss="cc", val_cases=None, val_every=1, epochs=1, predict_final=True,
        sw_overlap=0.25,
    )
    result = train(config)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "run.json", "metrics.parquet", "checkpoints", "predictions"}
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["device"] == "cpu" and info["precision"] == "float32"
    assert info["parameters"]["loss"] == "cc" and "torch" in info["versions"] and "total_s" in info["timings"]
    assert info["val_cases"] == ["phantom-002"] and info["train_cases"] == ["phantom-000", "phantom-001"]

    metrics = pd.read_parquet(run / "metrics.parquet")
    assert list(metrics.columns) == loop.METRIC_COLUMNS
    val = metrics[metrics["phase"] == "val"]
    assert set(val["metric"]) == {"dice", "f1", "pq"} and set(val["region"]) == {"WT", "TC", "ET", "RC", "mean"}
    assert val.query("metric == 'pq'")["threshold"].eq(0.5).all()
    assert {"loss", "lr", "grad_norm", "seconds"} <= set(metrics.query("phase == 'train'")["metric"])
    assert (run / "curves.png").is_file()
    (line,) = (run / "progress.log").read_text().splitlines()  # one line per epoch, as printed
    loss = metrics.query("phase == 'train' and metric == 'loss'")["value"].item()
    wt = val.query("metric == 'dice' and region == 'WT'")["value"].item()
    assert line.startswith(f"epoch 1/1  loss {loss:.4f}  val Dice WT {wt:.3f} TC ") and line.endswith("0 s left")

    checkpoint = torch.load(result.checkpoint, weights_only=True)
    assert checkpoint["epoch"] == 1 and set(checkpoint) >= {"model", "optimizer", "scheduler", "scaler", "rng"}

    (prediction,) = result.predictions
    manifest = load_manifest(cohort)
    reference = read_header(manifest.case("phantom-002").label)
    written = read_header(prediction)
    assert written.shape == reference.shape
    np.testing.assert_allclose(written.affine, reference.affine, atol=1e-5)
    label, _, _ = load_label(prediction)
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4}
    # the probabilities behind it (sparse, quantised to 1/255): thresholded at 0.5 they give the label map
    from workbench.labels import regions_to_labels
    from workbench.training.probabilities import load_probabilities

    probabilities, channels = load_probabilities(prediction.parent / "phantom-002.probabilities.npz")
    assert channels == ("WT", "TC", "ET", "RC") and probabilities.shape == (4, *label.shape)
    again = regions_to_labels(probabilities > 0.5, "brats_mets_2025")
    undecided = (np.abs(probabilities - 0.5) <= 1 / 510).any(axis=0)      # quantisation can flip these
    assert np.array_equal(again[~undecided], label[~undecided])


def test_existing_run_needs_resume_and_same_config(cohort, tmp_path):
    train(tiny(cohort, tmp_path, epochs=1, steps_per_epoch=1))
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny(cohort, tmp_path, epochs=1, steps_per_epoch=1))
    with pytest.raises(ConfigError, match=r"config fields \['learning_rate'\] differ"):
        train(tiny(cohort, tmp_path, epochs=2, steps_per_epoch=1, learning_rate=0.1), resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny(cohort, tmp_path / "empty"), resume=True)


@pytest.mark.parametrize(
    "fields",
    [
        {"deep_supervision": True, "filters": [4, 8, 16, 16]},
        {"network": "basicunet", "filters": [4, 4, 8, 8, 16, 4], "patch_size": [32, 32, 32]},
        {"optimizer": "adamw", "grad_clip": None},
    ],
    ids=["deep_supervision", "basicunet", "adamw"],
)
def test_network_and_optimiser_variants_train(cohort, tmp_path, fields):
    result = train(tiny(cohort, tmp_path, loss="blob", epochs=1, steps_per_epoch=1, **fields))
    loss = result.metrics.query("metric == 'loss'")["value"]
    assert np.isfinite(loss).all()


def test_non_finite_loss_stops_the_run(cohort, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "_loss", lambda fn, output, *args: output.sum() * float("nan"))
    with pytest.raises(FloatingPointError, match="Non-finite loss at epoch 0, step 0"):
        train(tiny(cohort, tmp_path, epochs=1, steps_per_epoch=1))
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"
