"""Fixtures of the audit-view tests: a folder shaped like a training run."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from workbench.data.perturb import perturb_labels


@pytest.fixture(scope="session")
def training_run(tmp_path_factory):
    """A folder shaped like a `workbench train` run: config.yaml and predictions/ of a 2-case cohort."""
    from workbench.data.cohort import make_cohort
    from workbench.data.manifest import load_case, load_manifest
    from workbench.data.nifti import save_nifti

    root = tmp_path_factory.mktemp("audit_run")
    manifest_path = make_cohort(2, 3, root / "cohort", shape=(32, 32, 32))
    manifest = load_manifest(manifest_path)
    run = root / "run" / "train"
    (run / "predictions").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"manifest": str(manifest_path), "loss": "iwl_blob",
                                                     "loss_options": {"max_weight": 20.0}, "connectivity": 18}))
    for entry in manifest.cases:
        case = load_case(manifest, entry.id)
        prediction = perturb_labels(case.label, seed=1)
        save_nifti(run / "predictions" / f"{entry.id}.nii.gz", prediction.astype(np.uint8), case.affine)
    return root / "run", manifest
