"""napari layer data for the audit view, built without Qt or napari.

:func:`layers` turns a case (image channels and reference label map), optionally a prediction
and a loss, into napari ``LayerDataTuple`` s — ``(data, kwargs, layer_type)`` — that
``viewer._add_layer_from_data(*t)`` or ``viewer.add_<type>(data, **kwargs)`` accept. Every layer
has ``scale`` = the voxel spacing (so lesions look their true shape) and ``metadata["workbench"]``
saying what it shows (``kind``, ``channel`` or ``region``, ``status``), which the audit view uses
to find layers regardless of their names.

:func:`view_layers` folds these into the layers the audit view (``workbench audit`` and the
napari plugin's reader) opens: the images and label maps, one layer per kind of per-region layer
(a *slot*: Voronoi cells, components, weights, TP, FP, FN) holding the region shown, and one
points layer for the lesions of every region. Each slot layer's ``metadata["workbench"]`` also
holds every region's data (``by_region``), which :func:`region_slot` swaps in, so a napari widget
can switch regions with nothing but the layers in the viewer.

Per foreground channel (the regions in sigmoid mode, the classes in softmax mode, as the losses
see them): the reference components (ids as :mod:`workbench.instances` numbers them), their
Voronoi cells (faint), and the weight map of a weighted loss (log10, so a 100× weight reads as
2). Per region, with a prediction: the lesions of :func:`~workbench.metrics.lesion_table` in three
fixed colour-blind-safe colours (:data:`STATUS_COLOURS`, Okabe–Ito) — TP and FN layers hold the
reference lesions' voxels, the FP layer the predicted lesions' voxels, each labelled with its
lesion id — and a points layer at the lesion centroids. Only a few markers carry text (id, size,
Dice; :func:`lesion_texts`): with hundreds of false positives a label on every marker would
cover the image.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from workbench.data.manifest import CaseData
from workbench.instances import InstanceMaps, instance_maps
from workbench.labels import LabelSchema, get_schema
from workbench.losses import LOSSES, LossSpec, get_loss_spec
from workbench.metrics import lesion_table
from workbench.metrics.matching import connected_components
from workbench.instances.weights import global_inverse_weights, iwl_weights, local_inverse_weights

__all__ = [
    "STATUS_COLOURS",
    "STATUS_MEANING",
    "STATUS_ORDER",
    "VIEW_SLOTS",
    "WEIGHTED_LOSSES",
    "LayerData",
    "audit_order",
    "layers",
    "lesion_features",
    "lesion_labels",
    "lesion_texts",
    "marker_sizes",
    "region_slot",
    "view_layers",
]

LayerData = tuple[Any, dict[str, Any], str]

#: Okabe–Ito colours, distinguishable under the common colour-vision deficiencies.
STATUS_COLOURS = {"TP": "#009E73", "FP": "#0072B2", "FN": "#D55E00"}
STATUS_MEANING = {"TP": "detected", "FP": "false positive", "FN": "missed"}
#: The order an audit walks the lesions in: misses, false positives, detections.
STATUS_ORDER = {"FN": 0, "FP": 1, "TP": 2}
#: The per-region (per-channel) layer kinds :func:`view_layers` folds into one layer each.
VIEW_SLOTS = ("cells", "components", "weights", "TP", "FP", "FN")
_DRAW_ORDER = {"TP": 0, "FP": 1, "FN": 2}  # misses drawn last, on top
#: Losses whose voxel weights :func:`layers` can show: those of the loss registry with a weighting.
WEIGHTED_LOSSES = tuple(name for name, spec in LOSSES.items() if spec.weighting is not None)

_PREFERRED_IMAGE = ("t1c", "t1ce", "t1gd", "t2f", "flair")


def layers(
    case: CaseData,
    prediction: np.ndarray | None = None,
    *,
    schema: str | LabelSchema,
    loss: str | None = None,
    mode: Literal["sigmoid", "softmax"] = "sigmoid",
    connectivity: int | None = None,
    threshold: float = 0.5,
    lesions: pd.DataFrame | None = None,
    max_weight: float = 100.0,
    clip: tuple[float, float] = (1.0, 2e5),
    visible_region: str | None = None,
) -> list[LayerData]:
    """Layer data of the audit view of one case.

    Parameters
    ----------
    case : CaseData
        ``image`` (C, *S) float, ``label`` (*S) int (required), ``spacing`` of length 2 or 3.
        C may be 0 (a label map alone): the ``reference`` layer then starts visible.
    prediction : ndarray of int, shape (*S), optional
        Predicted label map in the schema's label values. Without it there are no lesion layers.
    schema : str or LabelSchema
    loss : str, optional
        One of :data:`WEIGHTED_LOSSES`: adds the weight map that loss puts on the reference.
    mode : {"sigmoid", "softmax"}
        Channels of the instance layers: regions (sigmoid) or classes (softmax), as in training.
    connectivity : int, optional
        Of components and lesions; default full (26 in 3D, 8 in 2D).
    threshold : float
        Dice threshold of the lesion matching.
    lesions : DataFrame, optional
        A :func:`~workbench.metrics.lesion_table` of ``prediction`` at ``threshold`` with the
        same connectivity, when the caller has it already; computed otherwise.
    max_weight, clip
        Weight bounds of the IWL and InvWeight losses (their defaults).
    visible_region : str, optional
        The region whose layers start visible; default the first region with a reference lesion.

    Returns
    -------
    list of (data, kwargs, layer_type)
        In mm (``scale``, ``units``): images (one per channel; one visible), ``reference`` and
        ``prediction`` labels, per channel ``<ch> Voronoi cells``, ``<ch> components``, ``<ch> weights
        (<loss>, log10)``, per region ``<r> TP``, ``<r> FP``, ``<r> FN``, ``<r> lesions`` (points).

    Raises
    ------
    ValueError
        On a missing reference, mismatched shapes, a loss without weights, an unknown region.
    """
    schema = get_schema(schema)
    reference, spacing = _check_case(case)
    prediction = _check_prediction(case, prediction, reference, schema)
    weighted = _weighted_loss(loss)
    visible_region = _visible_region(schema, reference, visible_region)
    scale = tuple(float(s) for s in spacing)

    result = _image_layers(case, scale) + _label_layers(reference, prediction, scale, visible=case.image.shape[0] == 0)
    channels = schema.foreground_names(mode)
    maps = instance_maps(schema.to_target(reference, mode)[None], mode, connectivity, spacing, num_classes=len(schema.labels))
    weight_layers = _weight_layers(maps, weighted, channels, scale, visible_region, max_weight, clip)
    result.extend(layer for channel, layer in weight_layers.items() if channel is None)  # a global weighting
    # Grouped by name: in sigmoid mode a region's instance layers sit next to its lesion layers.
    groups: dict[str, list[LayerData]] = {name: [] for name in (*channels, *schema.region_names)}
    for k, name in enumerate(channels):
        groups[name].extend(_instance_layers(maps, k, name, scale))
        if name in weight_layers:
            groups[name].append(weight_layers[name])
    if prediction is not None:
        if lesions is None:
            lesions = lesion_table(prediction, reference, schema=schema, spacing=spacing, threshold=threshold,
                                   connectivity=connectivity, case_id=case.id)
        for region in schema.region_names:
            groups[region].extend(_lesion_layers(prediction, reference, lesions, schema, region, connectivity, scale,
                                                 visible=region == visible_region))
    for group in groups.values():
        result.extend(group)
    return [(data, {**kwargs, "units": "mm"}, layer_type) for data, kwargs, layer_type in result]


def view_layers(layer_data: list[LayerData], *, view: str) -> list[LayerData]:
    """The audit view's layers: :func:`layers`' per-region layers folded into one layer per kind.

    napari's cost of a layer grows with the number of layers, so the view holds the images, the
    label maps, one *slot* layer per kind of :data:`VIEW_SLOTS` and one points layer, and shows
    one region (or channel) at a time by swapping data into the slots (:func:`region_slot`).

    Parameters
    ----------
    layer_data : list of (data, kwargs, layer_type)
        From :func:`layers`.
    view : str
        Tags every layer (``metadata["workbench"]["view"]``), so that a widget finds the layers
        of one opened case among others (e.g. the case's title).

    Returns
    -------
    list of (data, kwargs, layer_type)
        The images, label maps and a global weight map as :func:`layers` made them; then the
        slot layers, showing the region visible in ``layer_data`` (else the first), each with
        ``metadata["workbench"]`` = that region's metadata plus ``slot``, ``view``, ``shown``
        (the region shown), ``regions`` (the names it can show) and ``by_region`` (region ->
        (data, kwargs)); last, with a prediction, the ``lesions`` points of every region, drawn
        misses last, ``shown`` only in the region shown and with text on a few
        (:func:`lesion_texts`).
    """
    fixed, groups, points, first_visible = [], {}, [], None
    for data, kwargs, layer_type in layer_data:
        meta = kwargs["metadata"]["workbench"]
        if meta["kind"] == "lesions":
            points.append((data, kwargs))
        elif meta["kind"] in ("cells", "components", "weights", "status") and meta.get("channel") != "all":
            group = meta.get("region") or meta["channel"]
            groups.setdefault(group, {})[meta.get("status", meta["kind"])] = (data, kwargs, layer_type)
            if first_visible is None and kwargs.get("visible") and meta["kind"] == "status":
                first_visible = group
        else:
            fixed.append((data, {**kwargs, "metadata": {"workbench": {**meta, "view": view}}}, layer_type))
    names = tuple(groups)
    shown = first_visible or (names[0] if names else "")
    out = fixed
    for slot in VIEW_SLOTS:
        entries = {name: group[slot] for name, group in groups.items() if slot in group}
        if not entries:
            continue
        _, kwargs, layer_type = next(iter(entries.values()))
        store = {"slot": slot, "view": view, "regions": names,
                 "by_region": {name: (data, entry) for name, (data, entry, _) in entries.items()}}
        data, shown_kwargs = region_slot(store, shown)
        visible = any(entry.get("visible") for _, entry, _ in entries.values())
        out.append((data, {**kwargs, **shown_kwargs, "visible": visible}, layer_type))
    if points:
        out.append(_view_points(points, shown, view))
    return out


def region_slot(slot_meta: dict[str, Any], region: str) -> tuple[np.ndarray, dict[str, Any]]:
    """What a slot layer of :func:`view_layers` shows for region (or channel) ``region``.

    Parameters
    ----------
    slot_meta : dict
        The slot layer's ``metadata["workbench"]`` (its ``slot``, ``view``, ``regions``, ``by_region``).
    region : str

    Returns
    -------
    data : ndarray, shape (*S)
        The region's layer data; zeros if the region has no layer of this kind.
    kwargs : dict
        ``name``, ``metadata`` (the region's, with ``slot_meta``'s store and ``shown``) and, for
        an image, ``contrast_limits``.
    """
    store = {key: slot_meta[key] for key in ("slot", "view", "regions", "by_region")}
    by_region = store["by_region"]
    if region not in by_region:
        empty = np.zeros_like(next(iter(by_region.values()))[0])
        return empty, {"name": f"{region} {store['slot']} (none)",
                       "metadata": {"workbench": {"kind": "empty", **store, "shown": region}}}
    data, kwargs = by_region[region]
    out = {"name": kwargs["name"], "metadata": {"workbench": {**kwargs["metadata"]["workbench"], **store, "shown": region}}}
    if "contrast_limits" in kwargs:
        out["contrast_limits"] = kwargs["contrast_limits"]
    return data, out


def _view_points(points: list[tuple[np.ndarray, dict[str, Any]]], shown: str, view: str) -> LayerData:
    """One points layer for every region's lesion markers (misses drawn last), showing region ``shown``'s."""
    coords = np.concatenate([data for data, _ in points])
    kwargs = dict(points[0][1])
    features = pd.concat([k["features"] for _, k in points], ignore_index=True)
    on_top = np.argsort(features["status"].map(_DRAW_ORDER).to_numpy(), kind="stable")
    coords, features = coords[on_top], features.iloc[on_top].reset_index(drop=True)
    in_region = features["region"].to_numpy() == shown
    features["text"] = lesion_texts(features, kwargs["scale"], among=in_region)
    kwargs.update(name="lesions", visible=True, features=features, shown=in_region,
                  border_color=[STATUS_COLOURS[s] for s in features["status"]] or "white",
                  size=marker_sizes(features, coords.shape[1]),
                  metadata={"workbench": {"kind": "lesions", "region": shown, "view": view}})
    return coords, kwargs, "points"


def audit_order(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` (:func:`lesion_features` rows) in the order an audit walks them: FN, FP, TP, each largest first."""
    order = np.lexsort((-features["size_mm3"].fillna(0).to_numpy(), features["status"].map(STATUS_ORDER).to_numpy()))
    return features.iloc[order].reset_index(drop=True)


def lesion_labels(
    prediction: np.ndarray,
    reference: np.ndarray,
    lesions: pd.DataFrame,
    *,
    schema: str | LabelSchema,
    region: str,
    connectivity: int | None = None,
) -> dict[str, np.ndarray]:
    """The voxels of a region's TP, FP and FN lesions, labelled with their lesion ids.

    Parameters
    ----------
    prediction, reference : ndarray of int, shape (*S)
        Label maps in the schema's values.
    lesions : DataFrame
        Rows of :func:`~workbench.metrics.lesion_table` for this region and one threshold, with
        the same connectivity.
    schema : str or LabelSchema
    region : str
    connectivity : int, optional

    Returns
    -------
    dict of str to ndarray of int32, shape (*S)
        ``"TP"``, ``"FN"``: the matched and the missed reference lesions, valued by ``ref_id``;
        ``"FP"``: the unmatched predicted lesions, valued by ``pred_id``; 0 elsewhere.
    """
    schema = get_schema(schema)
    if region not in schema.regions:
        raise ValueError(f"Unknown region {region!r}; schema {schema.name!r} has {list(schema.regions)}.")
    if lesions["region"].ne(region).any() or lesions["threshold"].nunique() > 1:
        raise ValueError(f"Expected the lesion rows of region {region!r} at one threshold.")
    members = schema.regions[region]
    ref_ids, _ = connected_components(np.isin(reference, members), connectivity=connectivity)
    pred_ids, _ = connected_components(np.isin(prediction, members), connectivity=connectivity)
    out = {}
    for status, ids, column in (("TP", ref_ids, "ref_id"), ("FN", ref_ids, "ref_id"), ("FP", pred_ids, "pred_id")):
        chosen = lesions.loc[lesions["status"] == status, column].to_numpy(dtype=np.int64)
        out[status] = np.where(np.isin(ids, chosen), ids, 0).astype(np.int32)
    return out


def _check_case(case: CaseData) -> tuple[np.ndarray, tuple[float, ...]]:
    if case.label is None:
        raise ValueError(f"Case {case.id!r} has no reference label map; the audit view compares against one.")
    reference = np.asarray(case.label)
    if reference.ndim not in (2, 3) or len(case.spacing) != reference.ndim:
        raise ValueError(
            f"Case {case.id!r}: expected a 2D or 3D label map with one spacing per axis, but got shape "
            f"{reference.shape} and spacing {case.spacing}."
        )
    if case.image.shape[1:] != reference.shape:
        raise ValueError(f"Case {case.id!r}: image shape {case.image.shape} does not fit label shape {reference.shape}.")
    return reference, tuple(case.spacing)


def _check_prediction(
    case: CaseData, prediction: np.ndarray | None, reference: np.ndarray, schema: LabelSchema
) -> np.ndarray | None:
    """``prediction`` as an array of the reference's shape and the schema's labels (None stays None)."""
    if prediction is None:
        return None
    prediction = np.asarray(prediction)
    if prediction.shape != reference.shape:
        raise ValueError(
            f"Prediction of case {case.id!r} has shape {prediction.shape}, but its reference has {reference.shape}."
        )
    schema.validate(prediction)
    return prediction


def _weighted_loss(loss: str | None) -> LossSpec | None:
    """The registry entry of ``loss``, a loss of :data:`WEIGHTED_LOSSES` (None: no loss)."""
    if loss is None:
        return None
    if loss not in WEIGHTED_LOSSES:
        raise ValueError(f"Loss {loss!r} puts no weights on voxels; weight maps exist for {', '.join(WEIGHTED_LOSSES)}.")
    return get_loss_spec(loss)


def _visible_region(schema: LabelSchema, reference: np.ndarray, region: str | None) -> str:
    """``region``, checked; None: the first region with a reference lesion (else the first region)."""
    regions = schema.region_names
    if region is not None and region not in regions:
        raise ValueError(f"Unknown region {region!r}; schema {schema.name!r} has {list(regions)}.")
    if region is not None:
        return region
    masks = schema.to_region_masks(reference)
    return next((r for r, m in zip(regions, masks) if m.any()), regions[0])


def _label_layers(
    reference: np.ndarray, prediction: np.ndarray | None, scale: tuple[float, ...], *, visible: bool
) -> list[LayerData]:
    """The ``reference`` (shown if ``visible``) and (with one) ``prediction`` label maps, int32 (*S), hidden."""
    kwargs = {"scale": scale, "opacity": 0.5, "visible": False}
    out = [(reference.astype(np.int32), {**kwargs, "name": "reference", "visible": visible, **_meta("reference")}, "labels")]
    if prediction is not None:
        out.append((prediction.astype(np.int32), {**kwargs, "name": "prediction", **_meta("prediction")}, "labels"))
    return out


def _instance_layers(maps: InstanceMaps, k: int, name: str, scale: tuple[float, ...]) -> list[LayerData]:
    """Channel ``k``'s Voronoi cells (faint) and components of batch element 0, hidden."""
    return [
        (maps.cells[0, k], {"name": f"{name} Voronoi cells", "scale": scale, "opacity": 0.25, "visible": False,
                            **_meta("cells", channel=name)}, "labels"),
        (maps.components[0, k], {"name": f"{name} components", "scale": scale, "opacity": 0.6, "visible": False,
                                 **_meta("components", channel=name)}, "labels"),
    ]


def _lesion_layers(
    prediction: np.ndarray,
    reference: np.ndarray,
    lesions: pd.DataFrame,
    schema: LabelSchema,
    region: str,
    connectivity: int | None,
    scale: tuple[float, ...],
    *,
    visible: bool,
) -> list[LayerData]:
    """A region's TP, FP and FN label layers (:func:`lesion_labels`) and its lesion points."""
    region_lesions = lesions[lesions["region"] == region]
    status_maps = lesion_labels(prediction, reference, region_lesions, schema=schema, region=region,
                                connectivity=connectivity)
    out = []
    for status in ("TP", "FP", "FN"):
        kwargs = {"name": f"{region} {status}", "scale": scale, "opacity": 0.6, "visible": visible,
                  "colormap": {None: STATUS_COLOURS[status], 0: "transparent"},
                  **_meta("status", region=region, status=status)}
        out.append((status_maps[status], kwargs, "labels"))
    out.append(_points_layer(region_lesions, region, scale, len(scale), visible=visible))
    return out


def _meta(kind: str, **fields: str) -> dict[str, Any]:
    return {"metadata": {"workbench": {"kind": kind, **fields}}}


def _image_layers(case: CaseData, scale: tuple[float, ...]) -> list[LayerData]:
    names = case.modalities or tuple(f"channel {i}" for i in range(case.image.shape[0]))
    if not names:
        return []
    shown = next((n for n in _PREFERRED_IMAGE if n in names), names[0])
    out = []
    for name, channel in zip(names, case.image):
        out.append((channel, {"name": name, "scale": scale, "colormap": "gray", "visible": name == shown,
                              "contrast_limits": _contrast_limits(channel), **_meta("image")}, "image"))
    return out


_ANATOMY_MAX_GREY = 0.7
"""The grey level of the head's 99.5th percentile: anatomy stays below white, so overlays and their text stand out."""


def _contrast_limits(channel: np.ndarray) -> tuple[float, float]:
    """From the 0.5th percentile of the non-zero voxels (the head, not the air) to where the 99.5th shows 70 % grey."""
    values = channel[channel != 0]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    return (low, low + (high - low) / _ANATOMY_MAX_GREY) if high > low else (low, low + 1.0)


def _weight_maps(maps: InstanceMaps, loss: LossSpec, max_weight: float, clip: tuple[float, float]) -> np.ndarray:
    """The voxel weights ``loss`` puts on batch element 0: (*S) for a global weighting, else (K, *S)."""
    if loss.weighting == "global":
        return global_inverse_weights(maps, clip=clip)[0]
    if loss.weighting == "local":
        return local_inverse_weights(maps, clip=clip)[0]
    return iwl_weights(maps, domain=loss.domain, max_weight=max_weight)[0]


def _weight_layers(
    maps: InstanceMaps,
    loss: LossSpec | None,
    channels: tuple[str, ...],
    scale: tuple[float, ...],
    visible_region: str,
    max_weight: float,
    clip: tuple[float, float],
) -> dict[str | None, LayerData]:
    """The weight layer of ``loss`` per channel name, or one under None for a global weighting ({} without a loss)."""
    if loss is None:
        return {}
    weights = _weight_maps(maps, loss, max_weight, clip)
    if loss.weighting == "global":
        return {None: _weight_layer(weights, loss.name, None, scale, visible=True)}
    return {
        name: _weight_layer(weights[k], loss.name, name, scale, visible=name == visible_region)
        for k, name in enumerate(channels)
    }


def _weight_layer(weights: np.ndarray, loss: str, channel: str | None, scale, *, visible: bool) -> LayerData:
    log_weights = np.log10(np.maximum(weights, 1e-12)).astype(np.float32)
    top = max(float(log_weights.max()), 1e-3)
    name = f"{channel + ' ' if channel else ''}weights ({loss}, log10)"
    kwargs = {"name": name, "scale": scale, "colormap": "magma", "contrast_limits": (0.0, top), "opacity": 0.6,
              "blending": "additive", "visible": visible, **_meta("weights", channel=channel or "all", loss=loss)}
    return log_weights, kwargs, "image"


def _points_layer(lesions: pd.DataFrame, region: str, scale, ndim: int, *, visible: bool) -> LayerData:
    axes = ["centroid_z", "centroid_y", "centroid_x"][3 - ndim:]
    coords = lesions[axes].to_numpy(dtype=np.float64).reshape(-1, ndim)
    features = lesion_features(lesions, ndim)
    features["text"] = lesion_texts(features, scale)
    kwargs = {
        "name": f"{region} lesions", "scale": scale, "features": features, "visible": visible,
        # thin circles around each lesion, so the lesion stays visible; white text on the dimmed anatomy
        "size": marker_sizes(features, ndim), "symbol": "disc", "face_color": "transparent",
        "border_width": 0.1, "border_color": [STATUS_COLOURS[s] for s in features["status"]] or "white",
        "text": {"string": "{text}", "size": 9, "color": "white", "anchor": "upper_left"},
        **_meta("lesions", region=region),
    }
    return coords, kwargs, "points"


def marker_sizes(features: pd.DataFrame, ndim: int = 3) -> np.ndarray:
    """Ring diameters in mm that encircle each lesion: 1.5 × the diameter of a ball (disc, 2D) of its size, 6–30 mm.

    ``features`` from :func:`lesion_features` (its ``size_mm3``: mm³, or mm² when ``ndim`` is 2).
    """
    size = features["size_mm3"].to_numpy(np.float64)
    diameter = np.cbrt(6.0 * size / np.pi) if ndim == 3 else 2.0 * np.sqrt(size / np.pi)
    return np.clip(1.5 * np.nan_to_num(diameter), 6.0, 30.0)


def lesion_features(lesions: pd.DataFrame, ndim: int = 3) -> pd.DataFrame:
    """One row per lesion for display: region, status, id, size, Dice, centroid and a text label.

    ``id`` is ``ref_id`` for TP/FN rows and ``pred_id`` for FP rows; ``size_mm3`` likewise
    (mm² for 2D maps, ``ndim=2``).
    """
    is_fp = lesions["status"].eq("FP").to_numpy()
    ids = np.where(is_fp, lesions["pred_id"].fillna(0).to_numpy(np.int64), lesions["ref_id"].fillna(0).to_numpy(np.int64))
    sizes = np.where(is_fp, lesions["pred_mm3"].to_numpy(np.float64), lesions["ref_mm3"].to_numpy(np.float64))
    unit = "mm³" if ndim == 3 else "mm²"
    features = pd.DataFrame({
        "region": lesions["region"].to_numpy(object),
        "status": lesions["status"].to_numpy(object),
        "id": ids,
        "size_mm3": sizes,
        "dice": lesions["dice"].to_numpy(np.float64),
        **{axis: lesions[axis].to_numpy(np.float64) for axis in ("centroid_z", "centroid_y", "centroid_x")},
    })
    features["label"] = [
        f"{r} {s} {'P' if s == 'FP' else 'R'}{i} · {v:.0f} {unit} · Dice {d:.2f}"
        for r, s, i, v, d in zip(features["region"], features["status"], ids, sizes, features["dice"])
    ]
    return features


#: Text labels a region's markers carry when no lesion is selected (misses, then detections, largest first).
DEFAULT_LABELS = 8
#: Lesions labelled around a selected one, and how far from it (centroid distance, mm).
NEIGHBOURS, NEIGHBOUR_MM = 3, 20.0


def lesion_texts(
    features: pd.DataFrame,
    spacing: tuple[float, ...],
    *,
    selected: int | None = None,
    among: np.ndarray | None = None,
    slice_axis: int | None = None,
    min_gap_mm: float = 0.0,
    cap: int = DEFAULT_LABELS,
    neighbours: int = NEIGHBOURS,
    radius_mm: float = NEIGHBOUR_MM,
) -> np.ndarray:
    """The text on each lesion marker: a label for a few lesions, ``""`` (a plain marker) for the rest.

    Parameters
    ----------
    features : DataFrame
        :func:`lesion_features` rows (``status``, ``id``, ``size_mm3``, ``label``, centroids in voxels).
    spacing : tuple of float
        Voxel size in mm (2 or 3 values), for distances between centroids.
    selected : int, optional
        Row position of the selected lesion. It gets its full ``label``; its ``neighbours``
        nearest lesions (any status) within ``radius_mm`` get a short one (``FP P43``).
        Without it: the ``cap`` largest misses, then detections, get their full label, and
        every false positive is a plain marker.
    among : ndarray of bool, shape (N,), optional
        Rows that may be labelled (e.g. the region shown); default all. The selected row always is.
    slice_axis : int, optional
        The array axis a 2D view slices: neighbours are then the lesions whose centroid lies on
        the selected lesion's slice (within half a voxel, as napari shows points), at in-plane
        distance; default the nearest in 3D.
    min_gap_mm : float
        A neighbour closer than this to a lesion labelled already (the selected one or a nearer
        neighbour) stays plain, so that labels do not print over each other (e.g. a text line's
        height on screen, in mm).
    cap, neighbours : int
    radius_mm : float

    Returns
    -------
    ndarray of str (object), shape (N,)
    """
    n = len(features)
    texts = np.full(n, "", dtype=object)
    among = np.ones(n, dtype=bool) if among is None else np.asarray(among, dtype=bool)
    status = features["status"].to_numpy(object)
    if selected is None:
        candidates = np.flatnonzero(among & np.isin(status, ("FN", "TP")))
        rank = np.lexsort((-features["size_mm3"].to_numpy(np.float64)[candidates], status[candidates] != "FN"))
        chosen = candidates[rank[:cap]]
        texts[chosen] = features["label"].to_numpy(object)[chosen]
        return texts
    axes = ["centroid_z", "centroid_y", "centroid_x"][3 - len(spacing):]
    mm = features[axes].to_numpy(np.float64) * np.asarray(spacing, dtype=np.float64)
    candidates = among & (np.arange(n) != selected)
    if slice_axis is not None:
        voxels = features[axes[slice_axis]].to_numpy(np.float64)
        candidates &= np.abs(voxels - np.round(voxels[selected])) <= 0.5
        mm[:, slice_axis] = 0.0
    distance = np.linalg.norm(mm - mm[selected], axis=1)
    near = np.flatnonzero(candidates & (distance <= radius_mm))
    labelled = [selected]
    for k in near[np.argsort(distance[near], kind="stable")]:
        if len(labelled) > neighbours:
            break
        if np.linalg.norm(mm[labelled] - mm[k], axis=1).min() >= min_gap_mm:
            labelled.append(k)
    near = np.array(labelled[1:], dtype=np.int64)
    ids = features["id"].to_numpy(np.int64)
    texts[near] = [f"{status[k]} {'P' if status[k] == 'FP' else 'R'}{ids[k]}" for k in near]
    texts[selected] = features["label"].iloc[selected]
    return texts
