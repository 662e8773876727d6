"""The segmentation network: MONAI's DynUNet configured like nnU-Net, or BasicUNet.

Examples
--------
>>> dynunet_strides((32, 32, 8), 3)
((1, 1, 1), (2, 2, 2), (2, 2, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from monai.networks.nets import BasicUNet, DynUNet

__all__ = ["MIN_FEATURE_SIZE", "build_network", "deep_supervision_weights", "dynunet_strides"]

MIN_FEATURE_SIZE = 4
"""nnU-Net stops downsampling an axis once its feature map would fall below this many voxels."""


def dynunet_strides(
    patch_size: Sequence[int], levels: int, strides: Sequence[Sequence[int]] | None = None
) -> tuple[tuple[int, ...], ...]:
    """Strides of the DynUNet levels, checked against the patch size.

    Parameters
    ----------
    patch_size : sequence of int
        Spatial patch size (2D or 3D).
    levels : int
        Number of levels (= number of ``filters``).
    strides : sequence of sequence of int, optional
        Explicit strides, one per level; default: 1 on the first level, then 2 on every axis
        whose feature map stays at least :data:`MIN_FEATURE_SIZE` voxels (nnU-Net's rule).

    Returns
    -------
    strides : tuple of tuple of int, one per level

    Raises
    ------
    ValueError
        If the number of strides differs from ``levels``, a stride has the wrong length or is
        not positive, or the patch is not divisible by the total downsampling of an axis.
    """
    dims = len(patch_size)
    if strides is None:
        sizes = list(patch_size)
        result = [(1,) * dims]
        for _ in range(levels - 1):
            step = tuple(2 if s % 2 == 0 and s // 2 >= MIN_FEATURE_SIZE else 1 for s in sizes)
            sizes = [s // f for s, f in zip(sizes, step)]
            result.append(step)
        return tuple(result)
    result = tuple(tuple(int(v) for v in s) for s in strides)
    if len(result) != levels:
        raise ValueError(f"Config field `strides`: expected one stride per level ({levels}), got {len(result)}.")
    if any(len(s) != dims or min(s) < 1 for s in result):
        raise ValueError(f"Config field `strides`: expected {dims} positive integers per level, got {list(result)}.")
    for axis, size in enumerate(patch_size):
        total = 1
        for s in result:
            total *= s[axis]
        if size % total:
            raise ValueError(
                f"Config field `patch_size`: axis {axis} of size {size} is not divisible by the network's "
                f"downsampling {total} (strides {list(result)})."
            )
    return result


def build_network(
    kind: Literal["dynunet", "basicunet"],
    *,
    in_channels: int,
    out_channels: int,
    patch_size: Sequence[int],
    filters: Sequence[int],
    strides: Sequence[Sequence[int]] | None = None,
    deep_supervision: bool = False,
) -> torch.nn.Module:
    """A MONAI U-Net that maps (B, in_channels, *P) to logits (B, out_channels, *P).

    Parameters
    ----------
    kind : {"dynunet", "basicunet"}
        ``dynunet``: nnU-Net's plain U-Net (3×3×3 kernels, instance norm with affine, leaky
        ReLU 0.01, transposed-convolution upsampling), one level per ``filters`` entry, strides
        from :func:`dynunet_strides`. ``basicunet``: MONAI's BasicUNet with 6 ``filters``.
    in_channels, out_channels : int
    patch_size : sequence of int
        Spatial size of the training patches (sets the default strides and the dimension).
    filters : sequence of int
    strides : sequence of sequence of int, optional
    deep_supervision : bool
        DynUNet only: in training mode the output is (B, 1 + H, out_channels, *P), the full
        resolution output followed by H upsampled lower-resolution heads (H = levels - 2).

    Examples
    --------
    >>> net = build_network("dynunet", in_channels=1, out_channels=2, patch_size=(16, 16, 16), filters=(4, 8, 16))
    >>> net(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 2, 16, 16, 16])
    """
    dims = len(patch_size)
    if kind == "basicunet":
        return BasicUNet(spatial_dims=dims, in_channels=in_channels, out_channels=out_channels, features=tuple(filters))
    if kind != "dynunet":
        raise ValueError(f"Expected `kind` to be one of ('dynunet', 'basicunet'), but got {kind!r}.")
    levels = len(filters)
    strides = dynunet_strides(patch_size, levels, strides)
    return DynUNet(
        spatial_dims=dims,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=[(3,) * dims] * levels,
        strides=list(strides),
        upsample_kernel_size=list(strides[1:]),
        filters=list(filters),
        norm_name=("INSTANCE", {"affine": True}),
        act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=deep_supervision,
        deep_supr_num=max(levels - 2, 1),
        res_block=False,
    )


def deep_supervision_weights(heads: int) -> torch.Tensor:
    """nnU-Net's head weights ``1, 1/2, 1/4, ...`` normalised to sum 1, shape (heads,)."""
    weights = torch.tensor([0.5**i for i in range(heads)], dtype=torch.float64)
    return weights / weights.sum()
