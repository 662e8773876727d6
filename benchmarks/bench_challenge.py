"""Challenge scoring speed: ``workbench``'s ``brats_mets_2025`` preset against the official scorer.

The official pipeline is ``brats-evaluation`` 0.0.10 (panoptica with the bundled ``mets`` config,
reading the NIfTI files with SimpleITK, then ``parse_mets_results``). Both tools score the same
files; ``tests/oracles/test_oracle_brats.py`` checks that they give the same numbers.

Case mix (``--cases``; phantoms ``make_case(seed, shape)`` with a prediction from
``perturb_labels(label, seed=seed)``, label files written with ``save_nifti``):

* ``full-1``, ``full-7``, ``full-10``: 240×240×155 phantoms of seeds 1, 7, 10 (one lesion per
  region; about 10; 15–27 lesions per region);
* ``full-7-empty``: seed 7's reference against an empty prediction;
* ``small-3``: a 96³ phantom of seed 3.

Three measurements, in one process pinned to one core (``--core``; the CLI calls inherit it):

1. **in-process, files → leaderboard row** per case: ``evaluate_single_exam`` + the parser (the
   evaluator loaded once) against ``load_label`` twice + ``score_case``;
2. **per CLI call, one case**: ``brats-evaluate --config mets`` then ``brats-parse-metrics mets``
   on a folder holding that case, against ``workbench evaluate --preset brats_mets_2025
   --workers 1`` on a one-case manifest (start-up, reading, scoring and writing included);
3. **whole cohort through each CLI**: every case of the mix in one call of each tool.

Each measurement alternates the two tools ``--repeats`` times (official, workbench, official, ...)
after one warm-up of each, so that load from other processes on a shared machine falls on both
alike; the tables give the medians and the ratio of the medians.

Run it where brats-evaluation is installed, e.g. in the environment of ``nox -s oracles``:
    .nox/oracles/bin/python benchmarks/bench_challenge.py [--repeats 5] [--cli-repeats 3] [--cases full-1 small-3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import numpy as np

from workbench.data.manifest import CaseEntry, Manifest, write_manifest
from workbench.data.nifti import load_label, save_nifti
from workbench.data.perturb import perturb_labels
from workbench.data.phantoms import make_case
from workbench.labels import get_schema
from workbench.metrics.challenge import get_preset, score_case

FULL, SMALL = (240, 240, 155), (96, 96, 96)
CASES = {
    "full-1": (1, FULL, False),
    "full-7": (7, FULL, False),
    "full-10": (10, FULL, False),
    "full-7-empty": (7, FULL, True),
    "small-3": (3, SMALL, False),
}
"""Name -> (phantom seed, shape, empty prediction)."""

PRESET = get_preset("brats_mets_2025")


def write_case(folder: Path, index: int, name: str) -> tuple[str, Path, Path, Path]:
    """(case id, reference, prediction, image) files of one case of the mix, in ``folder``."""
    seed, shape, empty = CASES[name]
    case = make_case(seed, shape=shape)
    pred = np.zeros_like(case.label) if empty else perturb_labels(case.label, seed=seed)
    case_id = f"BraTS-MET-{index + 1:05d}-000"  # a name the official CLI pairs by its subject-id pattern
    paths = [folder / sub / f"{case_id}{suffix}" for sub, suffix in
             (("ref", "-seg.nii.gz"), ("pred", ".nii.gz"), ("img", "-t1c.nii.gz"))]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*case.spacing, 1.0])
    save_nifti(paths[0], case.label, affine)
    save_nifti(paths[1], pred, affine)
    save_nifti(paths[2], np.zeros(shape, dtype=np.float32), affine)  # the manifest needs one image per case
    return case_id, *paths


def alternate(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall times of ``first`` and ``second`` called alternately ``repeats`` times, after one warm-up each."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def in_process(cases: list[tuple[str, Path, Path, Path]], folder: Path) -> Callable[[int], list[tuple[float, float]]]:
    """A function timing every case in-process with ``repeats`` alternations."""
    from brats_evaluation.evaluation import evaluate_single_exam
    from brats_evaluation.metrics_parser import parse_mets_results
    from panoptica import Panoptica_Evaluator

    config = files("brats_evaluation").joinpath("configs", f"config_{PRESET.config}.yaml")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = Panoptica_Evaluator.load_from_config(str(config))

    def run(repeats: int) -> list[tuple[float, float]]:
        results = []
        for case_id, ref, pred, _ in cases:
            def official(ref: Path = ref, pred: Path = pred) -> None:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = evaluate_single_exam(str(pred), str(ref), ref.name, evaluator)
                    (folder / "m.json").write_text(json.dumps({"metrics": [result], "missings": []}))
                    parse_mets_results(str(folder / "m.json"), 20.0, 0.1, str(folder / "o.csv"))

            def ours(ref: Path = ref, pred: Path = pred, case_id: str = case_id) -> None:
                label, _, spacing = load_label(ref)
                score_case(load_label(pred)[0], label, preset=PRESET, spacing=spacing, case_id=case_id)

            results.append(alternate(official, ours, repeats))
        return results

    return run


def cli_calls(cases: list[tuple[str, Path, Path, Path]], folder: Path) -> tuple[list[str], list[str]]:
    """The official and the workbench command lines scoring ``cases`` (files copied under ``folder``)."""
    for sub in ("ref", "pred", "img"):
        (folder / sub).mkdir(parents=True)
    entries = []
    for case_id, ref, pred, image in cases:
        for source, sub in ((ref, "ref"), (pred, "pred"), (image, "img")):
            shutil.copy(source, folder / sub / source.name)
        entries.append(CaseEntry(case_id, {"t1c": folder / "img" / image.name}, folder / "ref" / ref.name))
    write_manifest(Manifest("bench", get_schema("brats_mets_2025"), ("t1c",), tuple(entries), folder),
                   folder / "manifest.yaml")
    bin_dir = Path(sys.executable).parent
    official = (
        f"{bin_dir / 'brats-evaluate'} --ref_path {folder / 'ref'} --pred_path {folder / 'pred'} --config mets "
        f"--summary_json {folder / 'summary.json'} && {bin_dir / 'brats-parse-metrics'} mets "
        f"--json_path {folder / 'summary.json'} --output_csv_path {folder / 'official.csv'}"
    )
    ours = (
        f"{bin_dir / 'workbench'} evaluate --preset brats_mets_2025 --pred {folder / 'pred'} "
        f"--manifest {folder / 'manifest.yaml'} -o {folder / 'out'} --workers 1 --overwrite"
    )
    return ["bash", "-c", official], ["bash", "-c", ours]


def shell(command: list[str]) -> Callable[[], None]:
    """A function running ``command`` silently, raising if it fails."""
    def run() -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=5, help="alternations per in-process measurement")
    parser.add_argument("--cli-repeats", type=int, default=3, help="alternations per CLI measurement (0: skip)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: no pinning)")
    args = parser.parse_args()
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"cores {sorted(os.sched_getaffinity(0))}; medians of {args.repeats} (in-process) and "
          f"{args.cli_repeats} (CLI) alternations")
    root = Path(tempfile.mkdtemp(prefix="bench_challenge_"))
    try:
        cases = [write_case(root / "cases", i, name) for i, name in enumerate(args.cases)]
        print("\n| case | official in-process (s) | workbench in-process (s) | ratio "
              "| official CLI (s) | workbench CLI (s) | ratio |\n|---|---|---|---|---|---|---|")
        timings = in_process(cases, root)(args.repeats)
        for i, (name, (theirs, ours)) in enumerate(zip(args.cases, timings)):
            cli = ""
            if args.cli_repeats:
                official, workbench = cli_calls([cases[i]], root / f"cli-{i}")
                cli_theirs, cli_ours = alternate(shell(official), shell(workbench), args.cli_repeats)
                cli = f" {cli_theirs:.2f} | {cli_ours:.2f} | {cli_theirs / cli_ours:.1f}× |"
            print(f"| {name} | {theirs:.3f} | {ours:.3f} | {theirs / ours:.1f}× |{cli or ' | | |'}", flush=True)
        if args.cli_repeats:
            official, workbench = cli_calls(cases, root / "cli-all")
            theirs, ours = alternate(shell(official), shell(workbench), args.cli_repeats)
            print(f"\nWhole cohort ({len(cases)} cases) through each CLI: official {theirs:.2f} s, "
                  f"workbench {ours:.2f} s, ratio {theirs / ours:.1f}×")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
