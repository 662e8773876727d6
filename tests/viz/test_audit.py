"""The napari audit view in a real viewer on a virtual display, and where it reads its cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.data.manifest import CaseData
from workbench.data.perturb import Perturbation, perturb_labels
from workbench.data.phantoms import MODALITIES, make_case
from workbench.labels import get_schema
from workbench.metrics import lesion_table
from workbench.viz import STATUS_COLOURS
from workbench.viz.sources import AuditSource, files_source, run_source

SCHEMA = get_schema("brats_mets_2025")


@pytest.fixture(scope="module")
def phantom_source():
    phantom = make_case(7, shape=(40, 40, 40))
    prediction = perturb_labels(phantom.label, seed=0, perturbation=Perturbation(drop=0.5))
    case = CaseData(id="p7", image=phantom.image, label=phantom.label, affine=np.eye(4), spacing=phantom.spacing,
                    modalities=MODALITIES)
    return AuditSource(case=case, prediction=prediction, schema=SCHEMA, loss="iwl_cc")


@pytest.fixture(scope="module")
def phantom_viewer(display, phantom_source):
    """One viewer for the tests below: napari takes seconds per layer to open and close one."""
    from workbench.viz.audit import audit_viewer

    viewer = audit_viewer(phantom_source)
    yield viewer
    viewer.close()


def displayed_centre(viewer):
    return np.asarray(viewer.scene.camera.center)[-2:]


def test_the_audit_view_lists_every_lesion_and_goes_to_a_miss(phantom_viewer, phantom_source, tmp_path):
    from workbench.viz.audit import lesion_table_widget, save_screenshot

    case = phantom_source.case
    lesions = lesion_table(phantom_source.prediction, case.label, spacing=case.spacing, threshold=0.5)
    viewer = phantom_viewer
    widget = lesion_table_widget(viewer)
    assert widget.table.rowCount() == len(lesions)
    statuses = [widget.lesion_at(r)["status"] for r in range(widget.table.rowCount())]
    assert statuses == sorted(statuses, key=["FN", "FP", "TP"].index), "misses first, then FPs, then TPs"
    assert statuses[0] == "FN"

    widget.select(0)
    miss = widget.lesion_at(0)
    world = miss[["centroid_z", "centroid_y", "centroid_x"]].to_numpy(float) * np.asarray(case.spacing)
    sliced, rows, columns = viewer.dims.order
    assert viewer.dims.point[sliced] == pytest.approx(world[sliced], abs=max(case.spacing))
    np.testing.assert_allclose(displayed_centre(viewer), world[[rows, columns]])
    status_layers = {layer.metadata["workbench"]["status"]: layer for layer in viewer.layers
                     if layer.metadata.get("workbench", {}).get("kind") == "status"}
    assert sorted(status_layers) == ["FN", "FP", "TP"], "one layer per status, showing the selected lesion's region"
    assert status_layers["FN"].name == f"{miss['region']} FN"
    assert miss["id"] in np.unique(status_layers["FN"].data)
    points = viewer.layers["lesions"]
    np.testing.assert_array_equal(points.shown, points.features["region"].to_numpy() == miss["region"])
    for layer in viewer.layers:
        assert tuple(layer.scale) == pytest.approx(case.spacing), layer.name

    image = save_screenshot(viewer, tmp_path / "audit.png", first_lesion=False)
    assert (tmp_path / "audit.png").stat().st_size > 10_000
    assert image.std() > 20, "the screenshot is blank"
    fn_colour = np.array([int(STATUS_COLOURS["FN"][i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(image[..., :3].astype(int) - fn_colour).sum(-1) < 40).sum() > 20, "the FN colour is not on screen"


def test_n_and_p_step_through_misses_and_false_positives(phantom_viewer):
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    from workbench.viz.audit import lesion_table_widget

    viewer = phantom_viewer
    widget = lesion_table_widget(viewer)
    widget.table.clearSelection()
    widget.table.setCurrentCell(-1, -1)
    errors = [r for r in widget.listed_rows() if widget.lesion_at(r)["status"] != "TP"]
    assert len(errors) >= 2 and len(widget.listed_rows()) < widget.table.rowCount(), "the list shows one region"
    canvas = viewer.window._qt_viewer.canvas.native
    visited = []
    for _ in range(len(errors) + 1):
        QTest.keyClick(canvas, Qt.Key.Key_N)
        QApplication.processEvents()
        visited.append(widget.table.currentRow())
    assert visited == [*errors, errors[0]], "n visits every FN/FP row in order, then wraps"
    QTest.keyClick(canvas, Qt.Key.Key_P)
    QApplication.processEvents()
    assert widget.table.currentRow() == errors[-1]


def test_a_two_dimensional_case(display):
    from workbench.viz.audit import audit_viewer, lesion_table_widget

    reference = np.zeros((30, 40), dtype=np.uint8)
    reference[3:8, 3:8] = 3
    reference[20:24, 30:35] = 3
    prediction = np.zeros_like(reference)
    prediction[3:8, 3:8] = 3
    case = CaseData(id="slice", image=np.random.default_rng(0).random((1, 30, 40), dtype=np.float32), label=reference,
                    affine=np.eye(4), spacing=(0.5, 2.0), modalities=("flair",))
    viewer = audit_viewer(AuditSource(case=case, prediction=prediction, schema=SCHEMA))
    try:
        widget = lesion_table_widget(viewer)
        assert [widget.lesion_at(r)["status"] for r in range(widget.table.rowCount())] == ["FN", "FN", "FN", "TP", "TP", "TP"]
        widget.select(0)
        np.testing.assert_allclose(displayed_centre(viewer), [21.5 * 0.5, 32.0 * 2.0])
    finally:
        viewer.close()


def test_run_source_reads_case_prediction_and_loss(training_run):
    run, manifest = training_run
    case_ids = sorted(entry.id for entry in manifest.cases)
    source = run_source(run, case_ids[1])
    assert source.case.id == case_ids[1] and source.prediction.shape == source.case.label.shape
    assert (source.loss, source.loss_options, source.connectivity) == ("iwl_blob", {"max_weight": 20.0}, 18)
    assert run_source(run / "train").case.id == case_ids[0]
    predictions = run / "train" / "predictions"
    for k in range(12):  # a demo-sized run: the message names a few of its cases, not all
        (predictions / f"zz-{k:02d}.nii.gz").symlink_to(predictions / f"{case_ids[0]}.nii.gz")
    try:
        with pytest.raises(FileNotFoundError, match=r"holds .*, zz-05, \.\.\. \(14 in all\)\. Pass one"):
            run_source(run, "phantom-016")
    finally:
        for k in range(12):
            (predictions / f"zz-{k:02d}.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=rf"no prediction for case 'nope': a run predicts only its "
                       rf"validation cases .* holds {case_ids[0]}, {case_ids[1]}\. Pass one"):
        run_source(run, "nope")
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        run_source(run / "train" / "predictions")


def test_files_source_checks_the_grid(training_run, tmp_path):
    from workbench.data.nifti import save_nifti

    run, manifest = training_run
    entry = manifest.cases[0]
    source = files_source([entry.images["t1c"]], entry.label, run / "train" / "predictions" / f"{entry.id}.nii.gz")
    assert source.case.modalities == (Path(entry.images["t1c"]).name.removesuffix(".nii.gz"),)
    assert source.case.image.shape == (1, *source.prediction.shape) and source.loss is None
    other = tmp_path / "other.nii.gz"
    save_nifti(other, np.zeros((32, 32, 30), dtype=np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="other.nii.gz.*voxel grid"):
        files_source([entry.images["t1c"]], entry.label, other)


def test_cli_audit_saves_a_screenshot_of_a_run(display, training_run, tmp_path, capsys):
    from workbench.cli import main

    run, manifest = training_run
    png = tmp_path / "shot.png"
    assert main(["audit", str(run), "--case", manifest.cases[0].id, "--screenshot", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["audit", str(run), "--image", str(png)]) == 1
    assert "not both" in capsys.readouterr().err
