"""The training loop: :func:`train` runs one configured run into its folder, resumable exactly.

Run folder (``config.out_dir``)::

    config.yaml              the validated config (every field)
    run.json                 status (running / complete / failed / interrupted), parameters, versions, git
                             commit, device, precision, case ids, timings, outputs
    metrics.parquet          per-epoch log, tidy: epoch, phase (train / val), region, metric,
                             threshold, value; train: loss, grad_norm, lr, seconds;
                             val: dice and pq@t per region and their mean over regions
    checkpoints/last.pt      written atomically after every epoch (:mod:`.checkpoint`)
    curves.png               training loss and validation Dice per region against the epoch,
                             redrawn after every epoch (:mod:`workbench.viz.curve_image`)
    progress.log             one line per epoch (epoch, train loss, validation Dice, seconds, time
                             left), as printed; a sweep shows the lines of its running runs
    predictions/<id>.nii.gz  the final predictions of ``predict_cases`` (default the validation
                             cases), in their reference geometry
    predictions/<id>.probabilities.npz  their class probabilities above 0.05, sparse and quantised
                             (``workbench.training.probabilities``), for operating-point analyses

Exact resume: the patches of epoch ``e`` depend only on ``(seed, e, index)``
(:mod:`workbench.training.data`), the loader never touches the global torch generator, and the
checkpoint holds model, optimiser, scheduler, scaler and generator states. So on the CPU a run
stopped after any epoch and resumed (``train(config, resume=True)``) ends with the same weights
as an uninterrupted one. ``epochs`` (and progress, workers, val_every, predict_final, device)
may change on resume, and so may ``out_dir`` (a moved folder); the learning-rate schedule is a
function of ``(epoch, epochs)``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm import tqdm

from workbench._io import atomic_write
from workbench._paths import case_file_name, inside
from workbench.data.nifti import save_nifti
from workbench.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from workbench.metrics import validation_scores
from workbench.runs.record import PROGRESS_LOG, RunRecord
from workbench.training.config import (
    ConfigError, TrainConfig, check_case_ids, config_to_dict, momentum_of, read_saved_config, validate,
)
from workbench.training.data import patch_loader
from workbench.training.model import configured_network, resolve_device
from workbench.training.network import deep_supervision_weights
from workbench.training.predict import logits_to_labels, predict_case, sliding_window_logits
from workbench.viz.curve_image import CURVES_PNG, write_curves
from workbench.training.probabilities import PROBABILITY_SUFFIX, foreground_probabilities, save_probabilities

__all__ = ["METRIC_COLUMNS", "RunResult", "epoch_line", "train"]

METRIC_COLUMNS = ["epoch", "phase", "region", "metric", "threshold", "value"]

_RESUMABLE_CHANGES = {"out_dir", "epochs", "progress", "workers", "val_every", "predict_final", "device"}
_VERSIONED = ("workbench", "torch", "monai", "numpy", "connected-components-3d", "nibabel", "pandas")


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` returns.

    Attributes
    ----------
    run_dir : Path
    config : TrainConfig
    epochs_completed : int
    metrics : DataFrame
        The per-epoch log (``metrics.parquet``), columns :data:`METRIC_COLUMNS`.
    checkpoint : Path
        ``checkpoints/last.pt``.
    predictions : tuple of Path
        Files written into ``predictions/`` (empty without validation cases).
    """

    run_dir: Path
    config: TrainConfig
    epochs_completed: int
    metrics: pd.DataFrame
    checkpoint: Path
    predictions: tuple[Path, ...]


@dataclass
class _State:
    """The mutable objects of a run (model, optimiser, ...), passed between the loop's functions."""

    model: torch.nn.Module
    loss: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    device: torch.device
    amp_dtype: torch.dtype | None
    in_channels: int
    out_channels: int


