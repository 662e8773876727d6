"""What the audit view shows, read from a run folder or from plain NIfTI files, and its layers (no Qt here).

:func:`run_source`, :func:`files_source` and :func:`label_source` read a case; :func:`source_layers`
turns it into the layers that ``workbench audit`` shows and the napari plugin's reader
(:mod:`workbench.viz.napari_reader`) opens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from workbench.data.cohort import default_manifest_path
from workbench.data.manifest import CaseData, load_case, load_manifest
from workbench.data.nifti import grid_mismatch, load_image, load_label, read_header
from workbench.labels import LabelSchema, LabelValueError, get_schema
from workbench.metrics import lesion_table
from workbench.viz.layers import WEIGHTED_LOSSES, LayerData, audit_order, layers, lesion_features, view_layers

__all__ = ["AuditSource", "files_source", "find_training_run", "label_source", "run_source", "source_layers"]


@dataclass(frozen=True, eq=False)
class AuditSource:
    """One case to audit and how it was made.

    Attributes
    ----------
    case : CaseData
        Images and reference label map.
    prediction : ndarray of int, shape (*S), or None
    schema : LabelSchema
    loss : str or None
        A loss of :data:`~workbench.viz.layers.WEIGHTED_LOSSES` whose weights to show, else None.
    loss_options : dict
        ``max_weight`` / ``clip`` of that loss, as it was trained.
    mode : {"sigmoid", "softmax"}
    connectivity : int or None
    title : str
    """

    case: CaseData
    prediction: np.ndarray | None
    schema: LabelSchema
    loss: str | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    mode: Literal["sigmoid", "softmax"] = "sigmoid"
    connectivity: int | None = None
    title: str = ""


def find_training_run(run_dir: str | os.PathLike[str]) -> Path:
    """The training run folder (holding ``config.yaml``) of ``run_dir``.

    ``run_dir`` is a training run folder (``workbench train``) or a notebook run folder of a
    sweep or the demo, whose training run is ``run_dir/train``.
    """
    run_dir = Path(run_dir)
    for candidate in (run_dir, run_dir / "train"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"{run_dir} is not a run folder: neither it nor {run_dir / 'train'} holds a config.yaml "
        "(expected a `workbench train` run, or a run of `workbench sweep` / `workbench demo`)."
    )


def run_source(run_dir: str | os.PathLike[str], case_id: str | None = None) -> AuditSource:
    """A case of a run: its images and reference from the run's manifest, its prediction, its loss.

    Parameters
    ----------
    run_dir : str or PathLike
        See :func:`find_training_run`.
    case_id : str, optional
        A case with a prediction in ``predictions/``; default the first in sorted order.

    Raises
    ------
    FileNotFoundError
        No run folder, no predictions, or no prediction for ``case_id`` (the available ones named).
    """
    from workbench.training.config import load_config

    train_dir = find_training_run(run_dir)
    config = load_config(train_dir / "config.yaml")
    predictions = {p.name[: -len(".nii.gz")]: p for p in sorted((train_dir / "predictions").glob("*.nii.gz"))}
    if not predictions:
        raise FileNotFoundError(f"Run {train_dir} has no predictions in {train_dir / 'predictions'}.")
    if case_id is None:
        case_id = next(iter(predictions))
    if case_id not in predictions:
        raise FileNotFoundError(_not_predicted(train_dir, case_id, sorted(predictions)))
    manifest = load_manifest(config.manifest or default_manifest_path())
    case = load_case(manifest, case_id)
    prediction, _, _ = load_label(predictions[case_id])
    if prediction.shape != case.image.shape[1:]:
        raise ValueError(f"{predictions[case_id]} has shape {prediction.shape}; case {case_id!r} has {case.image.shape[1:]}.")
    loss = config.loss if config.loss in WEIGHTED_LOSSES else None
    options = {k: v for k, v in config.loss_options.items() if k in ("max_weight", "clip")} if loss else {}
    return AuditSource(
        case=case, prediction=prediction, schema=get_schema(config.schema or manifest.schema), loss=loss,
        loss_options=options, mode=config.mode, connectivity=config.connectivity,
        title=f"{case_id} · {config.loss} · {train_dir}",
    )


def _not_predicted(train_dir: Path, case_id: str, predicted: list[str]) -> str:
    """Why ``case_id`` cannot be audited in a run, and which cases can."""
    shown = ", ".join(predicted[:8]) + (f", ... ({len(predicted)} in all)" if len(predicted) > 8 else "")
    return (
        f"Run {train_dir} has no prediction for case {case_id!r}: a run predicts only its validation cases (or "
        f"its config's predict_cases), and {train_dir / 'predictions'} holds {shown}. Pass one of those as the "
        "case, or no case to audit the first."
    )


def files_source(
    images: Sequence[str | os.PathLike[str]],
    label: str | os.PathLike[str],
    prediction: str | os.PathLike[str] | None = None,
    *,
    schema: str | LabelSchema = "brats_mets_2025",
    modalities: Sequence[str] | None = None,
) -> AuditSource:
    """A case from plain NIfTI files: image channels, a reference label map, optionally a prediction.

    Raises
    ------
    ValueError
        If the files do not share one voxel grid (both named), or their labels fall outside the schema.
    """
    schema = get_schema(schema)
    image, affine, spacing = load_image(list(images))
    reference_header = read_header(images[0])
    arrays = {}
    for name, path in (("label", label), ("prediction", prediction)):
        if path is None:
            continue
        problem = grid_mismatch(reference_header, read_header(path))
        if problem:
            raise ValueError(f"{path} and {images[0]} do not share one voxel grid: {problem}.")
        arrays[name], _, _ = load_label(path)
        schema.validate(arrays[name])
    names = tuple(modalities) if modalities else tuple(_stem(p) for p in images)
    if len(names) != image.shape[0]:
        raise ValueError(f"Got {len(names)} modality names for {image.shape[0]} images.")
    case = CaseData(id=_stem(label), image=image, label=arrays["label"], affine=affine, spacing=spacing, modalities=names)
    return AuditSource(case=case, prediction=arrays.get("prediction"), schema=schema, title=str(label))


def label_source(path: str | os.PathLike[str], *, schema: str | LabelSchema = "brats_mets_2025") -> AuditSource:
    """A reference label map alone (no images, no prediction), to look at its regions' components and Voronoi cells.

    Raises
    ------
    ValueError
        If the file is not a readable label map, or holds values outside ``schema`` (the file named).
    """
    schema = get_schema(schema)
    label, affine, spacing = load_label(path)
    try:
        schema.validate(label)
    except LabelValueError as error:
        raise LabelValueError(f"{path}: {error}") from None
    case = CaseData(id=_stem(path), image=np.zeros((0, *label.shape), dtype=np.float32), label=label, affine=affine,
                    spacing=spacing, modalities=())
    return AuditSource(case=case, prediction=None, schema=schema, title=str(path))


def source_layers(source: AuditSource, *, threshold: float = 0.5) -> list[LayerData]:
    """The layers of the audit view of ``source``: :func:`~workbench.viz.layers.layers` folded by
    :func:`~workbench.viz.layers.view_layers`, showing the region of the largest miss (if any).

    Parameters
    ----------
    source : AuditSource
    threshold : float
        Dice threshold of the lesion matching.

    Returns
    -------
    list of (data, kwargs, layer_type)
        Tagged with ``view`` = the source's title (else its case id).
    """
    case = source.case
    lesions, visible_region = None, None
    if source.prediction is not None:
        lesions = lesion_table(source.prediction, case.label, schema=source.schema, spacing=case.spacing,
                               threshold=threshold, connectivity=source.connectivity, case_id=case.id)
        ordered = audit_order(lesion_features(lesions, case.label.ndim))
        visible_region = ordered["region"].iloc[0] if len(ordered) else None
    layer_data = layers(case, source.prediction, schema=source.schema, loss=source.loss, mode=source.mode,
                        connectivity=source.connectivity, threshold=threshold, lesions=lesions,
                        visible_region=visible_region, **source.loss_options)
    return view_layers(layer_data, view=source.title or case.id)


def _stem(path: str | os.PathLike[str]) -> str:
    name = Path(path).name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem
