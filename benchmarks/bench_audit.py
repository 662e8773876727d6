"""Time to open the napari audit view (to its first drawn frame) and to close it (needs a display: xvfb-run).

    xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/bench_audit.py [--repeats 3] [--run RUN_DIR CASE_ID] [--unbatched]

Case: a 96³ phantom whose prediction misses some lesions and invents 300 small blobs (hundreds of
false positives, as an undertrained model predicts), optionally also a case of a real run. Each
case is opened and closed ``--repeats`` times in one process (the first open also pays napari's
one-off costs: numba compiling its label colouring, Qt fonts), then once more under cProfile for
where the time goes. Targets (issue 22): open ≤ 20 s, close ≤ 5 s on an idle 2-core machine.
``--unbatched`` adds (and removes) the layers one scene-graph update at a time, as napari does
for a plugin reader's layers, instead of in one ``viewer.layers.batched_update()``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from contextlib import nullcontext

T0 = time.perf_counter()
import numpy as np  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from workbench.data.manifest import CaseData  # noqa: E402
from workbench.data.perturb import Perturbation, perturb_labels  # noqa: E402
from workbench.data.phantoms import MODALITIES, make_case  # noqa: E402
from workbench.labels import get_schema  # noqa: E402
from workbench.viz.audit import audit_viewer, lesion_table_widget  # noqa: E402
from workbench.viz.sources import AuditSource, run_source  # noqa: E402

IMPORT_S = time.perf_counter() - T0

#: (label, function name as cProfile lists it, file it is in) of the steps the breakdown reports.
STEPS = (
    ("lesion matching (lesion_table)", "lesion_table", "workbench/metrics/case.py"),
    ("layer data (workbench.viz.layers)", "layers", "workbench/viz/layers.py"),
    ("folding per-region layers (view_layers)", "view_layers", "workbench/viz/layers.py"),
    ("napari window (napari.Viewer)", "__init__", "napari/viewer.py"),
    ("adding the 13 layers (LayerList.insert)", "insert", "napari/components/layerlist.py"),
    ("napari scene-graph rebuilds", "_update_scenegraph", "napari/_vispy/canvas.py"),
    ("audit panel (AuditPanel.attach)", "attach", "workbench/viz/audit.py"),
    ("lesion table widget", "_fill_table", "workbench/viz/audit.py"),
    ("garbage collections", "<built-in method gc.collect>", ""),
    ("removing the layers (layers.clear)", "clear", "_collections_abc"),
)


def phantom_source(size: int = 96, false_positives: int = 300) -> AuditSource:
    case = make_case(7, shape=(size, size, size))
    prediction = perturb_labels(case.label, seed=0, perturbation=Perturbation(
        drop=0.3, false_positives=false_positives, fp_radius=(1, 2)))
    data = CaseData(id=f"phantom {size}³, {false_positives} FP blobs", image=case.image, label=case.label,
                    affine=np.eye(4), spacing=case.spacing, modalities=MODALITIES)
    return AuditSource(case=data, prediction=prediction, schema=get_schema("brats_mets_2025"), loss="iwl_cc")


def open_view(source: AuditSource):
    """Open the view and wait for its first drawn frame; returns the viewer and the seconds it took."""
    start = time.perf_counter()
    viewer = audit_viewer(source)
    drawn = []
    viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(lambda _event: drawn.append(True))
    while not drawn and time.perf_counter() - start < 600:
        QApplication.processEvents()
    return viewer, time.perf_counter() - start


def close_view(viewer) -> float:
    start = time.perf_counter()
    viewer.close()
    QApplication.processEvents()
    return time.perf_counter() - start


def breakdown(source: AuditSource) -> dict[str, float]:
    """Cumulative seconds of :data:`STEPS` over one profiled open and close (cProfile slows it ~1.5×)."""
    profile = cProfile.Profile()
    profile.enable()
    viewer, _ = open_view(source)
    close_view(viewer)
    profile.disable()
    stats = pstats.Stats(profile).stats
    out = {}
    for label, name, where in STEPS:
        seconds = [cumulative for (path, _, function), (_, _, _, cumulative, _) in stats.items()
                   if function == name and where in path]
        out[label] = max(seconds, default=0.0)
    return out


def measure(source: AuditSource, repeats: int) -> None:
    opens, closes, lesions = [], [], 0
    for _ in range(repeats):
        viewer, opened = open_view(source)
        lesions = lesion_table_widget(viewer).table.rowCount()
        opens.append(opened)
        closes.append(close_view(viewer))
    print(f"\n{source.case.id}: {source.case.label.shape}, {lesions} lesions in the table")
    print("| | first | median of the rest | all |\n|---|---|---|---|")
    for name, times in (("open (s)", opens), ("close (s)", closes)):
        rest = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        print(f"| {name} | {times[0]:.1f} | {rest:.1f} | {' '.join(f'{t:.1f}' for t in times)} |")
    print("\nwhere the time goes (one profiled open + close):\n| step | s |\n|---|---|")
    for label, seconds in breakdown(source).items():
        print(f"| {label} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="opens and closes per case (default 3)")
    parser.add_argument("--run", nargs=2, metavar=("RUN_DIR", "CASE_ID"), help="also a case of a run")
    parser.add_argument("--unbatched", action="store_true", help="one scene-graph update per layer added or removed")
    args = parser.parse_args()
    if args.unbatched:
        from napari.components import LayerList

        LayerList.batched_update = lambda self: nullcontext()
    print(f"import napari + workbench.viz.audit: {IMPORT_S:.1f} s")
    start = time.perf_counter()
    sources = [phantom_source()]
    print(f"96³ phantom and prediction: {time.perf_counter() - start:.1f} s (not part of the view)")
    if args.run:
        start = time.perf_counter()
        sources.append(run_source(*args.run))
        print(f"run_source({args.run[1]}): {time.perf_counter() - start:.1f} s (reads the run's config and case)")
    for source in sources:
        measure(source, args.repeats)


if __name__ == "__main__":
    main()
