"""Dataset instance statistics against hand-counted label maps."""

from __future__ import annotations

import numpy as np

from workbench.data.manifest import CaseEntry, Manifest
from workbench.data.nifti import save_nifti
from workbench.data.summary import summarise
from workbench.labels import BRATS_METS_2025


def test_summary_counts_components_per_region(tmp_path):
    # Case a: one lesion = ET rim voxel next to a NETC core, inside SNFH; a separate tiny ET.
    # Case b: one resection cavity only.
    a = np.zeros((12, 12, 12), dtype=np.uint8)
    a[2:6, 2:6, 2:6] = 2
    a[3:5, 3:5, 3:5] = 3
    a[3, 3, 3] = 1
    a[10, 10, 10] = 3
    b = np.zeros((12, 12, 12), dtype=np.uint8)
    b[1:4, 1:4, 1:3] = 4
    cases = []
    for cid, label in (("a", a), ("b", b)):
        image = tmp_path / f"{cid}-t1.nii.gz"
        seg = tmp_path / f"{cid}-seg.nii.gz"
        save_nifti(image, label.astype(np.float32), spacing=(1.0, 1.0, 2.0))
        save_nifti(seg, label, spacing=(1.0, 1.0, 2.0))
        cases.append(CaseEntry(cid, {"t1": image}, seg, "train"))
    manifest = Manifest("toy", BRATS_METS_2025, ("t1",), tuple(cases), tmp_path)
    per_case, per_region = summarise(manifest)

    counts = per_case.set_index(["case", "region"])["components"]
    assert counts[("a", "WT")] == 2 and counts[("a", "TC")] == 2 and counts[("a", "ET")] == 2
    assert counts[("a", "RC")] == 0 and counts[("b", "RC")] == 1 and counts[("b", "WT")] == 0
    table = per_region.set_index("region")
    assert table.loc["WT", "cases_present"] == 1 and table.loc["RC", "cases_present"] == 1
    assert table.loc["WT", "total_voxels"] == 64 + 1
    assert table.loc["RC", "median_size_mm3"] == 18 * 2.0
    # WT components: the 4³ lesion (64 voxels) and the single ET voxel → median (128 + 2) / 2 mm³.
    assert table.loc["WT", "median_size_mm3"] == (64 * 2.0 + 2.0) / 2
