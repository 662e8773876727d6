"""Sliding-window inference and predicted label maps, from a model or from a run folder.

Outputs become label maps with the schema's label values, so they are evaluated like any other
prediction (``workbench evaluate``):

* **softmax mode**: argmax over the C + 1 channels gives class indices 0..C, mapped back to the
  label values (:attr:`~workbench.labels.LabelSchema.label_values`).
* **sigmoid mode**: each region is ``sigmoid(logit) > 0.5``;
  :func:`~workbench.labels.regions_to_labels` turns the region masks into a label map in the
  schema's paint order (:func:`~workbench.labels.region_paint_order`, nnU-Net's convention for
  region-based training, the order the nnU-Net export writes too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from tqdm import tqdm

from workbench._paths import case_file_name, inside, refuse_existing
from workbench.data.manifest import Manifest, load_case, load_manifest
from workbench.labels import LabelSchema, get_schema, regions_to_labels
from workbench.training.model import load_model, resolve_device

__all__ = [
    "logits_to_labels",
    "predict_case",
    "predict_manifest",
    "sliding_window_logits",
]


def logits_to_labels(logits: torch.Tensor, schema: str | LabelSchema, mode: str) -> np.ndarray:
    """Label map (*S) uint8 from logits (K, *S): argmax (softmax) or regions > 0.5 (sigmoid)."""
    schema = get_schema(schema)
    if mode == "softmax":
        classes = torch.argmax(logits, dim=0).cpu().numpy()
        lut = np.array((0, *schema.label_values), dtype=np.uint8)
        return lut[classes]
    if mode == "sigmoid":
        return regions_to_labels((logits > 0).cpu().numpy(), schema)
    raise ValueError(f"Expected `mode` to be one of ('softmax', 'sigmoid'), but got {mode!r}.")


@torch.no_grad()
def sliding_window_logits(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    roi_size: Sequence[int],
    overlap: float = 0.5,
    sw_batch_size: int = 2,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Logits (K, *S) float32 on the CPU for a z-scored image (C, *S), Gaussian-blended windows.

    ``model`` is put in eval mode; windows of ``roi_size`` (the training patch size) overlap by
    ``overlap``; images smaller than a window are padded and cropped back by MONAI.
    """
    model.eval()
    inputs = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    device = torch.device(device)

    def predictor(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            return model(x).float()

    logits = sliding_window_inference(
        inputs, roi_size=tuple(roi_size), sw_batch_size=sw_batch_size, predictor=predictor,
        overlap=overlap, mode="gaussian",
    )
    return torch.as_tensor(logits)[0].float().cpu()


def predict_case(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    schema: str | LabelSchema,
    mode: str,
    roi_size: Sequence[int],
    overlap: float = 0.5,
    sw_batch_size: int = 2,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Label map (*S) uint8 of one z-scored image (C, *S): :func:`sliding_window_logits` then
    :func:`logits_to_labels`."""
    logits = sliding_window_logits(
        model, image, roi_size=roi_size, overlap=overlap, sw_batch_size=sw_batch_size, device=device, amp_dtype=amp_dtype
    )
    return logits_to_labels(logits, schema, mode)


def predict_manifest(
    run_dir: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    case_ids: Sequence[str] | None = None,
    split: str | None = None,
    device: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Predict cases of a manifest with a trained run and write ``out_dir/<case_id>.nii.gz``.

    Parameters
    ----------
    run_dir : path
        A :func:`~workbench.training.train` run folder (its ``checkpoints/last.pt`` is used).
    manifest : path
        Manifest of the cases; labels are not needed.
    out_dir : path
        Created if missing.
    case_ids : sequence of str, optional
        Cases to predict; default all of ``split``, or every case of the manifest.
    split : str, optional
    device : {"auto", "cpu", "cuda"}
    progress : bool
    overwrite : bool, default False
        Write into a folder that is not empty (files of the same cases are replaced, others kept).

    Returns
    -------
    list of Path
        The written files; each carries the affine of its case's images.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is not empty (earlier predictions) and ``overwrite`` is off.
    KeyError
        An unknown case id or split.
    ValueError
        If the manifest's modality count differs from the model's input channels, or a case id
        cannot name a file or its file would lie outside ``out_dir``; all checked before anything
        is written.
    """
    from workbench.data.nifti import save_nifti
    from workbench.training.data import zscore

    out_dir = Path(out_dir)
    refuse_existing(out_dir, overwrite=overwrite, what="set of predictions")
    model, config = load_model(run_dir)
    device_, amp_dtype = resolve_device(config, device)
    model = model.to(device_)
    data = load_manifest(manifest)
    _check_channels(model, run_dir, data)
    schema = get_schema(config.schema or data.schema)
    if case_ids is not None:
        entries = [data.case(i) for i in case_ids]
    elif split is not None:
        entries = list(data.split(split))
    else:
        entries = list(data.cases)
    targets = [inside(out_dir, out_dir / case_file_name(entry.id)) for entry in entries]
    out_dir.mkdir(parents=True, exist_ok=True)
    for entry, path in tqdm(list(zip(entries, targets)), desc="predicting", unit="case", disable=not progress):
        case = load_case(data, entry)
        label = predict_case(
            model, zscore(case.image), schema=schema, mode=config.mode, roi_size=config.patch_size,
            overlap=config.sw_overlap, sw_batch_size=config.sw_batch_size, device=device_, amp_dtype=amp_dtype,
        )
        save_nifti(path, label, case.affine)
    return targets


def _check_channels(model: torch.nn.Module, run_dir: str | os.PathLike[str], manifest: Manifest) -> None:
    """Raise if the manifest's modality count differs from the model's input channels (its first convolution's)."""
    first = next(m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    if first.in_channels != len(manifest.modalities):
        raise ValueError(
            f"The model of run {run_dir} takes {first.in_channels} image channels, but manifest "
            f"{manifest.source or manifest.name} has {len(manifest.modalities)} modalities {list(manifest.modalities)}; "
            "predict with a manifest of the modalities the run was trained on."
        )
