"""The training configuration: one typed, validated dataclass, read from YAML or JSON.

Every hyperparameter of a run lives in :class:`TrainConfig` (no trainer subclasses per variant).
:func:`load_config` reads a file, :func:`validate` turns a mapping into a checked config; an
unknown field, a value of the wrong type or an out-of-range value raises :class:`ConfigError`
whose message names the field.

Defaults follow nnU-Net where it has one: DynUNet with instance norm and leaky ReLU, SGD with
learning rate 0.01, momentum 0.99 and Nesterov, weight decay 3e-5, polynomial decay (exponent
0.9) per epoch, gradient-norm clipping at 12, 250 steps per epoch, patch 128³, batch 2.

Deep supervision is **off** by default. nnU-Net supervises its low-resolution decoder outputs
with targets downsampled by nearest neighbour: at 1/4 or 1/8 resolution small lesions vanish and
neighbouring ones merge, so the instance losses there see other components than at full
resolution (the point of the instance losses is the small ones). MONAI's DynUNet instead
upsamples its low-resolution heads to full size, which keeps the instance maps but supervises
outputs that cannot resolve small lesions. ``deep_supervision: true`` enables the latter
(heads weighted 1, 1/2, 1/4, ..., normalised), for comparison.

A config file lists only the fields that differ from the defaults, e.g.::

    # train.yaml — `workbench train --config train.yaml`
    out_dir: runs/blob-sigmoid
    manifest: data_manifests/phantoms_default.yaml
    loss: blob
    loss_options: {preset: alpha2_beta1}
    mode: sigmoid
    epochs: 200
    val_every: 10

Examples
--------
>>> config = validate({"loss": "blob", "patch_size": [32, 32, 32], "filters": [4, 8, 16]})
>>> config.loss, config.patch_size, config.optimizer
('blob', (32, 32, 32), 'sgd')
>>> validate({"lr": 0.1})
Traceback (most recent call last):
...
workbench.training.config.ConfigError: Unknown config field 'lr' (did you mean 'learning_rate'?).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from workbench._yaml import load_yaml

if TYPE_CHECKING:
    from workbench.data.manifest import Manifest

__all__ = [
    "ConfigError", "TrainConfig", "check_case_ids", "config_to_dict", "load_config", "momentum_of", "read_saved_config",
    "validate",
]

_CASE_FIELDS = ("train_cases", "val_cases", "predict_cases")


class ConfigError(ValueError):
    """A training configuration is invalid; the message names the field.

    Attributes
    ----------
    field : str or None
        The field at fault (the first one named, when several are); None when the problem is
        the config file itself.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run (see the module docstring for the defaults' origin).

    Attributes
    ----------
    out_dir : str
        Run folder (config, run.json, metrics.parquet, checkpoints/, predictions/).
    manifest : str or None
        Dataset manifest (.yaml); None: the built-in phantom cohort.
    schema : str or None
        Label schema; None: the manifest's.
    train_cases, val_cases : tuple of str or None
        Case ids; None: the manifest's ``train`` / ``val`` splits. ``val_cases: []`` disables
        validation and final predictions.
    loss : str
        One of :data:`workbench.losses.LOSS_NAMES`.
    loss_options : dict
        Extra options of :func:`workbench.losses.build_loss` (``preset``, ``alpha``, ``beta``,
        ``base``, ``max_weight``, ``clip``, ...).
    mode : {"sigmoid", "softmax"}
        Region (BraTS, nnU-Net's region-based training) or class targets.
    connectivity : int or None
        Component connectivity of the instance maps (default full: 26 in 3D).
    network : {"dynunet", "basicunet"}
    filters : tuple of int
        Features per level; DynUNet: one per level (the depth), BasicUNet: exactly 6.
    strides : tuple of tuple of int, or None
        DynUNet strides per level (the first is usually 1); None: nnU-Net-like, stride 2 on an
        axis until the feature map would be smaller than 4 voxels there.
    deep_supervision : bool
        DynUNet only; off by default (module docstring).
    patch_size : tuple of int
        Cases smaller than the patch on an axis are zero-padded, with a warning naming them.
    batch_size, epochs, steps_per_epoch : int
    foreground_fraction : float
        Share of patches centred on foreground (nnU-Net: 1/3).
    class_balanced, flips, intensity : bool
        Patch sampling and augmentation switches of :class:`~workbench.training.data.PatchSampling`.
    optimizer : {"sgd", "adamw"}
    learning_rate, weight_decay, poly_exponent : float
        ``lr(epoch) = learning_rate · (1 - epoch / epochs) ** poly_exponent``.
    momentum : float or None
        SGD's (Nesterov) momentum or AdamW's beta1; None: the optimiser's usual value, 0.99 for
        SGD (nnU-Net) and 0.9 for AdamW.
    grad_clip : float or None
        Maximal gradient 2-norm; None: no clipping.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``auto``: bf16 autocast on CUDA when supported, else fp16 with a GradScaler; fp32 on CPU.
        Reduced precision on CPU is an error.
    device : {"auto", "cpu", "cuda"}
    val_every : int
        Validate every k epochs and after the last one.
    val_thresholds : tuple of float
        Matching thresholds of PQ in validation.
    sw_overlap : float
        Overlap of the sliding-window inference (Gaussian blending).
    sw_batch_size : int
    predict_cases : tuple of str or None
        Cases whose final predictions are written (with ``predict_final``); None: the
        validation cases. The train → evaluate pipeline predicts its held-out test cases here.
    predict_final : bool
        Write the validation cases' predictions as NIfTI into ``predictions/`` at the end.
    workers : int
        Data-loader worker processes (0: in the main process).
    seed : int
    deterministic : bool
        ``torch.use_deterministic_algorithms(True)`` (exact resume on CPU needs it only with
        nondeterministic kernels; slower on GPU).
    progress : bool
        tqdm progress bars.
    """

    out_dir: str = "runs/train"
    manifest: str | None = None
    schema: str | None = None
    train_cases: tuple[str, ...] | None = None
    val_cases: tuple[str, ...] | None = None
    loss: str = "dc_ce"
    loss_options: dict[str, Any] = field(default_factory=dict)
    mode: Literal["sigmoid", "softmax"] = "sigmoid"
    connectivity: int | None = None
    network: Literal["dynunet", "basicunet"] = "dynunet"
    filters: tuple[int, ...] = (32, 64, 128, 256, 320, 320)
    strides: tuple[tuple[int, ...], ...] | None = None
    deep_supervision: bool = False
    patch_size: tuple[int, ...] = (128, 128, 128)
    batch_size: int = 2
    epochs: int = 1000
    steps_per_epoch: int = 250
    foreground_fraction: float = 1 / 3
    class_balanced: bool = False
    flips: bool = True
    intensity: bool = True
    optimizer: Literal["sgd", "adamw"] = "sgd"
    learning_rate: float = 0.01
    momentum: float | None = None
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    grad_clip: float | None = 12.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    val_every: int = 50
    val_thresholds: tuple[float, ...] = (0.5,)
    sw_overlap: float = 0.5
    sw_batch_size: int = 2
    predict_cases: tuple[str, ...] | None = None
    predict_final: bool = True
    workers: int = 2
    seed: int = 0
    deterministic: bool = False
    progress: bool = True


_POSITIVE = ("batch_size", "epochs", "steps_per_epoch", "val_every", "sw_batch_size", "learning_rate")
_NON_NEGATIVE = ("workers", "seed", "weight_decay", "poly_exponent")
_ALIASES = {
    "lr": "learning_rate", "num_epochs": "epochs", "max_epochs": "epochs", "batch": "batch_size",
    "num_workers": "workers", "amp": "precision", "model": "network", "arch": "network", "loss_name": "loss",
    "iterations_per_epoch": "steps_per_epoch", "num_iterations_per_epoch": "steps_per_epoch",
}


def validate(config: TrainConfig | Mapping[str, Any], **overrides: Any) -> TrainConfig:
    """A checked :class:`TrainConfig` from a mapping (or a config), with ``overrides`` applied.

    Parameters
    ----------
    config : TrainConfig or Mapping
        Field name -> value; lists are accepted where tuples are typed.
    **overrides
        Fields that replace those of ``config``.

    Raises
    ------
    ConfigError
        Unknown field (with a "did you mean"), a value of the wrong type, or an invalid value
        (range, unknown loss or schema, patch not divisible by the network's downsampling).
    """
    values = config_to_dict(config) if isinstance(config, TrainConfig) else dict(config)
    values.update(overrides)
    hints = typing.get_type_hints(TrainConfig)
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in values:
        if key not in names:
            close = [_ALIASES[key]] if key in _ALIASES else difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known fields: {names}"
            raise ConfigError(f"Unknown config field {key!r}{hint}.", field=str(key))
    checked = {key: _coerce(key, value, hints[key]) for key, value in values.items()}
    result = TrainConfig(**checked)
    _check_values(result)
    return result


def momentum_of(config: TrainConfig) -> float:
    """The momentum (SGD) or beta1 (AdamW) a run uses: ``config.momentum``, or the optimiser's usual value."""
    if config.momentum is not None:
        return config.momentum
    return 0.99 if config.optimizer == "sgd" else 0.9


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file and :func:`validate` it.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ConfigError
        If it is not a mapping, cannot be parsed, or a field is invalid.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text, path)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"Cannot parse config {path}: {error}") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"Config {path} must be a mapping of field: value, got {type(document).__name__}.")
    return validate(document, **overrides)


