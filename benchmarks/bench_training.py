"""Training iterations per second for every loss: one optimiser step on a fixed batch.

A batch of B = 2 patches (default 128³, the nnU-Net patch) is drawn once from a phantom case by
the training data pipeline (instance maps and, for cc / iwl_cc, Voronoi cells included); then
each loss runs ``--steps`` optimiser steps of the training loop (forward, loss, backward, clip,
SGD step) after one warm-up step. The data loader is not timed: in training it runs in worker
processes in parallel with the step. The network is the nnU-Net-style DynUNet of the default
config unless ``--filters`` says otherwise.

Run:  python benchmarks/bench_training.py [--patch 128] [--filters 32 64 128 256 320 320] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from workbench.data.cohort import make_cohort
from workbench.losses import LOSS_NAMES
from workbench.training import loop, validate
from workbench.training.checkpoint import seed_everything
from workbench.training.data import collate_patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", type=int, default=128, help="cubic patch size (default 128)")
    parser.add_argument("--filters", type=int, nargs="+", default=None, help="DynUNet features per level")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loss")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--mode", choices=("sigmoid", "softmax"), default="sigmoid")
    parser.add_argument("--losses", nargs="+", default=list(LOSS_NAMES), choices=LOSS_NAMES)
    args = parser.parse_args()

    size = max(args.patch, 96)
    with tempfile.TemporaryDirectory() as folder:
        manifest = make_cohort(1, 0, folder, shape=(size, size, size))
        print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, device {args.device}, patch {args.patch}³, batch 2, mode {args.mode}")
        print(f"{'loss':<18}{'s / step':>10}{'steps / s':>11}")
        for name in args.losses:
            fields = {
                "manifest": str(manifest), "out_dir": folder, "loss": name, "mode": args.mode,
                "patch_size": [args.patch] * 3, "device": args.device, "workers": 0, "progress": False,
                "train_cases": ["phantom-000"], "val_cases": [], "foreground_fraction": 1.0,
            }
            if args.filters:
                fields["filters"] = args.filters
            config = validate(fields)
            seed_everything(0)
            _, schema, cases, _ = loop._load_data(config)
            dataset = loop._dataset(config, schema, cases)
            batch = collate_patches([dataset[0], dataset[1]])
            state = loop._build_state(config, schema, cases[0].image.shape[0])
            loop._train_step(state, batch, config)  # warm-up
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                loop._train_step(state, batch, config)
            if args.device == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / args.steps
            print(f"{name:<18}{seconds:>10.3f}{1 / seconds:>11.3f}")


if __name__ == "__main__":
    main()
