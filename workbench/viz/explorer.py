"""The loss explorer: one phantom volume, a prediction shaped from its reference, and what a loss makes of it.

:class:`LossExplorer` holds one synthetic case (image, reference, its instance maps computed
once) and evaluates an instance loss on a prediction derived from the reference by a
:class:`Shaping` (dilate or erode every lesion, grow the largest, shift, leave out small lesions,
logit confidence and noise): the loss next to DC+CE alone, the per-component table of its instance
term, and the per-voxel gradient magnitude ``|∂L/∂logits|`` of both. :func:`explorer_widget` puts
that behind ipywidgets controls, a short text on what to try and two plotly ``FigureWidget`` views
that are updated in place, so the notebook ``01_loss_explorer`` stays a few lines and the tests
drive the same code without a browser.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import cc3d
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from scipy import ndimage

from workbench._validate import DEFAULT_CONNECTIVITY
from workbench.data.phantoms import make_case
from workbench.instances import instance_maps
from workbench.labels import BRATS_METS_2025, LabelSchema
from workbench.losses import LOSSES, build_loss
from workbench.viz.figures import component_loss_bars, gradient_slices

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "EXPLORER_LOSSES",
    "Exploration",
    "LossExplorer",
    "Shaping",
    "components_figure",
    "components_html",
    "explorer_widget",
    "values_html",
]

EXPLORER_LOSSES = tuple(name for name, spec in LOSSES.items() if spec.instance_term)
"""Instance losses with a per-component table, the ones the explorer shows (from the loss registry)."""

_WIDTH = 820  # px: fits a cell at a 1280 px window with the file browser open, where five slices stay
# legible (anywidget's FigureWidget does not fill the cell; tests/lab/test_explorer_layout.py measures)


@dataclass(frozen=True)
class Shaping:
    """How the prediction is derived from the reference.

    Attributes
    ----------
    dilate : int
        Voxels of binary dilation of every predicted mask (negative: erosion).
    grow_largest : int
        Voxels of further dilation of the largest reference lesion of each region or class (≥ 0):
        one over-segmented lesion.
    shift : int
        Voxels the prediction is rolled along the first spatial axis.
    miss_below : int
        Reference lesions smaller than this many voxels are left out of the prediction (≥ 0).
    confidence : float
        Logit magnitude inside and outside the predicted masks (≥ 0).
    noise : float
        Standard deviation of the Gaussian logit noise (≥ 0); the noise is the same for every
        shaping of one explorer (seeded by its case), so only the shaping changes between views.
    """

    dilate: int = 0
    grow_largest: int = 0
    shift: int = 0
    miss_below: int = 30
    confidence: float = 10.0
    noise: float = 0.5

    def __post_init__(self) -> None:
        for name in ("dilate", "grow_largest", "shift", "miss_below"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Expected `{name}` to be an integer, but got {value!r} ({type(value).__name__}).")
        for name in ("grow_largest", "miss_below"):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected `{name}` ≥ 0, but got {getattr(self, name)}.")
        for name in ("confidence", "noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"Expected `{name}` to be a finite number ≥ 0, but got {value!r}.")


@dataclass(frozen=True)
class Exploration:
    """One evaluation of the explorer.

    Attributes
    ----------
    loss : str
        The instance loss (one of :data:`EXPLORER_LOSSES`), ``1 · DC+CE + 1 · instance term``.
    shaping : Shaping
    values : dict[str, float]
        ``{loss: value, "dc_ce": value}``.
    components : DataFrame
        ``InstanceLoss.components``: one row per reference component (``batch, channel, id, size,
        domain_size, weight, dice, ce, loss``), channels named.
    prediction : ndarray of bool, shape (K, X, Y, Z)
        The shaped foreground masks, one per region (sigmoid) or class (softmax).
    gradients : dict[str, ndarray]
        Loss name → (X, Y, Z) float32 ``|∂L/∂logits|`` summed over the channels.
    seconds : float
        Wall time of the evaluation.
    """

    loss: str
    shaping: Shaping
    values: dict[str, float]
    components: pd.DataFrame
    prediction: np.ndarray
    gradients: dict[str, np.ndarray] = field(repr=False)
    seconds: float


class LossExplorer:
    """One phantom case, its target and instance maps, ready to evaluate losses on shaped predictions.

    Parameters
    ----------
    case_seed : int
        The phantom (:func:`workbench.data.phantoms.make_case`), ≥ 0.
    shape : tuple of 3 int
        Its grid; each side ≥ 16.
    mode : {"sigmoid", "softmax"}
        Regions WT/TC/ET/RC as independent sigmoid channels, or the classes under a softmax.
    schema : LabelSchema
        The label schema (BraTS-METS 2025).
    """

    def __init__(
        self,
        case_seed: int = 0,
        shape: tuple[int, int, int] = (64, 64, 64),
        mode: Literal["sigmoid", "softmax"] = "sigmoid",
        schema: LabelSchema = BRATS_METS_2025,
    ) -> None:
        if isinstance(case_seed, bool) or not isinstance(case_seed, (int, np.integer)) or case_seed < 0:
            raise ValueError(f"Expected `case_seed` to be an integer ≥ 0, but got {case_seed!r}.")
        shape = tuple(shape)
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 16 for s in shape):
            raise ValueError(f"Expected `shape` to be 3 integers ≥ 16, but got {shape!r}.")
        if mode not in ("sigmoid", "softmax"):
            raise ValueError(f"Expected `mode` to be 'sigmoid' or 'softmax', but got {mode!r}.")
        self.case_seed = int(case_seed)
        self.mode = mode
        self.schema = schema
        self.phantom = make_case(self.case_seed, shape=shape)
        self.names = schema.foreground_names(mode)
        target = schema.to_target(self.phantom.label, mode)  # sigmoid: (R, *S) bool; softmax: (*S) 0..C
        if mode == "sigmoid":
            self.masks = target.astype(bool)
            self.target = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[None]
        else:
            self.masks = np.stack([target == c for c in range(1, len(self.names) + 1)])
            self.target = torch.from_numpy(target.astype(np.int64))[None]
        self.spacing = tuple(float(s) for s in self.phantom.spacing)
        self.instances = instance_maps(
            target[None], mode, DEFAULT_CONNECTIVITY, self.spacing, voronoi=True,
            **({"num_classes": len(self.names)} if mode == "softmax" else {}),
        )
        self._noise = np.random.default_rng(self.case_seed).standard_normal(
            (len(self.names) + (mode == "softmax"), *self.masks.shape[1:])
        ).astype(np.float32)
        self._losses: dict[str, torch.nn.Module] = {"dc_ce": build_loss("dc_ce", mode=mode, schema=schema.name)}

    @property
    def shape(self) -> tuple[int, int, int]:
        """The phantom's grid (X, Y, Z)."""
        return self.masks.shape[1:]

    def lesion_counts(self) -> pd.DataFrame:
        """Reference lesions and voxels per region (sigmoid) or class (softmax), indexed by name."""
        return pd.DataFrame(
            {"lesions": self.instances.counts[0].astype(int), "voxels": [int(m.sum()) for m in self.masks]},
            index=pd.Index(self.names, name=self.mode),
        )

    def largest_lesion_slice(self, region: str) -> int:
        """The z index through the centre of ``region``'s largest reference lesion (the middle slice if it has none)."""
        largest = self._largest_lesion(self._channel(region))
        if largest is None:
            return self.shape[2] // 2
        return int(round(ndimage.center_of_mass(largest)[2]))

    def prediction(self, shaping: Shaping) -> np.ndarray:
        """The shaped foreground masks, (K, X, Y, Z) bool.

        Per region or class: lesions below ``miss_below`` voxels are left out, every mask is dilated
        (or eroded), the largest lesion (when kept) grows by ``grow_largest`` more, then all are shifted.
        """
        out = []
        for channel, mask in enumerate(self.masks):
            if shaping.miss_below > 0:
                mask = cc3d.dust(mask, threshold=shaping.miss_below, connectivity=DEFAULT_CONNECTIVITY)
            mask = _dilate(mask, shaping.dilate)
            largest = self._largest_lesion(channel)
            if shaping.grow_largest > 0 and largest is not None and largest.sum() >= shaping.miss_below:
                mask = mask | _dilate(largest, shaping.dilate + shaping.grow_largest)
            out.append(np.roll(mask, shaping.shift, axis=0))
        return np.stack(out)

    def logits(self, prediction: np.ndarray, shaping: Shaping) -> torch.Tensor:
        """Logits (1, C, X, Y, Z) float32: ±confidence on the masks plus the explorer's fixed noise × ``shaping.noise``.

        Softmax mode puts a background channel (the complement of every mask) first.
        """
        if self.mode == "softmax":
            prediction = np.concatenate([~prediction.any(0, keepdims=True), prediction])
        logits = shaping.confidence * (2.0 * prediction.astype(np.float32) - 1.0) + shaping.noise * self._noise
        return torch.from_numpy(logits.astype(np.float32))[None]

    def evaluate(self, loss: str, shaping: Shaping) -> Exploration:
        """The loss (``1 · DC+CE + 1 · instance``) and DC+CE on the shaped prediction, the component table, the gradients."""
        if loss not in EXPLORER_LOSSES:
            raise ValueError(f"Expected `loss` to be one of {EXPLORER_LOSSES}, but got {loss!r}.")
        start = time.perf_counter()
        prediction = self.prediction(shaping)
        logits = self.logits(prediction, shaping)
        instance_loss = self._loss(loss)
        values, gradients = {}, {}
        for name, loss_fn in ((loss, instance_loss), ("dc_ce", self._losses["dc_ce"])):
            leaf = logits.clone().requires_grad_(True)
            value = loss_fn(leaf, self.target, **({"instances": self.instances} if name != "dc_ce" else {}))
            value.backward()
            values[name] = float(value.detach())
            gradients[name] = leaf.grad[0].abs().sum(0).numpy()
        components = instance_loss.components(logits, self.target, instances=self.instances)
        return Exploration(loss, shaping, values, components, prediction, gradients, time.perf_counter() - start)

    def slices_figure(self, exploration: Exploration, region: str, z: int) -> go.Figure:
        """Image (t1c), reference and prediction of ``region``, and both gradient magnitudes on slice ``z``."""
        channel = self._channel(region)
        if not 0 <= z < self.shape[2]:
            raise ValueError(f"Expected slice `z` in [0, {self.shape[2] - 1}], but got {z}.")
        figure = gradient_slices(
            self.phantom.image[1, :, :, z].T,
            {name: gradient[:, :, z].T for name, gradient in exploration.gradients.items()},
            masks={f"reference {region}": self.masks[channel][:, :, z].T,
                   f"prediction {region}": exploration.prediction[channel][:, :, z].T},
            image_title="image (t1c)",
            title=f"{exploration.loss} and dc_ce: |∂L/∂logits| on slice z = {z}",
        )
        return figure.update_layout(width=_WIDTH, height=360)

    def _loss(self, name: str) -> torch.nn.Module:
        if name not in self._losses:
            self._losses[name] = build_loss(name, mode=self.mode, schema=self.schema.name, spacing=self.spacing)
        return self._losses[name]

    def _largest_lesion(self, channel: int) -> np.ndarray | None:
        """The mask (X, Y, Z) bool of the channel's largest reference lesion; None when it has none."""
        if self.instances.counts[0, channel] == 0:
            return None
        return self.instances.components[0, channel] == int(np.argmax(self.instances.sizes[0][channel])) + 1

    def _channel(self, region: str) -> int:
        if region not in self.names:
            raise ValueError(f"Expected `region` to be one of {self.names} (mode {self.mode!r}), but got {region!r}.")
        return self.names.index(region)