def train(config: TrainConfig | Mapping[str, Any], *, resume: bool = False) -> RunResult:
    """Train a U-Net with the configured loss; write the run folder (module docstring).

    Parameters
    ----------
    config : TrainConfig or Mapping
        Validated with :func:`~workbench.training.config.validate`.
    resume : bool
        Continue the run in ``config.out_dir`` from its last checkpoint. Without it, a folder
        that already holds a checkpoint is an error.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Invalid config; on resume, a field other than ``epochs`` (and the run-time switches)
        differs from the saved run's.
    FileExistsError
        A new run into a folder holding a checkpoint.
    FileNotFoundError
        ``resume`` without a checkpoint.
    FloatingPointError
        A non-finite loss or gradient in full precision (the message names epoch and step).
    """
    config = validate(config)
    run_dir = Path(config.out_dir)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    _check_run_dir(config, run_dir, ckpt_path, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_yaml(run_dir / "config.yaml", config_to_dict(config))
    previous = _deterministic(config.deterministic)
    try:
        with RunRecord(run_dir, parameters=config_to_dict(config), packages=_VERSIONED, resumed=resume) as record:
            seed_everything(config.seed)
            manifest, schema, train_cases, val_cases, predict_cases = _load_data(config)
            dataset = _dataset(config, schema, train_cases)
            state = _build_state(config, schema, train_cases[0].image.shape[0])
            start_epoch, rows = _restore(state, ckpt_path, run_dir) if resume else (0, [])
            record.update(
                git=_git(), device=str(state.device), precision=str(state.amp_dtype or "float32"),
                manifest=str(manifest.source or manifest.name), schema=schema.name, start_epoch=start_epoch,
                train_cases=[c.case_id for c in train_cases], val_cases=[c.case_id for c in val_cases],
            )
            epoch_seconds = _run_epochs(state, dataset, val_cases, schema, config, rows, start_epoch)
            predictions = _final_predictions(state, predict_cases, schema, config, run_dir) if config.predict_final else ()
            metrics = _frame(rows)
            _write_metrics(run_dir / "metrics.parquet", metrics)
            record.finish(
                epochs_completed=config.epochs, timings={"epoch_s": epoch_seconds},
                outputs=["config.yaml", "metrics.parquet", "checkpoints/last.pt", *(f"predictions/{p.name}" for p in predictions)],
            )
    finally:
        torch.use_deterministic_algorithms(previous)
    return RunResult(run_dir, config, config.epochs, metrics, ckpt_path, tuple(predictions))


def _run_epochs(
    state: _State, dataset: Any, val_cases: list, schema: Any, config: TrainConfig, rows: list[dict[str, Any]],
    start_epoch: int,
) -> list[float]:
    """Train epochs ``start_epoch .. config.epochs - 1``, appending to ``rows``; checkpoint and metrics after each.

    Returns the seconds each epoch took.
    """
    run_dir = Path(config.out_dir)
    loader = patch_loader(dataset, batch_size=config.batch_size, workers=config.workers)
    epoch_seconds: list[float] = []
    for epoch in range(start_epoch, config.epochs):
        tick = time.perf_counter()
        dataset.set_epoch(epoch)
        _apply_poly_lr(state, config, epoch)
        rows += _train_epoch(state, loader, config, epoch)
        validation = []
        if val_cases and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs):
            validation = _validation_rows(state, val_cases, schema, config, epoch)
            rows += validation
        state.scheduler.step()
        epoch_seconds.append(time.perf_counter() - tick)
        rows.append(_row(epoch, "train", "seconds", epoch_seconds[-1]))
        save_checkpoint(run_dir / "checkpoints" / "last.pt", _checkpoint(state, config, epoch + 1))
        metrics = _frame(rows)
        _write_metrics(run_dir / "metrics.parquet", metrics)
        write_curves(metrics, run_dir / CURVES_PNG, config.epochs)
        _log_epoch(run_dir / PROGRESS_LOG, epoch_line(rows, epoch, config.epochs, epoch_seconds), config.progress)
    return epoch_seconds


# --------------------------------------------------------------------------- setup


