"""Instance maps computed in nnU-Net's data-augmentation workers and carried in the target list.

nnU-Net's data loader keeps only ``image`` and ``segmentation`` of what its transforms return,
and stacks every tensor of a ``segmentation`` list into a batch. So :class:`InstanceMapsTransform`,
the last transform of the pipeline (after the deep-supervision downsampling), appends one int32
tensor to that list: the full-resolution target's component ids, followed by its Voronoi cell
ids when the loss needs cells, shape (K or 2K, *S). :func:`split_instance_maps` takes it off the
batch again in the trainer and rebuilds the :class:`~workbench.instances.InstanceMaps`. The
labelling (cc3d) and the Voronoi cells (an exact distance transform) thus run on the CPU in the
workers, in parallel with the network; the trainer only recounts sizes (one pass per map).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import SegOnlyTransform

from workbench.instances import InstanceMaps, instance_maps, instance_maps_from_ids

__all__ = ["InstanceMapsTransform", "split_instance_maps"]

Mode = Literal["softmax", "sigmoid"]


class InstanceMapsTransform(SegOnlyTransform):
    """Append the target's component (and cell) ids to the sample's ``segmentation`` list.

    Parameters
    ----------
    mode : {"softmax", "sigmoid"}
        softmax: ``segmentation`` is a (1, *S) label map ``0..channels``; sigmoid: (R[+1], *S)
        region masks (a trailing ignore channel is left out).
    channels : int
        Foreground channels K: classes C (softmax) or regions R (sigmoid).
    connectivity : int
    spacing : tuple of float
        Voxel size (mm) of the patches, for the Voronoi cells.
    voronoi : bool
        Also compute the Voronoi cells (the cc losses).
    ignore_index : int, optional
        softmax mode: nnU-Net's ignore label.
    """

    def __init__(
        self,
        mode: Mode,
        channels: int,
        connectivity: int,
        spacing: tuple[float, ...],
        voronoi: bool,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.channels = int(channels)
        self.connectivity = int(connectivity)
        self.spacing = tuple(float(s) for s in spacing)
        self.voronoi = bool(voronoi)
        self.ignore_index = ignore_index

    def _apply_to_segmentation(self, segmentation: torch.Tensor | list[torch.Tensor], **params) -> list[torch.Tensor]:
        full = segmentation[0] if isinstance(segmentation, list) else segmentation
        array = full.numpy()
        if self.mode == "sigmoid":
            target = array[None, : self.channels]
            num_classes = None
        else:
            target = array[None, :1]
            num_classes = self.channels
        maps = instance_maps(
            target, self.mode, self.connectivity, self.spacing, self.voronoi,
            num_classes=num_classes, ignore_index=self.ignore_index,
        )
        ids = maps.components[0] if maps.cells is None else np.concatenate([maps.components[0], maps.cells[0]])
        packed = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        return [*segmentation, packed] if isinstance(segmentation, list) else [segmentation, packed]


def split_instance_maps(
    target: list[torch.Tensor],
    *,
    mode: Mode,
    channels: int,
    connectivity: int,
    spacing: tuple[float, ...],
    voronoi: bool,
    deep_supervision: bool,
) -> tuple[torch.Tensor | list[torch.Tensor], InstanceMaps]:
    """Undo :class:`InstanceMapsTransform` on a batch.

    Parameters
    ----------
    target : list of Tensor
        The batch's ``target`` list; its last entry (B, K or 2K, *S) int32 holds the ids.
    deep_supervision : bool
        Whether the rest is nnU-Net's list of scales (else it is one tensor).

    Returns
    -------
    target : Tensor or list of Tensor
        What nnU-Net's own trainer expects.
    instances : InstanceMaps
        Of the full-resolution target, batch B.
    """
    if not isinstance(target, list) or len(target) < 2:
        raise ValueError(
            "Expected the batch target to end with the instance ids of InstanceMapsTransform; is the "
            "transform missing from the trainer's data pipeline?"
        )
    *rest, packed = target
    expected = 2 * channels if voronoi else channels
    if packed.ndim < 3 or packed.shape[1] != expected:
        raise ValueError(f"Expected instance ids with {expected} channels, but got a tensor of shape {tuple(packed.shape)}.")
    ids = packed.numpy()
    maps = instance_maps_from_ids(
        ids[:, :channels], ids[:, channels:] if voronoi else None,
        mode=mode, connectivity=connectivity, spacing=spacing,
    )
    return (rest if deep_supervision else rest[0]), maps