def _dilate(mask: np.ndarray, voxels: int) -> np.ndarray:
    """``mask`` dilated by ``voxels`` (eroded when negative; itself when 0)."""
    if voxels > 0:
        return ndimage.binary_dilation(mask, iterations=voxels)
    if voxels < 0:
        return ndimage.binary_erosion(mask, iterations=-voxels)
    return mask


def values_html(exploration: Exploration) -> str:
    """The loss values, its instance term and the evaluation time as a small HTML table (the widget's first readout).

    The instance term is the loss less DC+CE (the explorer's losses weigh both by 1).
    """
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='wb-value' data-loss='{html.escape(name)}'>{value:.4f}</td></tr>"
        for name, value in exploration.values.items()
    )
    term = exploration.values[exploration.loss] - exploration.values["dc_ce"]
    rows += (f"<tr><td>instance term<br>({html.escape(exploration.loss)} − dc_ce)</td>"
             f"<td class='wb-term'>{term:.4f}</td></tr>")
    return (f"<table class='wb-values'><tr><th>loss</th><th>value</th></tr>{rows}</table>"
            f"<div class='wb-seconds'>evaluated in {exploration.seconds:.2f} s</div>")


_HINT = """<div class='wb-hint' style='max-width: 820px; line-height: 1.4'>
<b>What to try.</b> At these defaults the prediction leaves out every lesion under <i>miss below</i>
voxels. In the table and the bars each missed lesion's term is ≈ 1 and each found one's is low: the
instance term averages them per lesion, while DC+CE counts voxels, which the large lesions dominate.
The gradient panels light up the missed lesion.
<ul style='margin: 2px 0'>
<li>Set <i>miss below</i> to 0 and back: the instance term moves several times as much as DC+CE.</li>
<li>Raise <i>grow largest</i> (one lesion over-segmented): with blob every lesion's term rises, as the
false positives lie in every blob's domain; switch <i>loss</i> to cc (Voronoi-cell domains) and only
the grown lesion's term rises.</li>
<li>Lower <i>confidence</i> to 3: the soft background of each lesion's large domain pushes every
term towards 1 and the differences fade.</li>
</ul></div>"""
"""The text under the explorer's controls: what the defaults show and which controls to move."""


