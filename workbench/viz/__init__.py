"""Looking at instances and losses: napari layers for the audit view, plotly figures for notebooks.

- :mod:`workbench.viz.layers`: :func:`layers` builds the audit view's layer data with numpy
  only (no Qt), so it is testable headless and usable from any napari script;
  :func:`view_layers` folds it into the layers the view opens.
- :mod:`workbench.viz.sources`: a case of a run folder or of NIfTI files, and its view layers.
- :mod:`workbench.viz.napari_reader`: the reader of workbench's napari plugin (``napari.yaml``).
- :mod:`workbench.viz.audit`: the napari viewer with the lesion table dock widget
  (``workbench audit``; the plugin's "Lesion audit" widget); imports napari and Qt.
- :mod:`workbench.viz.figures`: the plotly figures of the notebooks and the sweep report.
"""

from workbench.viz.layers import (
    STATUS_COLOURS,
    STATUS_MEANING,
    STATUS_ORDER,
    VIEW_SLOTS,
    WEIGHTED_LOSSES,
    LayerData,
    audit_order,
    layers,
    lesion_features,
    lesion_labels,
    lesion_texts,
    marker_sizes,
    region_slot,
    view_layers,
)

__all__ = ["STATUS_COLOURS", "STATUS_MEANING", "STATUS_ORDER", "VIEW_SLOTS", "WEIGHTED_LOSSES", "LayerData",
           "audit_order", "layers", "lesion_features", "lesion_labels", "lesion_texts", "marker_sizes", "region_slot",
           "view_layers"]