def _check_run_dir(config: TrainConfig, run_dir: Path, ckpt_path: Path, resume: bool) -> None:
    if not resume:
        if ckpt_path.exists():
            raise FileExistsError(
                f"{run_dir} already holds a run (checkpoints/last.pt); resume it (--resume) or choose another out_dir."
            )
        return
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"Cannot resume: no checkpoint at {ckpt_path}.")
    saved = read_saved_config(run_dir / "config.yaml")
    now = config_to_dict(config)
    changed = sorted(k for k in now if now[k] != saved.get(k) and k not in _RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(
            f"Cannot resume {run_dir}: config fields {changed} differ from the saved run's; only "
            f"{sorted(_RESUMABLE_CHANGES)} may change.",
            field=changed[0],
        )


def _deterministic(enabled: bool) -> bool:
    previous = torch.are_deterministic_algorithms_enabled()
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return previous


def _load_data(config: TrainConfig) -> tuple[Any, Any, list, list, list]:
    from workbench.data.cohort import default_manifest_path
    from workbench.data.manifest import load_manifest
    from workbench.labels import get_schema
    from workbench.training.data import load_training_cases

    manifest = load_manifest(config.manifest or default_manifest_path())
    check_case_ids(config, manifest)
    schema = get_schema(config.schema or manifest.schema)
    train_cases = load_training_cases(manifest, config.train_cases)
    if config.val_cases is None:
        val_ids = [c.id for c in manifest.cases if c.split == "val" and c.label is not None]
    else:
        val_ids = list(config.val_cases)
    val_cases = load_training_cases(manifest, val_ids) if val_ids else []
    if config.predict_cases is None or list(config.predict_cases) == val_ids:
        predict_cases = val_cases
    else:
        predict_cases = load_training_cases(manifest, config.predict_cases) if config.predict_cases else []
    return manifest, schema, train_cases, val_cases, predict_cases


def _dataset(config: TrainConfig, schema: Any, cases: list) -> Any:
    from workbench.losses import get_loss_spec
    from workbench.training.data import PatchDataset, PatchSampling

    maps = get_loss_spec(config.loss).needs_maps(**config.loss_options)

    sampling = PatchSampling(
        config.patch_size, foreground_fraction=config.foreground_fraction, class_balanced=config.class_balanced,
        flips=config.flips, intensity=config.intensity,
    )
    return PatchDataset(
        cases, schema=schema, mode=config.mode, sampling=sampling,
        samples_per_epoch=config.steps_per_epoch * config.batch_size, seed=config.seed,
        instances=maps.components, voronoi=maps.cells, connectivity=config.connectivity,
    )


def _build_state(config: TrainConfig, schema: Any, in_channels: int) -> _State:
    from workbench.losses import build_loss, get_loss_spec

    device, amp_dtype = resolve_device(config)
    out_channels = schema.num_channels(config.mode)
    model = configured_network(config, in_channels, out_channels).to(device)
    if _channels_last(device, len(config.patch_size)):
        model = model.to(memory_format=torch.channels_last_3d)
    options = dict(config.loss_options)
    if config.connectivity is not None and "connectivity" in get_loss_spec(config.loss).options:
        options.setdefault("connectivity", config.connectivity)
    loss = build_loss(config.loss, mode=config.mode, schema=schema, **options)
    momentum = momentum_of(config)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=momentum, nesterov=momentum > 0,
            weight_decay=config.weight_decay,
        )
    else:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, betas=(momentum, 0.999), weight_decay=config.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: poly_factor(e, config.epochs, config.poly_exponent))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    return _State(model, loss, optimizer, scheduler, scaler, device, amp_dtype, in_channels, out_channels)


def _channels_last(device: torch.device, spatial_dims: int) -> bool:
    """Channels-last 3D layout on the CPU: 1.4-1.7x faster training steps there (benchmarks/RESULTS.md)."""
    return device.type == "cpu" and spatial_dims == 3


def poly_factor(epoch: int, epochs: int, exponent: float) -> float:
    """nnU-Net's polynomial decay: ``(1 - epoch / epochs) ** exponent``, 0 from ``epochs`` on."""
    return max(1 - epoch / epochs, 0.0) ** exponent


def _apply_poly_lr(state: _State, config: TrainConfig, epoch: int) -> None:
    """Set the learning rate of ``epoch`` from the schedule, so that a run resumed with more
    ``epochs`` follows the new schedule (the optimiser's saved lr is that of the old one)."""
    factor = poly_factor(epoch, config.epochs, config.poly_exponent)
    for group, base in zip(state.optimizer.param_groups, state.scheduler.base_lrs):
        group["lr"] = base * factor