def read_saved_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping a run folder's ``config.yaml`` holds, as :func:`config_to_dict` wrote it (for resuming).

    Parameters
    ----------
    path : str or PathLike
        ``<run folder>/config.yaml``.

    Returns
    -------
    dict
        Field name -> value, not validated (a resume compares it with the new config).

    Raises
    ------
    ConfigError
        The file is missing, unreadable as text, not YAML, or not a mapping; the message names it
        and says how to go on.
    """
    path = Path(path)
    advice = "restore it (checkpoints/last.pt holds the same fields under 'config') or train into a new out_dir"
    try:
        document = load_yaml(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise ConfigError(f"Cannot resume: the run's config {path} is missing; {advice}.") from None
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"Cannot resume: the run's config {path} is damaged ({reason}); {advice}.") from None
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"Cannot resume: the run's config {path} is not a mapping of field: value "
            f"(got {type(document).__name__}); {advice}."
        )
    return dict(document)


def check_case_ids(config: TrainConfig, manifest: Manifest) -> None:
    """Check that every id of ``train_cases``, ``val_cases`` and ``predict_cases`` is a case of ``manifest``.

    Parameters
    ----------
    config : TrainConfig
    manifest : Manifest
        The manifest the run reads (``config.manifest``, or the built-in cohort's).

    Raises
    ------
    ConfigError
        Naming the field, the unknown id, the manifest and the closest ids, e.g. ``Config field
        `val_cases`: manifest 'phantoms' (data_manifests/phantoms.yaml) has no case 'c99'
        (closest ids: ['c09']); use ids the manifest lists.``
    """
    known = {case.id for case in manifest.cases}
    where = f"manifest {manifest.name!r}" + (f" ({manifest.source})" if manifest.source is not None else "")
    for name in _CASE_FIELDS:
        for case_id in getattr(config, name) or ():
            if case_id not in known:
                close = difflib.get_close_matches(case_id, sorted(known), n=3)
                hint = f"closest ids: {close}" if close else f"it has {len(known)} cases, e.g. {sorted(known)[:3]}"
                raise ConfigError(
                    f"Config field `{name}`: {where} has no case {case_id!r} ({hint}); use ids the manifest lists.",
                    field=name,
                )


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain JSON/YAML-ready dict (tuples as lists) of a config; :func:`validate` reads it back."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the type ``hint`` (lists become tuples); ConfigError naming ``name``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"Expected config field `{name}` to be one of {args}, but got {value!r}.", field=name)
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(name, value, "a list")
        element = args[0]
        return tuple(_coerce(f"{name}[{i}]", v, element) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _type_error(name, value, "a mapping with string keys")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(name, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(name, value, "an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(name, value, "a number")
        if not math.isfinite(value):  # YAML .nan / .inf, JSON NaN / Infinity: no field takes them
            raise ConfigError(
                f"Expected config field `{name}` to be a finite number, but got {value!r}.", field=name.partition("[")[0]
            )
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _type_error(name, value, "a string")
        return value
    return value


def _type_error(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(
        f"Expected config field `{name}` to be {expected}, but got {value!r} ({type(value).__name__}).",
        field=name.partition("[")[0],  # an item of a list field names the field
    )


def _check_values(config: TrainConfig) -> None:
    from workbench._validate import check_connectivity
    from workbench.labels import get_schema
    from workbench.losses.registry import LOSSES

    for name in _POSITIVE:
        if getattr(config, name) <= 0:
            raise ConfigError(
                f"Expected config field `{name}` to be positive, but got {getattr(config, name)!r}.", field=name
            )
    for name in _NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise ConfigError(
                f"Expected config field `{name}` to be ≥ 0, but got {getattr(config, name)!r}.", field=name
            )
    if config.loss not in LOSSES:
        raise ConfigError(
            f"Expected config field `loss` to be one of {tuple(LOSSES)}, but got {config.loss!r}.", field="loss"
        )
    if config.schema is not None:
        try:
            get_schema(config.schema)
        except ValueError as error:
            raise ConfigError(f"Config field `schema`: {error}", field="schema") from None
    for name in ("foreground_fraction", "momentum"):
        if getattr(config, name) is not None and not 0 <= getattr(config, name) <= 1:
            raise ConfigError(
                f"Expected config field `{name}` to be in [0, 1], but got {getattr(config, name)!r}.", field=name
            )
    if not 0 <= config.sw_overlap < 1:
        raise ConfigError(
            f"Expected config field `sw_overlap` to be in [0, 1), but got {config.sw_overlap!r}.", field="sw_overlap"
        )
    if config.grad_clip is not None and config.grad_clip <= 0:
        raise ConfigError(
            f"Expected config field `grad_clip` to be positive or null, but got {config.grad_clip!r}.", field="grad_clip"
        )
    if any(not 0 < t <= 1 for t in config.val_thresholds) or not config.val_thresholds:
        raise ConfigError(
            f"Expected config field `val_thresholds` to be values in (0, 1], but got {config.val_thresholds!r}.", field="val_thresholds"
        )
    if len(config.patch_size) != 3 or min(config.patch_size) < 1:
        raise ConfigError(
            f"Expected config field `patch_size` to be 3 positive sizes, but got {config.patch_size!r}.", field="patch_size"
        )
    if min(config.filters, default=0) < 1:
        raise ConfigError(
            f"Expected config field `filters` to be positive feature counts, but got {config.filters!r}.", field="filters"
        )
    if config.connectivity is not None:
        try:
            check_connectivity(config.connectivity, 3)
        except ValueError as error:
            raise ConfigError(f"Config field `connectivity`: {error}", field="connectivity") from None
    _check_loss(config)
    _check_network(config)
    if config.device == "cpu" and config.precision in ("bf16", "fp16"):
        raise ConfigError(
            f"Config field `precision`: {config.precision!r} needs device 'cuda'; CPU trains in fp32.", field="precision"
        )


def _check_network(config: TrainConfig) -> None:
    """The network fits its filters, strides and patch size."""
    if config.network == "basicunet":
        if len(config.filters) != 6:
            raise ConfigError(
                f"Config field `filters`: BasicUNet takes exactly 6 feature counts, got {len(config.filters)}.", field="filters"
            )
        if config.strides is not None or config.deep_supervision:
            raise ConfigError(
                "Config fields `strides` and `deep_supervision` apply to network 'dynunet' only.", field="strides"
            )
        if any(s % 16 or s < 32 for s in config.patch_size):
            raise ConfigError(
                f"Config field `patch_size`: BasicUNet needs multiples of 16, at least 32, got {config.patch_size!r}.",
                field="patch_size",
            )
    else:
        from workbench.training.network import dynunet_strides

        if len(config.filters) < 3:
            raise ConfigError(
                f"Config field `filters`: DynUNet needs at least 3 levels, got {config.filters!r}.", field="filters"
            )
        try:
            dynunet_strides(config.patch_size, len(config.filters), config.strides)
        except ValueError as error:
            raise ConfigError(str(error), field="patch_size") from None


def _check_loss(config: TrainConfig) -> None:
    """Build the loss once so that a bad ``loss_options`` entry fails before any data is read."""
    import warnings

    from workbench.losses import build_loss, get_loss_spec

    options = dict(config.loss_options)
    reserved = sorted({"mode", "schema"} & set(options))
    if reserved:
        raise ConfigError(
            f"Config field `loss_options`: set {reserved} through the top-level fields, not here.", field="loss_options"
        )
    if config.connectivity is not None and "connectivity" in get_loss_spec(config.loss).options:
        options.setdefault("connectivity", config.connectivity)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            build_loss(config.loss, mode=config.mode, schema=config.schema, **options)
    except (ValueError, TypeError, UserWarning) as error:
        raise ConfigError(
            f"Config field `loss_options` (loss {config.loss!r}): {error}", field="loss_options"
        ) from None
