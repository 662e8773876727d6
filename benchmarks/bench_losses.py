"""Forward + backward time of every loss against DC+CE alone and against the loop oracle.

B = 2, 4 foreground classes (softmax, 5 channels), targets with exactly N components per class
(N = 1, 10, 100, 1,000: small cubes on a grid, never touching), 64³ and 128³. Instance maps are
precomputed, as the data loader does in training, so the timings are of the loss alone. The
loop oracle (``workbench/losses/reference.py``) runs only where it finishes in reasonable time.

Run:  python benchmarks/bench_losses.py [--device cuda] [--sizes 64 128] [--components 1 10 100 1000]
Target (DESIGN §7): every instance loss (with the global term) ≤ 1.5× DC+CE, flat in N.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from workbench.instances import instance_maps
from workbench.losses import LOSS_NAMES, build_loss
from workbench.losses.reference import reference_loss

CLASSES = 4
BATCH = 2


def grid_target(size: int, components: int, seed: int) -> np.ndarray:
    """(B, S, S, S) class map with exactly ``components`` cubes per class, none touching."""
    rng = np.random.default_rng(seed)
    cell = size // 16
    cells = [(z, y, x) for z in range(16) for y in range(16) for x in range(16)]
    target = np.zeros((BATCH, size, size, size), dtype=np.int64)
    for b in range(BATCH):
        chosen = rng.permutation(len(cells))[: components * CLASSES]
        for i, index in enumerate(chosen):
            z, y, x = (c * cell for c in cells[index])
            side = int(rng.integers(1, cell))  # leaves a gap of ≥ 1 voxel to the next cell
            target[b, z : z + side, y : y + side, x : x + side] = i % CLASSES + 1
    return target


def timed(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--components", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-budget", type=float, default=20.0, help="skip the loop oracle when it would take longer (s)")
    args = parser.parse_args()

    device = args.device
    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    print()
    print("| size | N / class | " + " | ".join(LOSS_NAMES) + " | loop oracle (blob) |")
    print("|---|---|" + "---|" * (len(LOSS_NAMES) + 1))
    for size in args.sizes:
        for n in args.components:
            target_np = grid_target(size, n, seed=size + n)
            maps = instance_maps(target_np, num_classes=CLASSES)
            assert (maps.counts == n).all(), maps.counts
            target = torch.from_numpy(target_np).to(device)
            logits = torch.randn(BATCH, CLASSES + 1, size, size, size, device=device, requires_grad=True)

            def run(loss):
                value = loss(logits, target, maps)
                value.backward()
                logits.grad = None

            seconds = {}
            for loss_name in LOSS_NAMES:
                loss = build_loss(loss_name)
                run(loss)  # warm-up
                seconds[loss_name] = timed(lambda: run(loss), args.repeats, device)
            base = seconds["dc_ce"]
            cells = [f"{seconds['dc_ce'] * 1e3:.0f} ms"] + [f"{seconds[k] / base:.2f}×" for k in LOSS_NAMES[1:]]
            estimate = seconds["dc_ce"] * n * CLASSES * BATCH / 8  # very rough: one masked pass per component
            if estimate < args.reference_budget:
                def oracle():
                    value = reference_loss("blob", logits, target)
                    value.backward()
                    logits.grad = None

                cells.append(f"{timed(oracle, 1, device) / base:.1f}×")
            else:
                cells.append("skipped")
            print(f"| {size}³ | {n} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("dc_ce column: absolute time of DC+CE; other columns: time relative to it.")


if __name__ == "__main__":
    main()
