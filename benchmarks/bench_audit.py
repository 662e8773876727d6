"""Time to open the napari audit view and to go to a lesion (needs a display: xvfb-run).

    xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/bench_audit.py [RUN_DIR CASE_ID]

Cases: a 40³ and a 96³ phantom with a perturbed prediction (a handful of lesions), and optionally
a case of a real run (e.g. the demo's, whose undertrained models predict thousands of specks).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from qtpy.QtWidgets import QApplication

from workbench.data.manifest import CaseData
from workbench.data.perturb import Perturbation, perturb_labels
from workbench.data.phantoms import MODALITIES, make_case
from workbench.labels import get_schema
from workbench.viz.audit import audit_viewer, lesion_table_widget
from workbench.viz.sources import AuditSource, run_source


def phantom(size: int) -> AuditSource:
    case = make_case(7, shape=(size, size, size))
    prediction = perturb_labels(case.label, seed=0, perturbation=Perturbation(drop=0.5))
    data = CaseData(id=f"phantom {size}³", image=case.image, label=case.label, affine=np.eye(4), spacing=case.spacing,
                    modalities=MODALITIES)
    return AuditSource(case=data, prediction=prediction, schema=get_schema("brats_mets_2025"), loss="iwl_cc")


def measure(source: AuditSource) -> None:
    start = time.perf_counter()
    viewer = audit_viewer(source)
    QApplication.processEvents()
    opened = time.perf_counter() - start
    table = lesion_table_widget(viewer)
    rows = table.table.rowCount()
    start = time.perf_counter()
    for row in range(min(rows, 10)):
        table.select(row)
        QApplication.processEvents()
    per_lesion = (time.perf_counter() - start) / max(min(rows, 10), 1)
    start = time.perf_counter()
    viewer.close()
    closed = time.perf_counter() - start
    print(f"{source.case.id:>28}: {rows:6d} lesions, open {opened:6.1f} s, "
          f"go to a lesion {per_lesion:5.2f} s, close {closed:5.1f} s")


if __name__ == "__main__":
    sources = [phantom(40), phantom(96)]
    if len(sys.argv) == 3:
        sources.append(run_source(sys.argv[1], sys.argv[2]))
    for source in sources:
        measure(source)
