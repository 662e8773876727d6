"""The napari audit view: the layers of :func:`workbench.viz.layers` and a lesion table to walk them.

The dock widget lists every lesion of the case (missed ones first, then false positives, then
detections, each by size, largest first; click a header to sort otherwise) under a legend of the
three status colours. Selecting a row shows that lesion's region, moves the slice to the lesion's
centroid and centres the camera on it; keys ``n`` / ``p`` step to the next / previous FN or FP.
Needs napari with a Qt backend (``napari[pyqt6]``) and a display (Xvfb on a headless machine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
import pandas as pd
from PIL import Image
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench._io import atomic_write
from workbench.metrics import lesion_table
from workbench.viz.layers import STATUS_COLOURS, STATUS_MEANING, layers, lesion_features
from workbench.viz.sources import AuditSource

__all__ = ["LesionTable", "audit_viewer", "lesion_table_widget", "save_screenshot"]

_STATUS_ORDER = {"FN": 0, "FP": 1, "TP": 2}
_COLUMNS = ("status", "region", "id", "size", "Dice")


def audit_viewer(source: AuditSource, *, threshold: float = 0.5, show: bool = True) -> napari.Viewer:
    """Open napari on one case with the audit layers and the lesion table.

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
        With a :class:`LesionTable` docked on the right as "Lesions".
    """
    case = source.case
    ndim = case.label.ndim
    lesions = None
    if source.prediction is not None:
        lesions = lesion_table(source.prediction, case.label, schema=source.schema, spacing=case.spacing,
                               threshold=threshold, connectivity=source.connectivity, case_id=case.id)
    layer_data = layers(case, source.prediction, schema=source.schema, loss=source.loss, mode=source.mode,
                        connectivity=source.connectivity, threshold=threshold, lesions=lesions, **source.loss_options)
    viewer = napari.Viewer(title=f"workbench audit · {source.title or case.id}", show=show, ndisplay=2)
    view = _RegionLayers(viewer, layer_data, case.label.shape)
    viewer.scale_bar.visible = True
    viewer.scale_bar.unit = "mm"
    if ndim == 3:  # arrays are in NIfTI voxel order (i, j, k) ~ (x, y, z): slice along k, the axial axis
        viewer.dims.order = (2, 1, 0)
    viewer.window.resize(1280, 860)
    features = lesion_features(lesions if lesions is not None else _no_lesions(), ndim)
    table = LesionTable(viewer, features, spacing=case.spacing, groups=view.names, show_group=view.show, shown=view.current)
    viewer.window.add_dock_widget(table, name="Lesions", area="right")
    # On the viewer and on every layer: layer key bindings (e.g. p = paint on labels) win over the viewer's.
    for keymap_owner in (viewer, *viewer.layers):
        keymap_owner.bind_key("n", lambda _owner: table.step(+1), overwrite=True)
        keymap_owner.bind_key("p", lambda _owner: table.step(-1), overwrite=True)
    if ndim == 3:
        _show_slice(viewer, np.asarray(case.label.shape) / 2.0, case.spacing)
    return viewer


class _RegionLayers:
    """One set of per-region layers in the viewer, whose data is swapped when the region changes.

    napari's cost of adding a layer grows with the number of layers (seconds each, with dozens,
    on a CPU-rendered display), so the view holds the images, the label maps, one layer per kind
    (Voronoi cells, components, weights, TP, FP, FN) and one points layer for all lesions, and
    shows the chosen region (or channel) by swapping data, names and the points' ``shown`` mask.
    """

    _SLOTS = ("cells", "components", "weights", "TP", "FP", "FN")

    def __init__(self, viewer: napari.Viewer, layer_data: list, shape: tuple[int, ...]) -> None:
        self.viewer = viewer
        self.groups: dict[str, dict[str, tuple]] = {}
        points = []
        first_visible = None
        for data, kwargs, layer_type in layer_data:
            meta = kwargs["metadata"]["workbench"]
            if meta["kind"] == "lesions":
                points.append((data, kwargs))
            elif meta["kind"] in self._SLOTS[:3] + ("status",) and meta.get("channel") != "all":
                group = meta.get("region") or meta["channel"]
                self.groups.setdefault(group, {})[meta.get("status", meta["kind"])] = (data, kwargs, layer_type)
                if first_visible is None and kwargs.get("visible") and meta["kind"] == "status":
                    first_visible = group
            else:
                getattr(viewer, f"add_{layer_type}")(data, units="mm", **kwargs)
        self.names = tuple(self.groups)
        self.current = first_visible or (self.names[0] if self.names else "")
        self.slots = {}
        for slot in self._SLOTS:
            entries = [group[slot] for group in self.groups.values() if slot in group]
            if not entries:
                continue
            _, kwargs, layer_type = entries[0]
            kwargs = {**kwargs, "visible": any(k.get("visible") for _, k, _ in entries)}
            placeholder = np.zeros(shape, dtype=np.float32 if layer_type == "image" else np.int32)
            self.slots[slot] = getattr(viewer, f"add_{layer_type}")(placeholder, units="mm", **kwargs)
        self.points = None
        if points:
            coords = np.concatenate([data for data, _ in points])
            kwargs = dict(points[0][1])
            kwargs["features"] = pd.concat([k["features"] for _, k in points], ignore_index=True)
            kwargs["face_color"] = [c for _, k in points for c in (k["face_color"] if isinstance(k["face_color"], list) else [])] or "white"
            kwargs.update(name="lesions", visible=True, metadata={"workbench": {"kind": "lesions", "region": ""}})
            self.points = viewer.add_points(coords, units="mm", **kwargs)
        self.show(self.current)

    def show(self, name: str) -> None:
        """Fill the per-region layers with region (or channel) ``name``'s data."""
        group = self.groups.get(name, {})
        for slot, layer in self.slots.items():
            if slot in group:
                data, kwargs, _ = group[slot]
                layer.data = data
                layer.name = kwargs["name"]
                layer.metadata = kwargs["metadata"]
                if "contrast_limits" in kwargs:
                    layer.contrast_limits = kwargs["contrast_limits"]
            else:
                layer.data = np.zeros_like(layer.data)
                layer.name = f"{name} {slot} (none)"
                layer.metadata = {"workbench": {"kind": "empty"}}
        if self.points is not None:
            self.points.shown = self.points.features["region"].to_numpy() == name
            self.points.metadata = {"workbench": {"kind": "lesions", "region": name}}
        self.current = name


