"""Time of all metrics for one whole case, workbench against panoptica, side by side.

One 240×240×155 phantom case (``make_case(seed, shape=(240, 240, 155))``) and a prediction made
from its labels by ``perturb_labels`` (lesions dropped, dilated, eroded; false-positive blobs).
Both tools evaluate the four BraTS-METS regions (WT, TC, ET, RC) at the three matching
thresholds 0.1, 0.3, 0.5 on the same arrays, with the same spacing:

* **workbench** — ``evaluate_case`` (Dice, PQ/SQ/RQ per threshold and size stratum, detection
  sensitivity/precision/F1, CC-Dice, surface Dice, HD95) in one call for all thresholds, and the
  same plus one ``lesion_table`` call for all thresholds (what ``workbench evaluate`` computes
  per case).
* **panoptica** — ``Panoptica_Evaluator`` with semantic input, connected components (cc3d),
  ``NaiveThresholdMatching`` on DSC, one evaluator per threshold (it matches at one threshold per
  run), region groups as ``LabelMergeGroup``; once with DSC only and once adding its surface
  metrics (HD95, NSD) as instance and global metrics.

Times are medians of ``--repeats`` runs after one warm-up, in one process pinned to one core
(``os.sched_setaffinity``; equivalently run under ``taskset -c 0``).

Run:  python benchmarks/bench_metrics.py [--seeds 7 10] [--repeats 5]
Target (DESIGN §7): ≤ 0.5 s per case on one core, and ≥ 4× faster than panoptica.

``--preset brats_mets_2025`` times the challenge scorer instead, from files to the leaderboard
row, side by side with the official pipeline: ``brats-evaluation``'s ``evaluate_single_exam``
(panoptica with the bundled ``mets`` config, reading the two NIfTI files) then its
``parse_mets_results``, against ``load_label`` twice and :func:`workbench.metrics.challenge.score_case`.
Target (issue 10): ≥ 10× faster on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import warnings
from collections.abc import Callable

import cc3d
import numpy as np
from _timing import timed

from workbench.data.perturb import perturb_labels
from workbench.data.phantoms import make_case
from workbench.labels import BRATS_METS_2025
from workbench.metrics import evaluate_case, lesion_table

SHAPE = (240, 240, 155)
THRESHOLDS = (0.1, 0.3, 0.5)


def components(label: np.ndarray) -> str:
    """Connected components (26) per BraTS-METS region, as ``WT/TC/ET/RC``."""
    regions = BRATS_METS_2025.regions.values()
    return "/".join(str(cc3d.connected_components(np.isin(label, r), return_N=True)[1]) for r in regions)


def panoptica_runner(surface: bool) -> Callable[[np.ndarray, np.ndarray, tuple[float, ...]], None]:
    """A function evaluating the four regions at every threshold with panoptica."""
    from panoptica import (
        ConnectedComponentsInstanceApproximator,
        InputType,
        Metric,
        NaiveThresholdMatching,
        Panoptica_Evaluator,
        disable_citation_reminder,
    )
    from panoptica.utils.edge_case_handling import (
        EdgeCaseHandler,
        EdgeCaseResult,
        MetricZeroTPEdgeCaseHandling,
    )
    from panoptica.utils.label_group import LabelMergeGroup
    from panoptica.utils.segmentation_class import SegmentationClassGroups

    disable_citation_reminder()
    metrics = [Metric.DSC, Metric.HD95, Metric.NSD] if surface else [Metric.DSC]
    # panoptica has no zero-TP policy for HD95 and NSD by default (it raises on a region without a
    # match, e.g. RC here); give them the policy of its ASSD (NaN if no instances, else inf / 0).
    zero_tp = EdgeCaseHandler(
        listmetric_zeroTP_handling={
            **EdgeCaseHandler().listmetric_zeroTP_handling,
            Metric.HD95: MetricZeroTPEdgeCaseHandling(no_instances_result=EdgeCaseResult.NAN,
                                                      default_result=EdgeCaseResult.INF),
            Metric.NSD: MetricZeroTPEdgeCaseHandling(no_instances_result=EdgeCaseResult.NAN,
                                                     default_result=EdgeCaseResult.ZERO),
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a notice about the overlapping regions
        groups = SegmentationClassGroups(
            {name.lower(): LabelMergeGroup(list(labels)) for name, labels in BRATS_METS_2025.regions.items()}
        )
    evaluators = [
        Panoptica_Evaluator(
            expected_input=InputType.SEMANTIC,
            instance_approximator=ConnectedComponentsInstanceApproximator(),
            instance_matcher=NaiveThresholdMatching(matching_metric=Metric.DSC, matching_threshold=t),
            segmentation_class_groups=groups,
            instance_metrics=metrics,
            global_metrics=metrics,
            edge_case_handler=zero_tp,
        )
        for t in THRESHOLDS
    ]

    def run(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> None:
        with warnings.catch_warnings():  # NSD warns that its default tolerance may not fit the data
            warnings.simplefilter("ignore", UserWarning)
            for evaluator in evaluators:
                evaluator.evaluate(pred, ref, voxelspacing=spacing, verbose=False)

    return run


def challenge_side_by_side(preset_name: str, seeds: list[int], repeats: int) -> None:
    """Files -> leaderboard row: brats-evaluation against workbench's preset, one case per seed."""
    import json
    import tempfile
    from importlib.resources import files
    from pathlib import Path

    from brats_evaluation.evaluation import evaluate_single_exam
    from brats_evaluation.metrics_parser import parse_mets_results, parse_seg_results
    from panoptica import Panoptica_Evaluator

    from workbench.data.nifti import load_label, save_nifti
    from workbench.metrics.challenge import get_preset, score_case

    preset = get_preset(preset_name)
    config = files("brats_evaluation").joinpath("configs", f"config_{preset.config}.yaml")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = Panoptica_Evaluator.load_from_config(str(config))
    folder = Path(tempfile.mkdtemp())
    print(f"| case | components WT/TC/ET/RC ref → pred | brats-evaluation (s) | workbench {preset.name} (s) | speed-up |")
    print("|---|---|---|---|---|")
    for seed in seeds:
        case = make_case(seed, shape=SHAPE)
        pred = perturb_labels(case.label, seed=seed)
        affine = np.diag([*case.spacing, 1.0])
        ref_path, pred_path = folder / f"ref-{seed:05d}.nii.gz", folder / f"pred-{seed:05d}.nii.gz"
        save_nifti(ref_path, case.label, affine)
        save_nifti(pred_path, pred, affine)

        def official() -> None:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = evaluate_single_exam(str(pred_path), str(ref_path), ref_path.name, evaluator)
                (folder / "m.json").write_text(json.dumps({"metrics": [result], "missings": []}))
                if preset.parser == "mets":
                    parse_mets_results(str(folder / "m.json"), 20.0, 0.1, str(folder / "o.csv"))
                else:
                    parse_seg_results(str(folder / "m.json"), str(folder / "o.csv"))

        def ours() -> None:
            ref, _, spacing = load_label(ref_path)
            score_case(load_label(pred_path)[0], ref, preset=preset, spacing=spacing, case_id=ref_path.name)

        theirs, mine = timed(official, repeats, warmup=True), timed(ours, repeats, warmup=True)
        counts = [components(x) for x in (case.label, pred)]
        print(f"| phantom seed {seed} | {counts[0]} → {counts[1]} | {theirs:.3f} | {mine:.3f} | {theirs / mine:.1f}× |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 10], help="phantom seeds (one case each)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: no pinning)")
    parser.add_argument("--preset", default=None, help="time this challenge preset against brats-evaluation instead")
    args = parser.parse_args()
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    cores = sorted(os.sched_getaffinity(0))
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, cores {cores}")
    print()
    if args.preset:
        challenge_side_by_side(args.preset, args.seeds, args.repeats)
        return
    print("| case | components WT/TC/ET/RC ref → pred | workbench evaluate_case (s) | + lesion tables (s) "
          "| panoptica DSC (s) | panoptica + HD95, NSD (s) | speed-up (DSC / surface) |")
    print("|---|---|---|---|---|---|---|")
    panoptica_dsc, panoptica_surface = panoptica_runner(False), panoptica_runner(True)
    for seed in args.seeds:
        case = make_case(seed, shape=SHAPE)
        ref = case.label
        pred = perturb_labels(ref, seed=seed)
        spacing = case.spacing
        counts = [components(x) for x in (ref, pred)]

        def workbench() -> None:
            evaluate_case(pred, ref, spacing=spacing, thresholds=THRESHOLDS)

        def workbench_with_lesions() -> None:
            workbench()
            lesion_table(pred, ref, spacing=spacing, threshold=THRESHOLDS)

        ours = timed(workbench, args.repeats, warmup=True)
        ours_lesions = timed(workbench_with_lesions, args.repeats, warmup=True)
        theirs = timed(lambda: panoptica_dsc(pred, ref, spacing), args.repeats, warmup=True)
        theirs_surface = timed(lambda: panoptica_surface(pred, ref, spacing), args.repeats, warmup=True)
        print(
            f"| phantom seed {seed} | {counts[0]} → {counts[1]} | {ours:.3f} | {ours_lesions:.3f} | {theirs:.3f} "
            f"| {theirs_surface:.3f} | {theirs / ours:.1f}× / {theirs_surface / ours:.1f}× |",
            flush=True,
        )
    print()
    print("panoptica times are for all three thresholds (one evaluator run per threshold); "
          "speed-up = panoptica / workbench evaluate_case.")


if __name__ == "__main__":
    main()
