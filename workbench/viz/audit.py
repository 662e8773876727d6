"""The napari audit view: the layers of :func:`workbench.viz.layers.view_layers` and a lesion table to walk them.

The dock widget (:class:`AuditPanel`; "Lesion audit" in napari's Plugins menu, "Lesions" in
``workbench audit``) lists the lesions of the region shown (missed ones first, then false
positives, then detections, each by size, largest first; click a header to sort otherwise) under
a legend of the three status colours; the region drop-down (or "all regions"), status boxes and a
size range filter the list. Selecting a row shows that lesion's region, labels its marker and its
neighbours' (other markers stay plain), moves the slice to the lesion's centroid and centres the
camera on it; keys ``n`` / ``p`` step to the next / previous listed FN or FP. The panel works on
the layers in the viewer, found by their ``metadata["workbench"]``, so it serves the layers that
``workbench audit`` adds and those the plugin's reader opens alike.
Needs napari with a Qt backend (``napari[pyqt6]``) and a display (Xvfb on a headless machine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
import pandas as pd
from napari.layers import Layer
from PIL import Image
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench._io import atomic_write
from workbench.viz.layers import (
    STATUS_COLOURS,
    STATUS_MEANING,
    STATUS_ORDER,
    audit_order,
    lesion_features,
    lesion_texts,
    region_slot,
)
from workbench.viz.sources import AuditSource, source_layers

__all__ = ["NO_VIEW_MESSAGE", "AuditPanel", "LesionTable", "audit_viewer", "lesion_table_widget", "save_screenshot"]

_COLUMNS = ("status", "region", "id", "size", "Dice")
_TEXT_LINE_PX = 14  # height of a marker label (size 9) on screen
#: The region drop-down's entry that lists (and marks) the lesions of every region.
ALL_REGIONS = "all regions"
#: What :class:`AuditPanel` says in a viewer without workbench layers.
NO_VIEW_MESSAGE = (
    "No workbench layers in this viewer. Open a run folder (a `workbench train` run, or a run of "
    "`workbench sweep` / `workbench demo`) with File > Open Folder... and choose the reader \"workbench audit\", "
    "or open a NIfTI label map (.nii.gz); its lesions are then listed here."
)


def audit_viewer(source: AuditSource, *, threshold: float = 0.5, show: bool = True) -> napari.Viewer:
    """Open napari on one case with the audit layers and the lesion table.

    The view opens on the region of the table's first lesion (the largest miss, if any).

    Parameters
    ----------
    source : AuditSource
        From :func:`~workbench.viz.sources.run_source` or :func:`~workbench.viz.sources.files_source`.
    threshold : float
        Dice threshold of the lesion matching.
    show : bool
        Show the window (napari needs a shown window for screenshots of the canvas).

    Returns
    -------
    napari.Viewer
        With the layers of :func:`~workbench.viz.sources.source_layers` (those the napari
        plugin's reader opens) and an :class:`AuditPanel` docked on the right as "Lesions".
    """
    layer_data = source_layers(source, threshold=threshold)
    viewer = napari.Viewer(title=f"workbench audit · {source.title or source.case.id}", show=show, ndisplay=2)
    with viewer.layers.batched_update():  # one scene-graph update for all layers, not one per layer
        for data, kwargs, layer_type in layer_data:
            getattr(viewer, f"add_{layer_type}")(data, **kwargs)
    viewer.window.resize(1280, 860)
    viewer.window.add_dock_widget(AuditPanel(viewer), name="Lesions", area="right")
    return viewer


class AuditPanel(QWidget):
    """The lesion table of the last case opened in a viewer, or :data:`NO_VIEW_MESSAGE` without one.

    A napari dock widget (the plugin's "Lesion audit"). It finds the case's layers by their
    ``metadata["workbench"]["view"]`` (:func:`~workbench.viz.layers.view_layers`), and follows
    the viewer: when a case is opened (or its layers removed) it shows the new case's table (or
    the message). Attaching to a case turns a 3D view to axial slices (the arrays are in NIfTI
    voxel order (i, j, k) ~ (x, y, z)), shows the scale bar, centres the view and binds ``n`` /
    ``p`` on the viewer and the case's layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.lesions: LesionTable | None = None
        self.message = QLabel(NO_VIEW_MESSAGE)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        self._refresh = QTimer(self)  # a reader adds its layers one by one: attach once, after the last
        self._refresh.setSingleShot(True)
        self._refresh.timeout.connect(self.attach)
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        self.attach()

    def _on_layers_changed(self, event) -> None:
        if "view" in event.value.metadata.get("workbench", {}):
            self._refresh.start(0)

    def attach(self) -> None:
        """Show the lesion table of the viewer's last opened case, or the message if it has none."""
        if self.lesions is not None:
            self.lesions.setParent(None)
            self.lesions.deleteLater()
            self.lesions = None
        layers = _last_view(self.viewer)
        self.message.setVisible(not layers)
        if not layers:
            return
        slots = {layer.metadata["workbench"]["slot"]: layer for layer in layers if "slot" in layer.metadata["workbench"]}
        points = next((layer for layer in layers if layer.metadata["workbench"]["kind"] == "lesions"), None)
        grid = next(layer for layer in layers if layer is not points)
        spacing, shape = tuple(float(s) for s in grid.scale), grid.data.shape
        view = _RegionLayers(self.viewer, slots, points, spacing)
        features = points.features if points is not None else lesion_features(_no_lesions(), len(shape))
        self.lesions = LesionTable(self.viewer, audit_order(features), spacing=spacing, regions=view.names,
                                   shown=view.current, show_region=view.show, show_lesion=view.label)
        self.layout().addWidget(self.lesions)
        # On the viewer and on every layer: layer key bindings (e.g. p = paint on labels) win over the viewer's.
        for keymap_owner in (self.viewer, *layers):
            keymap_owner.bind_key("n", lambda _owner: self.lesions.step(+1), overwrite=True)
            keymap_owner.bind_key("p", lambda _owner: self.lesions.step(-1), overwrite=True)
        self.viewer.canvas.overlays.scale_bar.visible = True
        if len(shape) == 3:
            self.viewer.dims.order = (2, 1, 0)  # slice along k, the axial axis
        _show_slice(self.viewer, np.asarray(shape) / 2.0, spacing)


def _last_view(viewer: napari.Viewer) -> list[Layer]:
    """The layers of the case opened last in ``viewer`` (by ``metadata["workbench"]["view"]``); [] if none."""
    tagged = [layer for layer in viewer.layers if "view" in layer.metadata.get("workbench", {})]
    if not tagged:
        return []
    view = tagged[-1].metadata["workbench"]["view"]
    return [layer for layer in tagged if layer.metadata["workbench"]["view"] == view]


class _RegionLayers:
    """The slot layers of one case (:func:`~workbench.viz.layers.view_layers`), whose data is swapped when the region changes.

    Shows the chosen region (or channel) by swapping data, names and metadata into the slot
    layers (:func:`~workbench.viz.layers.region_slot`) and the points' ``shown`` mask. Only a few
    markers carry text (:func:`~workbench.viz.layers.lesion_texts`): the largest misses and
    detections, or the selected lesion and its neighbours.
    """

    def __init__(self, viewer: napari.Viewer, slots: dict[str, Layer], points: Layer | None,
                 spacing: tuple[float, ...]) -> None:
        self.viewer = viewer
        self.slots = slots
        self.points = points
        self.spacing = spacing
        meta = next(iter(slots.values())).metadata["workbench"] if slots else {}
        self.names: tuple[str, ...] = tuple(meta.get("regions", ()))
        self.current: str = meta.get("shown", "")

    def show(self, name: str, every_marker: bool = False) -> None:
        """Fill the slot layers with region (or channel) ``name``'s data and show its markers (or every region's)."""
        for layer in self.slots.values():
            data, kwargs = region_slot(layer.metadata["workbench"], name)
            layer.data = data
            layer.name = kwargs["name"]
            layer.metadata = kwargs["metadata"]
            if "contrast_limits" in kwargs:
                layer.contrast_limits = kwargs["contrast_limits"]
        if self.points is not None:
            regions = self.points.features["region"].to_numpy()
            self.points.shown = np.ones(len(regions), dtype=bool) if every_marker else regions == name
            self.points.metadata = {"workbench": {**self.points.metadata["workbench"],
                                                  "region": "" if every_marker else name}}
        self.current = name
        self.label(None)

    def label(self, lesion: pd.Series | None) -> None:
        """Put text on the markers of ``lesion`` (a :class:`LesionTable` row) and its neighbours; None: the default few."""
        if self.points is None:
            return
        features = self.points.features
        selected = None
        if lesion is not None:
            key = ["region", "status", "id"]
            match = (features[key] == lesion[key].to_numpy()).all(axis=1)
            selected = int(np.flatnonzero(match.to_numpy())[0])
        dims = self.viewer.dims
        slice_axis = dims.order[0] if dims.ndim == 3 and dims.ndisplay == 2 else None
        line_mm = _TEXT_LINE_PX / max(self.viewer.scene.camera.zoom, 1e-6)  # camera.zoom: screen pixels per mm
        features["text"] = lesion_texts(features, self.spacing, selected=selected, among=self.points.shown,
                                        slice_axis=slice_axis, min_gap_mm=line_mm)
        self.points.refresh_text()


def lesion_table_widget(viewer: napari.Viewer) -> LesionTable:
    """The :class:`LesionTable` of the :class:`AuditPanel` docked in ``viewer``.

    Raises
    ------
    LookupError
        If no audit panel is docked, or it shows no case (the message instead).
    """
    for widget in viewer.window.dock_widgets.values():
        if isinstance(widget, AuditPanel) and widget.lesions is not None:
            return widget.lesions
    raise LookupError("No audit panel with a lesion table is docked in this viewer: open a case with "
                      "workbench.viz.audit.audit_viewer, or a run folder with the workbench reader, and dock AuditPanel.")


def save_screenshot(viewer: napari.Viewer, path: str | os.PathLike[str], *, first_lesion: bool = True) -> np.ndarray:
    """Save a PNG of the whole window (canvas and widgets), atomically; returns the RGBA array.

    ``first_lesion`` first selects the table's top listed row (the largest miss, if any).
    """
    table = lesion_table_widget(viewer)
    rows = table.listed_rows()
    if first_lesion and rows:
        table.select(rows[0])
    QApplication.processEvents()
    image = viewer.screenshot(canvas_only=False, flash=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return image


class LesionTable(QWidget):
    """A status legend, filters and a sortable table of lesions; selecting a row goes to that lesion.

    The table lists the lesions of the region shown (or of every region), of the ticked statuses
    and within the size range; the rest of its rows are hidden. Click a header to sort.

    Parameters
    ----------
    viewer : napari.Viewer
    features : DataFrame
        :func:`~workbench.viz.layers.lesion_features` rows (region, status, id, size_mm3, dice,
        centroid_z/y/x in voxels), listed in this order until a header is clicked.
    spacing : sequence of float
        Voxel size in mm, to turn centroids into world coordinates.
    regions : sequence of str
        Regions (and channels) the per-region layers can show, offered in a drop-down with
        :data:`ALL_REGIONS`.
    shown : str
        The region shown at first.
    show_region : callable, optional
        ``show_region(name, every_marker)`` shows region ``name``'s layers, and the markers of
        every region when ``every_marker``.
    show_lesion : callable, optional
        Called with the selected row (a ``features`` row), or None when the selection is cleared.
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        features: pd.DataFrame,
        *,
        spacing: tuple[float, ...],
        regions: tuple[str, ...] = (),
        shown: str = "",
        show_region: Callable[[str, bool], None] | None = None,
        show_lesion: Callable[[pd.Series | None], None] | None = None,
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.spacing = tuple(float(s) for s in spacing)
        self.show_region = show_region
        self.show_lesion = show_lesion
        self.features = features.reset_index(drop=True)
        self.layers_region = shown

        layout = QVBoxLayout(self)
        legend = QHBoxLayout()
        for status, colour in STATUS_COLOURS.items():
            swatch = QLabel(f"■ {status} {STATUS_MEANING[status]}")
            swatch.setStyleSheet(f"color: {colour}; font-weight: bold;")
            legend.addWidget(swatch)
        layout.addLayout(legend)
        self.summary = QLabel()
        layout.addWidget(self.summary)
        self.region = QComboBox()
        self.region.addItems([*regions, ALL_REGIONS])
        self.region.setCurrentText(shown)
        layout.addLayout(_row("region shown:", self.region))
        self.statuses = {status: QCheckBox(status) for status in STATUS_ORDER}
        unit = "mm³" if len(self.spacing) == 3 else "mm²"
        self.min_size, self.max_size = _size_box("any"), _size_box("any")
        layout.addLayout(_row("list:", *self.statuses.values()))
        layout.addLayout(_row(f"size ({unit}) from", self.min_size, QLabel("to"), self.max_size))
        self.table = self._fill_table(unit)
        layout.addWidget(self.table)

        self.region.currentTextChanged.connect(self._on_region)
        for box in self.statuses.values():
            box.setChecked(True)
            box.toggled.connect(lambda _checked: self.apply_filter())
        for box in (self.min_size, self.max_size):
            box.valueChanged.connect(lambda _value: self.apply_filter())
        self.table.itemSelectionChanged.connect(self._on_select)
        self.apply_filter()

    def _fill_table(self, unit: str) -> QTableWidget:
        table = QTableWidget(len(self.features), len(_COLUMNS))
        table.setHorizontalHeaderLabels([*_COLUMNS[:3], f"size ({unit})", "Dice"])
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)  # row numbers would skip the hidden rows
        columns = ("status", "region", "id", "size_mm3", "dice")
        for row, values in enumerate(self.features[list(columns)].itertuples(index=False)):
            for column, value in enumerate(values):
                item = _StatusItem(row) if column == 0 else QTableWidgetItem()
                value = round(float(value), 2) if column >= 3 else int(value) if column == 2 else value
                item.setData(Qt.ItemDataRole.DisplayRole, value)
                item.setData(Qt.ItemDataRole.UserRole, row)
                if column == 0:
                    item.setForeground(QColor(STATUS_COLOURS[value]))
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        table.sortItems(0, Qt.SortOrder.AscendingOrder)
        table.resizeColumnsToContents()
        return table

    def lesion_at(self, row: int) -> pd.Series:
        """The lesion shown in table row ``row`` (in the current sort order)."""
        return self.features.iloc[self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)]

    def listed_rows(self) -> list[int]:
        """The table rows the filters let through, top to bottom."""
        return [row for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    def select(self, row: int) -> None:
        """Select table row ``row`` (which moves the view to its lesion)."""
        self.table.selectRow(row)

    def step(self, direction: int) -> None:
        """Select the next (``+1``) or previous (``-1``) listed FN or FP row after the current one, cyclically."""
        rows = [r for r in self.listed_rows() if self.lesion_at(r)["status"] in ("FN", "FP")]
        if not rows:
            return
        current = self.table.currentRow()
        ahead = [r for r in rows if (r - current) * direction > 0]
        if ahead:
            target = min(ahead, key=lambda r: abs(r - current))
        else:
            target = rows[0] if direction > 0 else rows[-1]
        self.select(target)

    def apply_filter(self) -> None:
        """Hide the rows outside the region shown, the ticked statuses or the size range; clear a hidden selection."""
        rows = [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]
        lesions = self.features.iloc[rows]
        region = self.region.currentText()
        # a copy: pandas 3 hands out read-only views, and the filters below narrow it in place
        listed = lesions["status"].isin([s for s, box in self.statuses.items() if box.isChecked()]).to_numpy(copy=True)
        if region != ALL_REGIONS:
            listed &= lesions["region"].eq(region).to_numpy()
        sizes = lesions["size_mm3"].to_numpy(np.float64)
        listed &= sizes >= self.min_size.value()
        if self.max_size.value() > 0:
            listed &= sizes <= self.max_size.value()
        for row, keep in enumerate(listed):
            self.table.setRowHidden(row, not keep)
        current = self.table.currentRow()
        if current >= 0 and not listed[current]:
            self.table.clearSelection()
            self.table.setCurrentCell(-1, -1)
            if self.show_lesion is not None:
                self.show_lesion(None)
        counts = self.features["status"].value_counts()
        self.summary.setText(", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_COLOURS)
                             + f" · {int(listed.sum())} listed · keys n / p: next / previous miss or FP")

    def _on_region(self, region: str) -> None:
        if region != ALL_REGIONS:
            self.layers_region = region
        if self.show_region is not None:
            self.show_region(self.layers_region, region == ALL_REGIONS)
        self.apply_filter()

    def _on_select(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if len(rows) == 1:
            self.go_to(self.lesion_at(rows.pop()))

    def go_to(self, lesion: pd.Series) -> None:
        """Show the lesion's region, label it and its neighbours, move to its slice and centre the camera on it."""
        if self.region.currentText() == ALL_REGIONS:
            self.layers_region = lesion["region"]
            if self.show_region is not None:
                self.show_region(lesion["region"], True)
        elif self.region.findText(lesion["region"]) >= 0:
            self.region.setCurrentText(lesion["region"])  # emits currentTextChanged -> _on_region
        if self.show_lesion is not None:
            self.show_lesion(lesion)
        axes = ("centroid_z", "centroid_y", "centroid_x")[3 - len(self.spacing):]
        _show_slice(self.viewer, lesion[list(axes)].to_numpy(np.float64), self.spacing)


def _row(label: str, *widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(QLabel(label))
    for widget in widgets:
        row.addWidget(widget, stretch=1 if isinstance(widget, QComboBox) else 0)
    if not any(isinstance(widget, QComboBox) for widget in widgets):
        row.addStretch(1)
    return row


def _size_box(unset: str) -> QDoubleSpinBox:
    """A size bound; 0 reads ``unset`` (no bound)."""
    box = QDoubleSpinBox()
    box.setRange(0.0, 1e9)
    box.setDecimals(0)
    box.setSpecialValueText(unset)
    box.setKeyboardTracking(False)
    box.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)
    box.setMaximumWidth(90)
    return box


class _StatusItem(QTableWidgetItem):
    """A status cell that sorts in the table's initial order (FN, FP, TP; larger first), not alphabetically."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.rank < other.rank if isinstance(other, _StatusItem) else super().__lt__(other)


def _show_slice(viewer: napari.Viewer, voxel: np.ndarray, spacing: tuple[float, ...]) -> None:
    """Put the slice through ``voxel`` (array coordinates) on screen, centred."""
    world = np.asarray(voxel, dtype=np.float64) * np.asarray(spacing)
    if viewer.dims.ndisplay == 3:
        viewer.scene.camera.center = tuple(world)
        return
    order = viewer.dims.order
    for axis in order[:-2]:
        viewer.dims.set_point(axis, world[axis])
    viewer.scene.camera.center = tuple(world[list(order[-2:])])


def _no_lesions() -> pd.DataFrame:
    columns = ("region", "status", "ref_id", "pred_id", "ref_mm3", "pred_mm3", "dice", "centroid_z", "centroid_y", "centroid_x")
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("region", "status") else np.float64) for c in columns})
