"""The audit view on a case with many false positives, in a real viewer on a virtual display:
which markers carry text, and how the region drop-down, status boxes, size range, sorting and
keys n / p act on the lesion list and the layers."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.manifest import CaseData
from workbench.data.perturb import Perturbation, perturb_labels
from workbench.data.phantoms import MODALITIES, make_case
from workbench.labels import get_schema
from workbench.viz.layers import DEFAULT_LABELS, NEIGHBOURS
from workbench.viz.sources import AuditSource

SCHEMA = get_schema("brats_mets_2025")


@pytest.fixture(scope="module")
def crowded_viewer(display):
    """A 32³ phantom whose prediction misses some lesions and invents 40 blobs (~90 lesions over 4 regions)."""
    from workbench.viz.audit import audit_viewer

    phantom = make_case(7, shape=(32, 32, 32))
    prediction = perturb_labels(phantom.label, seed=0, perturbation=Perturbation(
        drop=0.4, dilate=0.0, erode=0.0, false_positives=40, fp_radius=(1, 1)))
    case = CaseData(id="crowded", image=phantom.image, label=phantom.label, affine=np.eye(4), spacing=phantom.spacing,
                    modalities=MODALITIES)
    viewer = audit_viewer(AuditSource(case=case, prediction=prediction, schema=SCHEMA))
    yield viewer
    viewer.close()
    assert len(viewer.layers) == 0


@pytest.fixture
def widget(crowded_viewer):
    """The lesion table with its filters reset: every status, no size bounds."""
    from workbench.viz.audit import lesion_table_widget

    table = lesion_table_widget(crowded_viewer)
    for box in table.statuses.values():
        box.setChecked(True)
    table.min_size.setValue(0)
    table.max_size.setValue(0)
    table.table.sortItems(0)
    table.table.clearSelection()
    table.table.setCurrentCell(-1, -1)
    return table


def process_events():
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()


def listed(widget, column="status"):
    return [widget.lesion_at(row)[column] for row in widget.listed_rows()]


def drawn_texts(viewer):
    """The non-empty texts napari draws for the lesion markers on the current slice."""
    points = viewer.layers["lesions"]
    return [t for t in points._view_text if t]


def test_markers_are_plain_except_the_selected_lesion_and_its_neighbours(crowded_viewer, widget):
    points = crowded_viewer.layers["lesions"]
    shown = points.features[points.shown]
    assert shown["status"].eq("FP").sum() >= 20, "the fixture should crowd the region with false positives"
    labelled = shown[shown["text"] != ""]
    assert not labelled["status"].eq("FP").any() and len(labelled) <= DEFAULT_LABELS

    first_fp = next(row for row in widget.listed_rows() if widget.lesion_at(row)["status"] == "FP")
    widget.select(first_fp)
    process_events()
    lesion = widget.lesion_at(first_fp)
    features = points.features
    labelled = features[features["text"] != ""]
    assert 1 <= len(labelled) <= 1 + NEIGHBOURS
    selected = labelled[labelled["text"] == lesion["label"]]
    key = ["region", "status", "id"]
    assert len(selected) == 1 and (selected[key].to_numpy() == lesion[key].to_numpy()).all()
    assert (labelled["region"] == lesion["region"]).all(), "neighbours come from the region shown"
    drawn = drawn_texts(crowded_viewer)
    assert lesion["label"] in drawn and len(drawn) <= 1 + NEIGHBOURS, drawn


def test_the_region_drop_down_filters_the_list_and_the_layers(crowded_viewer, widget):
    from workbench.viz.audit import ALL_REGIONS

    points = crowded_viewer.layers["lesions"]
    everything = widget.features
    for region in ("TC", "RC", "WT"):
        widget.region.setCurrentText(region)
        process_events()
        assert set(listed(widget, "region")) == {region}
        assert len(widget.listed_rows()) == everything["region"].eq(region).sum()
        status_layers = [layer for layer in crowded_viewer.layers if layer.metadata.get("workbench", {}).get("kind") == "status"]
        assert {layer.metadata["workbench"]["region"] for layer in status_layers} == {region}
        assert sorted(layer.name for layer in status_layers) == [f"{region} FN", f"{region} FP", f"{region} TP"]
        np.testing.assert_array_equal(points.shown, points.features["region"].to_numpy() == region)
    widget.region.setCurrentText(ALL_REGIONS)
    process_events()
    assert len(widget.listed_rows()) == len(everything) and points.shown.all()
    widget.select(widget.listed_rows()[-1])  # a lesion of another region: its layers, every region's markers
    process_events()
    lesion = widget.lesion_at(widget.listed_rows()[-1])
    assert crowded_viewer.layers[f"{lesion['region']} FN"] and points.shown.all()
    assert widget.region.currentText() == ALL_REGIONS
    widget.region.setCurrentText("WT")


def test_status_and_size_filters_and_sorting(crowded_viewer, widget):
    widget.region.setCurrentText("WT")
    widget.statuses["TP"].setChecked(False)
    widget.statuses["FP"].setChecked(False)
    process_events()
    assert set(listed(widget)) == {"FN"}
    widget.statuses["FP"].setChecked(True)
    sizes = widget.features.loc[widget.features["region"] == "WT", "size_mm3"]
    low, high = float(np.sort(sizes)[2]), float(np.sort(sizes)[-3])
    widget.min_size.setValue(low)
    widget.max_size.setValue(high)
    process_events()
    rows = widget.listed_rows()
    expected = sizes[(sizes >= round(low)) & (sizes <= round(high))
                     & widget.features.loc[sizes.index, "status"].isin(["FN", "FP"])]
    assert len(rows) == len(expected) > 0
    assert all(round(low) <= s <= round(high) for s in listed(widget, "size_mm3"))

    widget.table.sortItems(3)  # size, ascending: the same rows stay listed, now smallest first
    process_events()
    assert sorted(listed(widget, "size_mm3")) == listed(widget, "size_mm3")
    assert len(widget.listed_rows()) == len(expected)
    assert set(listed(widget)) <= {"FN", "FP"}


def test_selecting_a_row_and_n_p_keys_follow_the_filtered_list(crowded_viewer, widget):
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    widget.region.setCurrentText("TC")
    widget.statuses["FP"].setChecked(False)
    process_events()
    misses = [row for row in widget.listed_rows() if widget.lesion_at(row)["status"] == "FN"]
    assert len(misses) >= 2 and len(widget.listed_rows()) < widget.table.rowCount()
    canvas = crowded_viewer.window._qt_viewer.canvas.native
    visited = []
    for _ in range(len(misses) + 1):
        QTest.keyClick(canvas, Qt.Key.Key_N)
        process_events()
        visited.append(widget.table.currentRow())
    assert visited == [*misses, misses[0]], "n visits the listed misses only (no FP: unticked), then wraps"
    QTest.keyClick(canvas, Qt.Key.Key_P)
    process_events()
    assert widget.table.currentRow() == misses[-1]
    lesion = widget.lesion_at(misses[-1])
    world = lesion[["centroid_z", "centroid_y", "centroid_x"]].to_numpy(float) * np.asarray(widget.spacing)
    sliced = crowded_viewer.dims.order[0]
    assert crowded_viewer.dims.point[sliced] == pytest.approx(world[sliced], abs=max(widget.spacing))

    widget.statuses["FN"].setChecked(False)  # hides the selected row: the selection and its labels go
    process_events()
    assert widget.table.selectedIndexes() == [] and widget.listed_rows() == [
        row for row in range(widget.table.rowCount()) if widget.lesion_at(row)["region"] == "TC"
        and widget.lesion_at(row)["status"] == "TP"]
    points = crowded_viewer.layers["lesions"]
    assert not points.features.loc[points.features["status"] == "FP", "text"].astype(bool).any()
