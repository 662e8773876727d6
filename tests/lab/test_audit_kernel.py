"""04_audit in a Jupyter kernel as `workbench lab` starts it: napari opens and stays live between cells.

The kernel comes from the lab's kernelspec (this Python, started in the project directory), so the
notebook's default ``run_dir`` (``runs/demo/losses/...``) resolves against the project folder, as on
the command line. The test then checks the Qt event-loop integration: a QTimer fires while the
kernel is idle between cells, and the viewer draws its layers.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from workbench.lab import write_kernelspec

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


class Kernel:
    """A kernel client that runs code and returns its printed text, failing on an error."""

    def __init__(self, client):
        self.client = client

    def run(self, code: str, timeout: float = 180.0) -> str:
        texts, errors = [], []

        def collect(message):
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                texts.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))

        self.client.execute_interactive(code, timeout=timeout, output_hook=collect)
        assert not errors, errors[0]
        return "".join(texts)


@pytest.fixture
def lab_kernel(tmp_path, display):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    project = tmp_path / "project"
    project.mkdir()
    write_kernelspec(tmp_path / "jupyter", project)
    manager = KernelManager(kernel_name="python3",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "jupyter" / "kernels")]))
    manager.start_kernel(cwd=str(NOTEBOOKS))  # JupyterLab starts a notebook's kernel in the notebook's folder
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield project, Kernel(client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def write_run(run: Path, cohort: Path) -> None:
    """A run folder as the demo leaves one, with perturbed reference labels as its predictions."""
    import pandas as pd
    import yaml

    from workbench.data.manifest import load_case, load_manifest
    from workbench.data.nifti import save_nifti
    from workbench.data.perturb import Perturbation, perturb_labels
    from workbench.metrics import lesion_table

    manifest = load_manifest(cohort)
    (run / "train" / "predictions").mkdir(parents=True)
    (run / "train" / "config.yaml").write_text(yaml.safe_dump({"manifest": str(cohort), "loss": "iwl_blob"}))
    tables = []
    for index, entry in enumerate(manifest.cases[:2]):
        case = load_case(manifest, entry.id)
        prediction = perturb_labels(case.label, seed=index, perturbation=Perturbation(drop=0.5))
        save_nifti(run / "train" / "predictions" / f"{entry.id}.nii.gz", prediction.astype(np.uint8), case.affine)
        tables.append(lesion_table(prediction, case.label, spacing=case.spacing, threshold=0.5, case_id=entry.id))
    pd.concat(tables, ignore_index=True).to_parquet(run / "lesions.parquet")


def test_the_audit_notebook_opens_a_live_napari_viewer_from_the_kernel(lab_kernel, tmp_path):
    from PIL import Image

    from workbench.data.cohort import make_cohort

    project, kernel = lab_kernel
    write_run(project / "runs" / "demo" / "losses" / "iwl_blob-a1.0-b1.0-s0",
              make_cohort(2, 0, tmp_path / "cohort", shape=(40, 40, 40)))
    assert kernel.run("import os; print(os.getcwd())").strip() == str(project)

    notebook = nbformat.read(NOTEBOOKS / "04_audit.ipynb", as_version=4)
    printed = "".join(kernel.run(cell.source) for cell in notebook.cells if cell.cell_type == "code")
    assert "From a shell: workbench audit runs/demo/losses/iwl_blob-a1.0-b1.0-s0 --case" in printed

    kernel.run(
        "from qtpy.QtCore import QTimer\n"
        "ticks = []\n"
        "timer = QTimer()\n"
        "timer.timeout.connect(lambda: ticks.append(1))\n"
        "timer.start(50)"
    )
    time.sleep(1.5)  # the kernel is idle: only Qt's event loop, run by the kernel, can fire the timer
    state = kernel.run(
        "timer.stop()\n"
        "print(len(ticks), get_ipython().active_eventloop, viewer.window._qt_window.isVisible(), len(viewer.layers))"
    ).split()
    assert int(state[0]) >= 10, f"the Qt event loop did not run while the kernel was idle ({state[0]} ticks)"
    assert state[1:3] == ["qt", "True"] and int(state[3]) >= 6
    shot = tmp_path / "audit.png"
    kernel.run(f"viewer.screenshot({str(shot)!r}, canvas_only=True)")  # the kernel shutdown closes it
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 10 and min(pixels.shape[:2]) > 200
