"""The loss a workbench nnU-Net trainer calls: a workbench loss under nnU-Net's deep supervision.

Deep supervision
----------------
nnU-Net's U-Net returns one output per decoder scale, and its data loader downsamples the target
to each scale by **nearest neighbour**, which deletes lesions smaller than the stride and splits
or merges others. Instance terms on those targets would score lesions that do not exist at that
scale, and recomputing components per scale would pay for a labelling that disagrees with the
full-resolution one. So:

- the full-resolution output gets the workbench loss exactly: ``loss(out_0, target_0)``, i.e.
  ``alpha · DC+CE + beta · instance term`` (or the inverse-weighted loss) on the true components;
- every coarser output ``i ≥ 1`` gets only the global part, ``alpha · DC+CE`` (weight 1 for the
  inverse-weighted losses, whose weight maps also come from components);
- the scales are combined with nnU-Net's own weights (:func:`deep_supervision_weights`), so that
  with the instance term switched off (``beta = 0``) the trainer trains nnU-Net's baseline.

Hence ``total = w_0 · L(out_0, t_0) + Σ_{i≥1} w_i · alpha · DC+CE(out_i, t_i)``; without deep
supervision, ``total = L(out, t)``, the loss :func:`workbench.losses.build_loss` returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from workbench.instances import InstanceMaps
from workbench.losses import DiceCELoss, build_loss, get_loss_spec

__all__ = ["DeepSupervisedLoss", "deep_supervision_weights"]


def deep_supervision_weights(num_outputs: int, *, keep_lowest: bool = False) -> np.ndarray:
    """nnU-Net v2's weights of its deep-supervision outputs, highest resolution first.

    ``1 / 2**i``, the lowest-resolution output set to 0 (nnU-Net ignores it; ``keep_lowest``
    gives it 1e-6 instead, as nnU-Net does under DDP without torch.compile), normalised to sum 1.

    Parameters
    ----------
    num_outputs : int
        Number of network outputs (≥ 1); one output gets weight 1.

    Returns
    -------
    weights : ndarray of float64, shape (num_outputs,)

    Examples
    --------
    >>> deep_supervision_weights(3).round(4).tolist()
    [0.6667, 0.3333, 0.0]
    """
    if not isinstance(num_outputs, (int, np.integer)) or num_outputs < 1:
        raise ValueError(f"Expected `num_outputs` ≥ 1, but got {num_outputs!r}.")
    if num_outputs == 1:
        return np.ones(1)
    weights = np.array([1 / 2**i for i in range(num_outputs)])
    weights[-1] = 1e-6 if keep_lowest else 0.0
    return weights / weights.sum()


class DeepSupervisedLoss(torch.nn.Module):
    """A workbench loss applied to nnU-Net's (possibly deep-supervised) outputs, as documented above.

    Parameters
    ----------
    name : str
        A :data:`workbench.losses.LOSS_NAMES` entry.
    weights : sequence of float, optional
        Per-output weights (:func:`deep_supervision_weights`); None: one output, no deep supervision.
    **options
        Passed to :func:`workbench.losses.build_loss` (``mode``, ``ignore_index``, ``alpha``, ...).

    Call: ``loss(outputs, targets, instances=None)`` with a tensor each (no deep supervision) or
    lists, highest resolution first, as nnU-Net's network and data loader give them. ``instances``
    are the full-resolution target's maps; without them the loss computes them, unless maps were
    handed over with :meth:`given`.
    """

    def __init__(self, name: str, weights: Sequence[float] | None = None, **options) -> None:
        super().__init__()
        self.loss = build_loss(name, **options)
        self.coarse = DiceCELoss(mode=self.loss.mode, ignore_index=self.loss.ignore_index)
        self.coarse_weight = self.loss.alpha if get_loss_spec(name).instance_term else 1.0
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        self._given: InstanceMaps | None = None

    @contextmanager
    def given(self, instances: InstanceMaps | None) -> Iterator[None]:
        """Use ``instances`` (the full-resolution target's maps) for the calls inside the block."""
        self._given = instances
        try:
            yield
        finally:
            self._given = None

    def forward(
        self, outputs: Tensor | Sequence[Tensor], targets: Tensor | Sequence[Tensor], instances: InstanceMaps | None = None
    ) -> Tensor:
        instances = instances if instances is not None else self._given
        if self.weights is None:
            if not isinstance(outputs, Tensor) or not isinstance(targets, Tensor):
                raise TypeError("Without deep supervision, expected one output tensor and one target tensor.")
            return self.loss(outputs, targets, instances=instances)
        if isinstance(outputs, Tensor) or isinstance(targets, Tensor):
            raise TypeError("With deep supervision, expected lists of outputs and targets, highest resolution first.")
        if not len(outputs) == len(targets) == len(self.weights):
            raise ValueError(
                f"Expected {len(self.weights)} outputs and targets (one per deep-supervision weight), "
                f"but got {len(outputs)} outputs and {len(targets)} targets."
            )
        total = self.weights[0] * self.loss(outputs[0], targets[0], instances=instances)
        if self.coarse_weight:
            for weight, output, target in zip(self.weights[1:], outputs[1:], targets[1:]):
                if weight:
                    total = total + weight * self.coarse_weight * self.coarse(output, target)
        return total

    def extra_repr(self) -> str:
        return f"weights={self.weights}"