def _restore(state: _State, ckpt_path: Path, run_dir: Path) -> tuple[int, list[dict[str, Any]]]:
    checkpoint = load_checkpoint(ckpt_path)  # on the CPU; load_state_dict moves tensors to the parameters' device
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    if state.scaler is not None and checkpoint["scaler"]:
        state.scaler.load_state_dict(checkpoint["scaler"])
    set_rng_state(checkpoint["rng"])
    epoch = int(checkpoint["epoch"])
    rows: list[dict[str, Any]] = []
    if (run_dir / "metrics.parquet").is_file():
        logged = pd.read_parquet(run_dir / "metrics.parquet")
        rows = logged[logged["epoch"] < epoch].to_dict("records")
    return epoch, rows


def _checkpoint(state: _State, config: TrainConfig, epoch: int) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict() if state.scaler is not None else {},
        "rng": rng_state(),
        "config": config_to_dict(config),
        "network": {"in_channels": state.in_channels, "out_channels": state.out_channels},
    }


# --------------------------------------------------------------------------- one epoch


def _train_epoch(state: _State, loader: Any, config: TrainConfig, epoch: int) -> list[dict[str, Any]]:
    state.model.train()
    lr = state.optimizer.param_groups[0]["lr"]
    losses, norms = [], []
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step", disable=not config.progress, leave=False)
    for step, batch in enumerate(bar):
        loss, norm = _train_step(state, batch, config)
        if state.scaler is None and not (np.isfinite(loss) and np.isfinite(norm)):
            raise FloatingPointError(
                f"Non-finite {'loss' if not np.isfinite(loss) else 'gradient norm'} at epoch {epoch}, step {step} "
                f"(loss {loss}, gradient norm {norm})."
            )
        losses.append(loss)
        norms.append(norm)
        bar.set_postfix(loss=f"{loss:.4f}")
    return [
        _row(epoch, "train", "loss", float(np.mean(losses))),
        _row(epoch, "train", "grad_norm", float(np.mean(norms))),
        _row(epoch, "train", "lr", float(lr)),
    ]


def _train_step(state: _State, batch: dict[str, Any], config: TrainConfig) -> tuple[float, float]:
    """One optimiser step; returns the loss and the gradient norm before clipping."""
    image = batch["image"].to(state.device, non_blocking=True)
    if _channels_last(state.device, image.ndim - 2):
        image = image.to(memory_format=torch.channels_last_3d)
    target = batch["target"].to(state.device, non_blocking=True)
    state.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(state.device.type, dtype=state.amp_dtype or torch.float32, enabled=state.amp_dtype is not None):
        output = state.model(image)
    loss = _loss(state.loss, output.float(), target, batch["instances"], config.deep_supervision)
    if state.scaler is not None:
        state.scaler.scale(loss).backward()
        state.scaler.unscale_(state.optimizer)
    else:
        loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip or float("inf"))
    if state.scaler is not None:
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        state.optimizer.step()
    return float(loss.detach()), float(norm)


def _loss(loss_fn: torch.nn.Module, output: torch.Tensor, target: torch.Tensor, instances: Any, deep: bool) -> torch.Tensor:
    """The loss of the full-resolution output, or the weighted sum over deep-supervision heads
    (B, H, K, *P), all compared with the full-resolution target and its instance maps."""
    if not deep:
        return loss_fn(output, target, instances=instances)
    weights = deep_supervision_weights(output.shape[1])
    return sum(float(w) * loss_fn(output[:, i], target, instances=instances) for i, w in enumerate(weights))


# --------------------------------------------------------------------------- validation, predictions


