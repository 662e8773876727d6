"""Forward + backward time of every loss against DC+CE alone and against the loop oracle.

B = 2, 4 foreground classes (softmax, 5 channels), targets with exactly N components per class
(N = 1, 10, 100, 1,000: small cubes on a grid, never touching), 64³ and 128³. Instance maps are
precomputed, as the data loader does in training, so the timings are of the loss alone. The
loop oracle (``workbench/losses/reference.py``) runs up to 10 components per class: it keeps an
autograd graph per component, so its memory grows with N.

Every loss computes its sums with the default backend of the device (CPU: the fused numba kernels;
CUDA: torch ops); the "dc_ce, torch ops" column is DC+CE on torch's own ops, for scale.

Run:  python benchmarks/bench_losses.py [--device cuda] [--sizes 64 128] [--components 1 10 100 1000]
Target (DESIGN §7): every instance loss (with the global term) ≤ 1.5× DC+CE, flat in N.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
from unittest import mock

import numpy as np
import torch
from _timing import timed

from workbench.instances import instance_maps
from workbench.losses import LOSS_NAMES, build_loss, combined, sums
from workbench.losses.reference import reference_loss

CLASSES = 4
BATCH = 2
COLUMNS = [(name, {"name": name}) for name in LOSS_NAMES]
COLUMNS.insert(1, ("dc_ce, torch ops", {"name": "dc_ce", "backend": "torch"}))
COLUMNS.insert(3, ("blob (base=dice)", {"name": "blob", "kw": {"base": "dice"}}))


def with_backend(loss, backend: str | None):
    """``loss`` computing its sums with ``backend`` ("torch": torch's own ops, as on CUDA; None: the default)."""
    if backend is None:
        return loss

    def run(*args):
        with mock.patch.object(combined, "voxel_sums", functools.partial(sums.voxel_sums, backend=backend)):
            return loss(*args)

    return run


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", choices=("softmax", "sigmoid"), default="softmax",
                        help="softmax: 5 channels and a class map; sigmoid: 4 region channels and masks")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--components", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per loss, each beside a DC+CE run")
    parser.add_argument(
        "--oracle-max-components", type=int, default=10,
        help="run the loop oracle only up to this many components per class (it keeps one autograd graph "
        "per component: memory grows with N)",
    )
    args = parser.parse_args()

    device = args.device
    sync = torch.cuda.synchronize if device == "cuda" else None
    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, {args.mode} mode")
    print()
    print("| size | N / class | " + " | ".join(label for label, _ in COLUMNS) + " | loop oracle (blob) |")
    print("|---|---|" + "---|" * (len(COLUMNS) + 1))
    for size in args.sizes:
        for n in args.components:
            target_np = grid_target(size, n, seed=size + n)
            if args.mode == "sigmoid":  # one region per class: the same components, as masks
                target_np = np.stack([target_np == k for k in range(1, CLASSES + 1)], axis=1).astype(np.float32)
                maps = instance_maps(target_np, "sigmoid")
            else:
                maps = instance_maps(target_np, num_classes=CLASSES)
            assert (maps.counts == n).all(), maps.counts
            target = torch.from_numpy(target_np).to(device)
            channels = CLASSES + (args.mode == "softmax")
            logits = torch.randn(BATCH, channels, size, size, size, device=device, requires_grad=True)

            def run(loss):
                value = loss(logits, target, maps)
                value.backward()
                logits.grad = None

            # Each loss is timed alternately with DC+CE, and compared with the DC+CE runs beside it,
            # so that drift of this shared machine cancels out of the ratios.
            reference = build_loss("dc_ce", mode=args.mode)
            run(reference)
            baseline, ratios = [], []
            for label, options in COLUMNS[1:]:
                loss = with_backend(build_loss(options["name"], mode=args.mode, **options.get("kw", {})), options.get("backend"))
                run(loss)  # warm-up
                pairs = [(timed(lambda: run(reference), synchronize=sync), timed(lambda: run(loss), synchronize=sync))
                         for _ in range(args.repeats)]
                base_times, loss_times = zip(*pairs)
                baseline.extend(base_times)
                ratios.append(statistics.median(loss_times) / statistics.median(base_times))
            base = statistics.median(baseline)
            cells = [f"{base * 1e3:.0f} ms"] + [f"{r:.2f}×" for r in ratios]
            if n <= args.oracle_max_components:
                def oracle():
                    value = reference_loss("blob", logits, target, mode=args.mode)
                    value.backward()
                    logits.grad = None

                cells.append(f"{timed(oracle, synchronize=sync) / base:.0f}×")
            else:
                cells.append("skipped")
            print(f"| {size}³ | {n} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("dc_ce column: absolute time of DC+CE; other columns: time relative to it.")


if __name__ == "__main__":
    main()
