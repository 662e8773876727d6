"""Dataset instance statistics against hand-counted label maps."""

from __future__ import annotations

import numpy as np

from workbench.data.manifest import CaseEntry, Manifest
from workbench.data.nifti import save_nifti
from workbench.data.summary import stratum_counts, summarise
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


def test_stratum_counts_bin_each_split_s_lesions_by_volume():
    import pandas as pd

    per_case = pd.DataFrame([
        {"case": "a", "split": "train", "region": "WT", "components": 3, "volumes_mm3": [50.0, 100.0, 5000.0]},
        {"case": "a", "split": "train", "region": "RC", "components": 0, "volumes_mm3": []},
        {"case": "b", "split": "test", "region": "WT", "components": 2, "volumes_mm3": [99.9, 999.9]},
        {"case": "b", "split": "test", "region": "RC", "components": 1, "volumes_mm3": [1000.0]},
        {"case": "c", "split": "test", "region": "WT", "components": 1, "volumes_mm3": [10.0]},
        {"case": "c", "split": "test", "region": "RC", "components": 0, "volumes_mm3": []},
    ])
    table = stratum_counts(per_case)
    assert list(table.index) == ["train", "test"]
    assert list(table.columns.get_level_values(0)) == ["WT"] * 3 + ["RC"] * 3
    assert table.loc["train", "WT"].tolist() == [1, 1, 1] and table.loc["test", "WT"].tolist() == [2, 1, 0]
    assert table.loc["train", "RC"].tolist() == [0, 0, 0] and table.loc["test", "RC"].tolist() == [0, 0, 1]