def _validation_rows(state: _State, cases: list, schema: Any, config: TrainConfig, epoch: int) -> list[dict[str, Any]]:
    """Region Dice, lesion F1 and PQ at ``val_thresholds`` (mean over the cases) per region and their
    mean (:func:`workbench.metrics.validation_scores`: the cheap subset of the held-out metrics)."""
    tables = []
    for case in tqdm(cases, desc="validating", unit="case", disable=not config.progress, leave=False):
        pred = predict_case(
            state.model, case.image, schema=schema, mode=config.mode, roi_size=config.patch_size,
            overlap=config.sw_overlap, sw_batch_size=config.sw_batch_size, device=state.device, amp_dtype=state.amp_dtype,
        )
        tables.append(validation_scores(
            pred, case.label, schema=schema, spacing=case.spacing, thresholds=config.val_thresholds,
            connectivity=config.connectivity, case_id=case.case_id,
        ))
    table = pd.concat(tables, ignore_index=True)
    summary = table.groupby(["region", "metric", "threshold"], dropna=False, sort=False)["value"].mean()
    return [
        {"epoch": epoch, "phase": "val", "region": region, "metric": metric, "threshold": float(threshold), "value": float(value)}
        for (region, metric, threshold), value in summary.items()
    ]


def _final_predictions(state: _State, cases: list, schema: Any, config: TrainConfig, run_dir: Path) -> list[Path]:
    """Label maps and sparse probabilities (``<id>.probabilities.npz``) of the validation cases."""
    out = run_dir / "predictions"
    out.mkdir(exist_ok=True)
    written = []
    for case in cases:
        logits = sliding_window_logits(
            state.model, case.image, roi_size=config.patch_size, overlap=config.sw_overlap,
            sw_batch_size=config.sw_batch_size, device=state.device, amp_dtype=state.amp_dtype,
        )
        path = inside(out, out / case_file_name(case.case_id))
        save_nifti(path, logits_to_labels(logits, schema, config.mode), case.affine)
        save_probabilities(
            inside(out, out / case_file_name(case.case_id, PROBABILITY_SUFFIX)),
            foreground_probabilities(logits, config.mode), schema.foreground_names(config.mode),
        )
        written.append(path)
    return written


def epoch_line(rows: list[dict[str, Any]], epoch: int, epochs: int, epoch_seconds: list[float]) -> str:
    """The line printed after epoch ``epoch`` (0-based), as nnU-Net prints its epochs.

    ``epoch 12/40  loss 0.4127  val Dice WT 0.861 TC 0.774 ET 0.702 RC 0.000  9.8 s/epoch  4.6 min left``:
    the epoch's mean train loss, the validation Dice per region when this epoch validated, the
    mean seconds of the epochs timed in this process and the time the remaining epochs take at
    that pace.
    """
    loss = next((r["value"] for r in rows if r["epoch"] == epoch and r["phase"] == "train" and r["metric"] == "loss"), float("nan"))
    parts = [f"epoch {epoch + 1}/{epochs}", f"loss {loss:.4f}"]
    dice = [(r["region"], r["value"]) for r in rows if r["epoch"] == epoch and r["phase"] == "val" and r["metric"] == "dice"]
    if dice:
        parts.append("val Dice " + " ".join(f"{region} {value:.3f}" for region, value in dice if region != "mean"))
    pace = float(np.mean(epoch_seconds)) if epoch_seconds else float("nan")
    left = pace * (epochs - epoch - 1)
    parts.append(f"{pace:.1f} s/epoch")
    parts.append(f"{left / 60:.1f} min left" if left >= 60 else f"{left:.0f} s left")
    return "  ".join(parts)


def _log_epoch(path: Path, line: str, bars: bool) -> None:
    """Print ``line`` (through tqdm when bars are on) and append it to the run's progress log."""
    if bars:
        tqdm.write(line)
    else:
        print(line, flush=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(line + "\n")


# --------------------------------------------------------------------------- run folder files


def _row(epoch: int, phase: str, metric: str, value: float) -> dict[str, Any]:
    return {"epoch": epoch, "phase": phase, "region": "", "metric": metric, "threshold": float("nan"), "value": value}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return frame.astype({"epoch": "int64", "phase": str, "region": str, "metric": str, "threshold": "float64", "value": "float64"})


def _write_metrics(path: Path, metrics: pd.DataFrame) -> None:
    with atomic_write(path) as tmp:
        metrics.to_parquet(tmp, index=False)


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")




def _git() -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout the package runs from; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