def components_html(exploration: Exploration) -> str:
    """The per-component table as HTML (3 decimals); ``dice`` and ``ce`` are the component's loss terms."""
    table = exploration.components.drop(columns="batch").rename(columns={"dice": "Dice loss", "ce": "CE"})
    return table.to_html(index=False, float_format="{:.3f}".format, classes="wb-components", border=0)


def explorer_widget(
    explorer: LossExplorer,
    loss: str = "blob",
    region: str = "WT",
    shaping: Shaping = Shaping(),
) -> ipywidgets.Widget:
    """Controls and views of the explorer, updated in place when a control changes.

    Controls: the loss, the region whose reference and prediction are drawn, the slice, and the
    six :class:`Shaping` values (sliders update on release), then a short text on what to try.
    Views: the loss values and its instance term, the per-component table (never in a scroll
    box), the component losses as bars and the slices, both plotly ``FigureWidget`` s whose
    traces are replaced in place (no re-render of the output area).

    Returns
    -------
    ipywidgets.VBox
        Its ``controls`` attribute maps control names (``loss``, ``region``, ``z`` and the
        :class:`Shaping` fields) to the widgets; ``exploration`` is the latest
        :class:`Exploration`.
    """
    import ipywidgets as widgets

    explorer._channel(region)
    initial = explorer.evaluate(loss, shaping)
    controls = _controls(explorer, loss, region, shaping)
    problem = widgets.HTML()  # an exception in a callback would otherwise only reach the kernel's log
    values = widgets.HTML(values_html(initial), layout=widgets.Layout(flex="0 0 auto", margin="0 24px 0 0"))
    table = widgets.HTML(components_html(initial), layout=widgets.Layout(flex="0 0 auto"))  # never a scroll box
    bars = go.FigureWidget(components_figure(initial))
    slices = go.FigureWidget(explorer.slices_figure(initial, region, controls["z"].value))
    box = widgets.VBox([
        widgets.HBox([controls["loss"], controls["region"], controls["z"]]),
        widgets.HBox([controls["dilate"], controls["grow_largest"], controls["shift"]]),
        widgets.HBox([controls["miss_below"], controls["confidence"], controls["noise"]]),
        widgets.HTML(_HINT),
        problem,
        widgets.HBox([values, table], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
        bars,
        slices,
    ])
    box.controls = controls
    box.exploration = initial

    def redraw_slices(_change=None) -> None:
        _update_figure(slices, explorer.slices_figure(box.exploration, controls["region"].value, controls["z"].value))

    def reevaluate(_change=None) -> None:
        shaping = Shaping(**{f.name: controls[f.name].value for f in fields(Shaping)})
        box.exploration = explorer.evaluate(controls["loss"].value, shaping)
        values.value = values_html(box.exploration)
        table.value = components_html(box.exploration)
        _update_figure(bars, components_figure(box.exploration))
        redraw_slices()

    def change_region(change) -> None:
        if controls["z"].value == (z := explorer.largest_lesion_slice(change["new"])):
            redraw_slices()
        controls["z"].value = z  # redraws through its own observer

    for name in ("loss", *(f.name for f in fields(Shaping))):
        controls[name].observe(_shown_in(problem, reevaluate), names="value")
    controls["region"].observe(_shown_in(problem, change_region), names="value")
    controls["z"].observe(_shown_in(problem, redraw_slices), names="value")
    return box


def _controls(explorer: LossExplorer, loss: str, region: str, shaping: Shaping) -> dict[str, ipywidgets.ValueWidget]:
    """The widget's controls by name: ``loss``, ``region``, slice ``z`` and the :class:`Shaping` fields."""
    import ipywidgets as widgets

    return {
        "loss": widgets.Dropdown(options=EXPLORER_LOSSES, value=loss, description="loss"),
        "region": widgets.Dropdown(options=explorer.names, value=region, description="region"),
        "z": _slider(widgets.IntSlider, explorer.largest_lesion_slice(region), 0, explorer.shape[2] - 1, 1, "slice z"),
        "dilate": _slider(widgets.IntSlider, shaping.dilate, -3, 3, 1, "dilate"),
        "grow_largest": _slider(widgets.IntSlider, shaping.grow_largest, 0, 4, 1, "grow largest"),
        "shift": _slider(widgets.IntSlider, shaping.shift, -8, 8, 1, "shift"),
        "miss_below": _slider(widgets.IntSlider, shaping.miss_below, 0, 200, 5, "miss below"),
        "confidence": _slider(widgets.FloatSlider, shaping.confidence, 0.0, 15.0, 0.5, "confidence"),
        "noise": _slider(widgets.FloatSlider, shaping.noise, 0.0, 5.0, 0.25, "noise"),
    }


def _slider(kind: type, value: float, low: float, high: float, step: float, description: str) -> Any:
    """A ``kind`` slider that updates on release, over ``[low, high]`` grown to hold ``value`` (never clipped)."""
    return kind(value=value, min=min(low, value), max=max(high, value), step=step, description=description,
                continuous_update=False, style={"description_width": "initial"})


def _shown_in(problem: ipywidgets.HTML, callback: Callable[[dict], None]) -> Callable[[dict], None]:
    """``callback`` as an observer whose exception is shown in ``problem`` (then re-raised); a success clears it."""
    def observer(change: dict) -> None:
        try:
            callback(change)
            problem.value = ""
        except Exception as error:
            problem.value = f"<pre style='color: #b00020'>{html.escape(f'{type(error).__name__}: {error}')}</pre>"
            raise
    return observer


def components_figure(exploration: Exploration) -> go.Figure:
    """The loss of every reference component as bars, one colour per region or class (empty: a titled blank)."""
    if len(exploration.components) == 0:
        return go.Figure(layout={"title": {"text": "no reference components"}, "height": 320, "width": _WIDTH})
    figure = component_loss_bars(exploration.components)
    figure.update_layout(title=f"{exploration.loss}: loss per component", height=320, width=_WIDTH)
    return figure


def _update_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Give a FigureWidget a figure's traces and layout: restyled in place when the traces match, else replaced."""
    if [(t.type, t.name) for t in widget.data] != [(t.type, t.name) for t in figure.data]:
        widget.data = ()  # adding and deleting traces are messages of their own, outside a batch
        widget.add_traces(list(figure.data))
        widget.layout = figure.layout
        return
    with widget.batch_update():  # one message to the front end
        for old, new in zip(widget.data, figure.data):
            old.update(new.to_plotly_json(), overwrite=True)
        widget.layout = figure.layout
