"""The reader of workbench's napari plugin (``workbench/napari.yaml``): run folders and NIfTI label maps.

napari asks :func:`get_reader` about every folder and every ``.nii`` / ``.nii.gz`` file opened
(File > Open..., drag and drop, ``viewer.open(path, plugin="workbench")``,
``napari --plugin workbench PATH``); it returns a reader for the paths it handles and None
otherwise, without raising. The readers return the layer-data tuples of
:func:`~workbench.viz.sources.source_layers`, the layers ``workbench audit`` shows:

- a run folder (a ``workbench train`` run, or a notebook run folder of ``workbench sweep`` /
  ``workbench demo`` whose training run is ``RUN/train``): the run's first predicted case, as
  ``workbench audit RUN`` opens it (images, reference, prediction, TP/FP/FN lesions, components,
  Voronoi cells, the loss's weights);
- a NIfTI label map stored as integers: the reference alone (shown), with each region's
  components and Voronoi cells, in the BraTS-METS 2025 schema (labels 1-4), workbench's default.

The "Lesion audit" widget (:class:`~workbench.viz.audit.AuditPanel`) then lists the lesions.
No Qt here: the readers run headless.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from workbench.viz.layers import LayerData
from workbench.viz.sources import find_training_run, label_source, run_source, source_layers

__all__ = ["get_reader", "read_label_map", "read_run"]

PathOrPaths = str | os.PathLike[str] | list[str | os.PathLike[str]]


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """The reader of ``path`` (npe2's ``napari_get_reader``): :func:`read_run`, :func:`read_label_map` or None.

    Parameters
    ----------
    path : str, PathLike or list of them
        One path (a list of several, a stack, is not read).

    Returns
    -------
    callable or None
        :func:`read_run` for a run folder (:func:`~workbench.viz.sources.find_training_run`) with
        a ``predictions`` folder,
        :func:`read_label_map` for a ``.nii`` / ``.nii.gz`` file whose header stores integers;
        None for any other path, an unreadable file included.
    """
    single = _single(path)
    if single is None:
        return None
    if single.is_dir():
        try:
            train_dir = find_training_run(single)
        except FileNotFoundError:
            return None
        return read_run if (train_dir / "predictions").is_dir() else None
    if single.name.lower().endswith((".nii", ".nii.gz")) and _stores_integers(single):
        return read_label_map
    return None


def read_run(path: PathOrPaths) -> list[LayerData]:
    """The audit layers of a run folder's first predicted case (as ``workbench audit RUN``)."""
    return source_layers(run_source(_single(path)))


def read_label_map(path: PathOrPaths) -> list[LayerData]:
    """The reference layers of a NIfTI label map (:func:`~workbench.viz.sources.label_source`)."""
    return source_layers(label_source(_single(path)))


def _single(path: PathOrPaths) -> Path | None:
    if isinstance(path, list):
        return Path(path[0]) if len(path) == 1 else None
    return Path(path)


def _stores_integers(path: Path) -> bool:
    """Whether the NIfTI file's header stores unscaled integers (a label map rather than an image)."""
    try:
        header = nib.load(path).header
    except (OSError, ValueError, ImageFileError):
        return False
    slope, inter = header.get_slope_inter()
    unscaled = slope in (None, 1.0) and inter in (None, 0.0)
    return bool(np.issubdtype(header.get_data_dtype(), np.integer)) and unscaled