def lesion_table_widget(viewer: napari.Viewer) -> LesionTable:
    """The :class:`LesionTable` docked in an audit viewer."""
    return viewer.window.dock_widgets["Lesions"]


def save_screenshot(viewer: napari.Viewer, path: str | os.PathLike[str], *, first_lesion: bool = True) -> np.ndarray:
    """Save a PNG of the whole window (canvas and widgets), atomically; returns the RGBA array.

    ``first_lesion`` first selects the table's top row (the largest miss, if any).
    """
    table = lesion_table_widget(viewer)
    if first_lesion and table.table.rowCount():
        table.select(0)
    QApplication.processEvents()
    image = viewer.screenshot(canvas_only=False, flash=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return image


class LesionTable(QWidget):
    """A status legend and a sortable table of lesions; selecting a row goes to that lesion.

    Parameters
    ----------
    viewer : napari.Viewer
    features : DataFrame
        :func:`~workbench.viz.layers.lesion_features` rows (region, status, id, size_mm3, dice,
        centroid_z/y/x in voxels).
    spacing : sequence of float
        Voxel size in mm, to turn centroids into world coordinates.
    groups : sequence of str
        Regions (and channels) the per-region layers can show, offered in a drop-down.
    show_group : callable
        Called with a region name to show that region's layers.
    shown : str
        The region shown at first.
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        features: pd.DataFrame,
        *,
        spacing: tuple[float, ...],
        groups: tuple[str, ...] = (),
        show_group: Callable[[str], None] | None = None,
        shown: str = "",
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.spacing = tuple(float(s) for s in spacing)
        self.show_group = show_group
        order = np.lexsort((-features["size_mm3"].fillna(0).to_numpy(), features["status"].map(_STATUS_ORDER).to_numpy()))
        self.features = features.iloc[order].reset_index(drop=True)

        layout = QVBoxLayout(self)
        legend = QHBoxLayout()
        for status, colour in STATUS_COLOURS.items():
            swatch = QLabel(f"■ {status} {STATUS_MEANING[status]}")
            swatch.setStyleSheet(f"color: {colour}; font-weight: bold;")
            legend.addWidget(swatch)
        layout.addLayout(legend)
        counts = self.features["status"].value_counts()
        self.summary = QLabel(", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_COLOURS) + " · keys n / p: next / previous miss or FP")
        layout.addWidget(self.summary)
        self.region = QComboBox()
        self.region.addItems(list(groups))
        self.region.setCurrentText(shown)
        if show_group is not None:
            self.region.currentTextChanged.connect(show_group)
        region_row = QHBoxLayout()
        region_row.addWidget(QLabel("region shown:"))
        region_row.addWidget(self.region, stretch=1)
        layout.addLayout(region_row)

        self.table = QTableWidget(len(self.features), len(_COLUMNS))
        self.table.setHorizontalHeaderLabels([*_COLUMNS[:3], "size (mm³)" if len(self.spacing) == 3 else "size (mm²)", "Dice"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, lesion in self.features.iterrows():
            values = (lesion["status"], lesion["region"], int(lesion["id"]), float(lesion["size_mm3"]), float(lesion["dice"]))
            for column, value in enumerate(values):
                item = _StatusItem(row) if column == 0 else QTableWidgetItem()
                item.setData(Qt.ItemDataRole.DisplayRole, round(value, 2) if isinstance(value, float) else value)
                item.setData(Qt.ItemDataRole.UserRole, row)
                if column == 0:
                    item.setForeground(QColor(STATUS_COLOURS[lesion["status"]]))
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)
        self.table.resizeColumnsToContents()
        self.table.itemSelectionChanged.connect(self._on_select)
        layout.addWidget(self.table)

    def lesion_at(self, row: int) -> pd.Series:
        """The lesion shown in table row ``row`` (in the current sort order)."""
        return self.features.iloc[self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)]

    def select(self, row: int) -> None:
        """Select table row ``row`` (which moves the view to its lesion)."""
        self.table.selectRow(row)

    def step(self, direction: int) -> None:
        """Select the next (``+1``) or previous (``-1``) FN or FP row after the current one, cyclically."""
        rows = [r for r in range(self.table.rowCount()) if self.lesion_at(r)["status"] in ("FN", "FP")]
        if not rows:
            return
        current = self.table.currentRow()
        ahead = [r for r in rows if (r - current) * direction > 0]
        if ahead:
            target = min(ahead, key=lambda r: abs(r - current))
        else:
            target = rows[0] if direction > 0 else rows[-1]
        self.select(target)

    def _on_select(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if len(rows) == 1:
            self.go_to(self.lesion_at(rows.pop()))

    def go_to(self, lesion: pd.Series) -> None:
        """Show the lesion's region, move to its slice and centre the camera on its centroid."""
        if self.region.findText(lesion["region"]) >= 0:
            self.region.setCurrentText(lesion["region"])  # emits currentTextChanged -> show_group
        axes = ("centroid_z", "centroid_y", "centroid_x")[3 - len(self.spacing):]
        _show_slice(self.viewer, lesion[list(axes)].to_numpy(np.float64), self.spacing)


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
        viewer.camera.center = tuple(world)
        return
    order = viewer.dims.order
    for axis in order[:-2]:
        viewer.dims.set_point(axis, world[axis])
    viewer.camera.center = tuple(world[list(order[-2:])])


def _no_lesions() -> pd.DataFrame:
    columns = ("region", "status", "ref_id", "pred_id", "ref_mm3", "pred_mm3", "dice", "centroid_z", "centroid_y", "centroid_x")
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("region", "status") else np.float64) for c in columns})
