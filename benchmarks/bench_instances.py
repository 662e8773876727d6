"""Instance precompute for one whole BraTS-size case, against scipy run side by side.

Measures ``workbench.instances.instance_maps`` (components + sizes + bounding boxes + Voronoi
cells) for the four BraTS-METS regions of a 240×240×155 phantom case, and the same outputs
from a plain scipy pipeline (``ndimage.label``, ``bincount``, ``find_objects`` and
``distance_transform_edt(return_indices=True)``, the usual way to get Voronoi cells), on one
core. Also the cost on a 128³ training patch, where maps are recomputed per patch.

Run:  python benchmarks/bench_instances.py            (prints a Markdown table)
Target (DESIGN §7): ≤ 0.5 s for the whole case on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402
import scipy.ndimage as ndi  # noqa: E402
from _timing import timed  # noqa: E402

from workbench.data.phantoms import make_case  # noqa: E402
from workbench.instances import instance_maps  # noqa: E402
from workbench.labels import BRATS_METS_2025  # noqa: E402


def scipy_instance_maps(masks: np.ndarray, spacing: tuple[float, ...]) -> list[tuple]:
    """The same outputs as instance_maps for (R, *S) masks, from scipy alone."""
    structure = ndi.generate_binary_structure(masks.ndim - 1, masks.ndim - 1)  # 26-connectivity
    out = []
    for mask in masks:
        ids, n = ndi.label(mask, structure=structure)
        sizes = np.bincount(ids.ravel(), minlength=n + 1)[1:]
        boxes = ndi.find_objects(ids)
        if n > 1:
            nearest = ndi.distance_transform_edt(ids == 0, sampling=spacing, return_distances=False, return_indices=True)
            cells = ids[tuple(nearest)]
        else:
            cells = np.full(mask.shape, n, dtype=ids.dtype)
        out.append((ids, sizes, boxes, cells))
    return out


def _mm(spacing: tuple[float, ...]) -> str:
    return "×".join(f"{s:.2f}" for s in spacing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 7, 9, 10],
        help="phantom seeds; the defaults span 1 to 40 metastases, seed 9 has a resection cavity",
    )
    parser.add_argument("--shape", type=int, nargs=3, default=[240, 240, 155])
    parser.add_argument("--spacing", type=float, nargs=3, default=None, help="mm; default: brain fitted, isotropic")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, one thread used; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print()
    print("| case | shape | components WT/TC/ET/RC | workbench (s) | scipy (s) | scipy / workbench |")
    print("|---|---|---|---|---|---|")
    warm = make_case(0, shape=(32, 32, 32))
    instance_maps(BRATS_METS_2025.to_region_masks(warm.label)[None], mode="sigmoid", spacing=warm.spacing)
    ours_all, ref_all = [], []
    for seed in args.seeds:
        case = make_case(seed, shape=tuple(args.shape), spacing=args.spacing and tuple(args.spacing))
        masks = BRATS_METS_2025.to_region_masks(case.label)
        maps = instance_maps(masks[None], mode="sigmoid", spacing=case.spacing)
        ref = scipy_instance_maps(masks, case.spacing)
        for k, (ids, sizes, _, cells) in enumerate(ref):
            assert maps.counts[0, k] == sizes.size
            assert sorted(maps.sizes[0][k].tolist()) == sorted(sizes.tolist())
            same = np.mean(maps.cells[0, k] == cells) if maps.counts[0, k] < 2 else np.mean(
                (maps.cells[0, k] > 0) == (cells > 0)
            )
            assert same == 1.0
        ours = timed(lambda: instance_maps(masks[None], mode="sigmoid", spacing=case.spacing), args.repeats)
        theirs = timed(lambda: scipy_instance_maps(masks, case.spacing), max(1, args.repeats // 2))
        ours_all.append(ours)
        ref_all.append(theirs)
        counts = "/".join(str(int(c)) for c in maps.counts[0])
        print(f"| phantom seed {seed} | {tuple(args.shape)} @ {_mm(case.spacing)} mm | {counts} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}× |")

    patch = make_case(args.seeds[0], shape=(128, 128, 128))
    patch_masks = BRATS_METS_2025.to_region_masks(patch.label)
    ours = timed(lambda: instance_maps(patch_masks[None], mode="sigmoid", spacing=patch.spacing), args.repeats)
    theirs = timed(lambda: scipy_instance_maps(patch_masks, patch.spacing), max(1, args.repeats // 2))
    counts = "/".join(str(int(c)) for c in instance_maps(patch_masks[None], mode="sigmoid").counts[0])
    print(f"| 128³ patch (seed {args.seeds[0]}) | (128, 128, 128) | {counts} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}× |")
    print()
    print(f"median over cases: workbench {statistics.median(ours_all):.3f} s, scipy {statistics.median(ref_all):.3f} s")


if __name__ == "__main__":
    main()
