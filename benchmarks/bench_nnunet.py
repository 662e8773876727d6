"""Per-iteration cost of the workbench nnU-Net trainers' loss path, side by side with nnU-Net's own.

On a BraTS-size setting (region mode, WT/TC/ET/RC, batch 2, 128³ patches of a 240×240×155 phantom
with many metastases, nnU-Net's 5 deep-supervision outputs), measures:

- the instance maps of one sample in a data-augmentation worker (``InstanceMapsTransform``):
  components only (blob, IWL-blob, InvWeight) and with Voronoi cells (cc, IWL-CC);
- the main process's share per batch (``split_instance_maps``: sizes recounted from the ids);
- loss forward + backward on the network's outputs: nnU-Net's ``DC_and_BCE_loss`` under its
  ``DeepSupervisionWrapper`` against each workbench trainer's loss, maps handed over.

Run:  python benchmarks/bench_nnunet.py [--repeats 5] [--threads 2]      (prints Markdown tables)
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch
from _timing import timed
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from workbench.data.phantoms import make_case
from workbench.integrations.nnunet.loss import (
    DeepSupervisedLoss,
    deep_supervision_weights,
)
from workbench.integrations.nnunet.transforms import (
    InstanceMapsTransform,
    split_instance_maps,
)
from workbench.labels import BRATS_METS_2025
from workbench.losses import LOSSES

PATCH = (128, 128, 128)
OUTPUTS = 5


def patches(seed: int) -> tuple[torch.Tensor, tuple[float, ...]]:
    """Two 128³ region-mask patches (2, 4, *PATCH) bool around the case's lesions."""
    case = make_case(seed, shape=(240, 240, 155))
    masks = BRATS_METS_2025.to_region_masks(case.label)
    centre = np.argwhere(masks[0]).mean(axis=0).astype(int)
    out = []
    for shift in (-20, 20):
        start = [int(np.clip(c + shift - p // 2, 0, s - p)) for c, p, s in zip(centre, PATCH, masks.shape[1:])]
        out.append(masks[(slice(None), *[slice(a, a + p) for a, p in zip(start, PATCH)])])
    return torch.from_numpy(np.stack(out)), case.spacing


def deep_supervision(target: torch.Tensor) -> list[torch.Tensor]:
    """Nearest-neighbour downsampled targets, as nnU-Net's DownsampleSegForDSTransform."""
    return [target[(..., *[slice(None, None, 2**i)] * 3)] for i in range(OUTPUTS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target, spacing = patches(args.seed)
    targets = deep_supervision(target)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads; "
          f"phantom seed {args.seed}, patches {tuple(target.shape)}, spacing {spacing}\n")

    print("| step | where | s |\n|---|---|---|")
    samples = {}
    for voronoi in (False, True):
        transform = InstanceMapsTransform("sigmoid", 4, 26, spacing, voronoi)
        seconds = timed(lambda transform=transform: transform(segmentation=targets_of(targets, 0)), args.repeats, warmup=True)
        samples[voronoi] = [transform(segmentation=targets_of(targets, b))["segmentation"][-1] for b in range(2)]
        print(f"| instance maps of one sample, {'components + cells' if voronoi else 'components'} | worker | {seconds:.3f} |")
    maps = {}
    for voronoi in (False, True):
        batch = [*targets, torch.stack(samples[voronoi])]
        def split(batch=batch, voronoi=voronoi):
            return split_instance_maps(
                batch, mode="sigmoid", channels=4, connectivity=26, spacing=spacing, voronoi=voronoi, deep_supervision=True
            )

        seconds = timed(split, args.repeats, warmup=True)
        maps[voronoi] = split()[1]
        print(f"| recount sizes of one batch, {'with cells' if voronoi else 'components'} | main | {seconds:.3f} |")
    counts = maps[False].counts
    print(f"\ncomponents per sample (WT/TC/ET/RC): {['/'.join(map(str, c)) for c in counts.tolist()]}\n")

    generator = torch.Generator().manual_seed(0)
    logits = [torch.randn(t.shape, generator=generator) for t in targets]
    weights = deep_supervision_weights(OUTPUTS)
    theirs = DeepSupervisionWrapper(
        DC_and_BCE_loss({}, {"batch_dice": False, "do_bg": True, "smooth": 1e-5, "ddp": False},
                        dice_class=MemoryEfficientSoftDiceLoss),
        weights,
    )

    def step(loss, instances=None):
        outs = [x.clone().requires_grad_() for x in logits]
        value = loss(outs, targets) if instances is None else loss(outs, targets, instances)
        value.backward()

    base = timed(lambda: step(theirs), args.repeats, warmup=True)
    print("| loss (forward + backward, 5 outputs) | s | relative to nnU-Net's DC+BCE |\n|---|---|---|")
    print(f"| nnU-Net DC_and_BCE_loss | {base:.3f} | 1.00× |")
    for name, spec in LOSSES.items():
        needed = spec.needs_maps()
        options = {key: value for key, value in (("connectivity", 26), ("spacing", spacing)) if key in spec.options}
        loss = DeepSupervisedLoss(name, weights, mode="sigmoid", **options)
        instances = maps[needed.cells] if needed.components else None
        seconds = timed(lambda loss=loss, instances=instances: step(loss, instances), args.repeats, warmup=True)
        print(f"| workbench {name} | {seconds:.3f} | {seconds / base:.2f}× |")


def targets_of(targets: list[torch.Tensor], b: int) -> list[torch.Tensor]:
    """One sample's deep-supervision targets, as a worker's transform sees them."""
    return [t[b] for t in targets]


if __name__ == "__main__":
    main()
