"""workbench's napari plugin: its manifest, its reader (layer tuples, headless) and, in napari on a
virtual display, the plugin list, ``viewer.open(..., plugin="workbench")`` and the "Lesion audit" widget."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.nifti import save_nifti
from workbench.labels import LabelValueError
from workbench.metrics import lesion_table
from workbench.metrics.matching import connected_components
from workbench.viz.layers import lesion_labels
from workbench.viz.napari_reader import get_reader, read_label_map, read_run
from workbench.viz.sources import run_source

WIDGET = "Lesion audit"


def by_name(layer_data):
    return {kwargs["name"]: (data, kwargs, layer_type) for data, kwargs, layer_type in layer_data}


def test_the_manifest_validates_and_its_commands_import():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("workbench")  # the entry point of pyproject.toml
    assert (manifest.name, manifest.display_name) == ("workbench", "workbench audit")
    manifest.validate_imports()
    reader, = manifest.contributions.readers
    assert reader.accepts_directories and reader.filename_patterns == ["*.nii", "*.nii.gz"]
    assert [w.display_name for w in manifest.contributions.widgets] == [WIDGET]


def test_a_run_folder_reads_as_the_audit_layers_of_its_first_predicted_case(training_run):
    run, manifest = training_run
    assert get_reader(str(run)) is read_run and get_reader([str(run / "train")]) is read_run
    layer_data = read_run(str(run))
    source = run_source(run)
    assert source.case.id == sorted(entry.id for entry in manifest.cases)[0], "the case `workbench audit RUN` opens"
    lesions = lesion_table(source.prediction, source.case.label, spacing=source.case.spacing, threshold=0.5,
                           connectivity=18)
    misses = lesions[lesions["status"] == "FN"]
    region = misses.loc[misses["ref_mm3"].idxmax(), "region"]  # the view opens on the largest miss's region
    assert [(kwargs["name"], layer_type) for _, kwargs, layer_type in layer_data] == [
        *((name, "image") for name in source.case.modalities), ("reference", "labels"), ("prediction", "labels"),
        (f"{region} Voronoi cells", "labels"), (f"{region} components", "labels"),
        (f"{region} weights (iwl_blob, log10)", "image"),
        (f"{region} TP", "labels"), (f"{region} FP", "labels"), (f"{region} FN", "labels"), ("lesions", "points"),
    ]
    layers = by_name(layer_data)
    np.testing.assert_array_equal(layers["t1c"][0], source.case.image[source.case.modalities.index("t1c")])
    np.testing.assert_array_equal(layers["prediction"][0], source.prediction)
    expected = lesion_labels(source.prediction, source.case.label, lesions[lesions["region"] == region],
                             schema=source.schema, region=region, connectivity=18)
    for status in ("TP", "FP", "FN"):
        np.testing.assert_array_equal(layers[f"{region} {status}"][0], expected[status])
    points, kwargs, _ = layers["lesions"]
    assert len(points) == len(lesions), "one marker per lesion of every region"
    np.testing.assert_array_equal(kwargs["shown"], kwargs["features"]["region"].to_numpy() == region)
    for _, kwargs, _ in layer_data:
        assert kwargs["scale"] == pytest.approx(source.case.spacing) and kwargs["units"] == "mm", kwargs["name"]
        assert kwargs["metadata"]["workbench"]["view"] == source.title


def test_the_reader_declines_what_it_does_not_read(tmp_path, training_run):
    run, _ = training_run
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.yaml").write_text("a: 1\n")  # a config but no predictions: not a run
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip")
    save_nifti(tmp_path / "t1c.nii.gz", np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4))
    for path in (tmp_path, tmp_path / "notes", tmp_path / "notes.txt", tmp_path / "broken.nii.gz",
                 tmp_path / "t1c.nii.gz", run / "train" / "predictions", [str(run), str(run)]):
        assert get_reader(path) is None, path


def test_a_nifti_label_map_reads_as_its_reference_with_components_and_cells(tmp_path):
    label = np.zeros((12, 10, 8), dtype=np.uint8)
    label[1:4, 1:4, 1:4] = 3
    label[7:10, 5:8, 3:6] = 1
    path = tmp_path / "seg.nii.gz"
    save_nifti(path, label, np.diag([0.8, 1.0, 1.2, 1.0]))
    assert get_reader(str(path)) is read_label_map
    layers = by_name(read_label_map(str(path)))
    assert list(layers) == ["reference", "WT Voronoi cells", "WT components"], "no images, no prediction, no lesions"
    reference, kwargs, layer_type = layers["reference"]
    np.testing.assert_array_equal(reference, label)
    assert layer_type == "labels" and kwargs["visible"] and kwargs["scale"] == pytest.approx((0.8, 1.0, 1.2))
    components = layers["WT components"]
    np.testing.assert_array_equal(components[0] > 0, label > 0)
    assert components[1]["metadata"]["workbench"]["regions"] == ("WT", "TC", "ET", "RC")
    tc_components = components[1]["metadata"]["workbench"]["by_region"]["TC"][0]
    np.testing.assert_array_equal(tc_components, connected_components(np.isin(label, (1, 3)))[0])

    save_nifti(tmp_path / "other.nii.gz", np.full((4, 4, 4), 7, dtype=np.uint8), np.eye(4))
    with pytest.raises(LabelValueError, match=r"other\.nii\.gz: Label map holds values \[7\]"):
        read_label_map(str(tmp_path / "other.nii.gz"))


@pytest.fixture
def viewer(display):
    import napari

    viewer = napari.Viewer(show=False)
    yield viewer
    viewer.close()


def process_events():
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()


def test_napari_lists_the_plugin_and_its_widget(viewer):
    from npe2 import PluginManager

    manager = PluginManager.instance()
    assert manager.get_manifest("workbench").display_name == "workbench audit"
    assert any(w.display_name == WIDGET for w in manager.iter_widgets() if w.plugin_name == "workbench")

    def texts(menu):
        for action in menu.actions():
            yield action.text()
            if action.menu() is not None:
                yield from texts(action.menu())

    assert f"{WIDGET} (workbench audit)" in list(texts(viewer.window.plugins_menu))


def test_the_widget_says_how_to_open_a_run_then_lists_its_lesions(viewer, training_run):
    from workbench.viz.audit import AuditPanel, audit_viewer

    run, _ = training_run
    _, panel = viewer.window.add_plugin_dock_widget("workbench", WIDGET)
    assert isinstance(panel, AuditPanel) and panel.lesions is None
    assert not panel.message.isHidden() and "File > Open Folder" in panel.message.text()

    viewer.open(str(run), plugin="workbench")
    process_events()
    source = run_source(run)
    reference = audit_viewer(source, show=False)
    try:
        opened = [(layer.name, type(layer).__name__, layer.data) for layer in viewer.layers]
        expected = [(layer.name, type(layer).__name__, layer.data) for layer in reference.layers]
        assert [o[:2] for o in opened] == [e[:2] for e in expected], "the layers of `workbench audit RUN`"
        for (name, _, data), (_, _, audited) in zip(opened, expected):
            np.testing.assert_array_equal(data, audited, err_msg=name)
    finally:
        reference.close()

    assert panel.message.isHidden() and panel.lesions is not None
    lesions = lesion_table(source.prediction, source.case.label, spacing=source.case.spacing, threshold=0.5,
                           connectivity=18)
    table = panel.lesions
    assert table.table.rowCount() == len(lesions)
    assert table.lesion_at(0)["status"] == "FN", "misses first"
    table.region.setCurrentText("WT")
    fn_layer = next(layer for layer in viewer.layers if layer.metadata["workbench"].get("slot") == "FN")
    assert fn_layer.name == "WT FN"
    np.testing.assert_array_equal(fn_layer.data, lesion_labels(
        source.prediction, source.case.label, lesions[lesions["region"] == "WT"], schema=source.schema, region="WT",
        connectivity=18)["FN"])

    viewer.layers.clear()
    process_events()
    assert panel.lesions is None and not panel.message.isHidden(), "no case left: the message again"
