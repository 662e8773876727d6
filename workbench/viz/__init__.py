"""Looking at instances and losses: napari layers for the audit view, plotly figures for notebooks.

- :mod:`workbench.viz.layers`: :func:`layers` builds the audit view's layer data with numpy
  only (no Qt), so it is testable headless and usable from any napari script.
- :mod:`workbench.viz.audit`: the napari viewer with the lesion table dock widget
  (``workbench audit``); imports napari and Qt.
- :mod:`workbench.viz.figures`: the plotly figures of the notebooks and the sweep report.
"""

from workbench.viz.layers import (
    STATUS_COLOURS,
    STATUS_MEANING,
    WEIGHTED_LOSSES,
    LayerData,
    layers,
    lesion_features,
    lesion_labels,
    lesion_texts,
    marker_sizes,
)

__all__ = ["STATUS_COLOURS", "STATUS_MEANING", "WEIGHTED_LOSSES", "LayerData", "layers", "lesion_features", "lesion_labels",
           "lesion_texts", "marker_sizes"]
