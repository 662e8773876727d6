"""A training run's curves as a small PNG, redrawn after every epoch into its run folder.

``curves.png`` shows the training loss (left) and the validation Dice per region (right) against
the epoch, so that a run can be followed with an image viewer or a file browser while it trains
(the sweep report draws the same curves for all runs together, interactively). Drawn with Pillow;
no plotting library, no fonts beyond Pillow's default.

Examples
--------
>>> import pandas as pd
>>> log = pd.DataFrame({"epoch": [0, 0, 1, 1], "phase": ["train", "val", "train", "val"],
...                     "region": ["", "WT", "", "WT"], "metric": ["loss", "dice", "loss", "dice"],
...                     "threshold": [float("nan")] * 4, "value": [1.0, 0.2, 0.5, 0.6]})
>>> curves_image(log).size
(900, 340)
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from workbench._io import atomic_write

__all__ = ["CURVES_PNG", "curves_image", "write_curves"]

CURVES_PNG = "curves.png"
"""The file name of a run folder's curve image."""
_SIZE = (900, 340)
_PANEL = (60, 30, 410, 290)  # left, top, right, bottom of the left panel; the right one is shifted by 450
_REGION_COLOURS = {"WT": (31, 119, 180), "TC": (214, 39, 40), "ET": (44, 160, 44), "RC": (148, 103, 189)}
_GREY = (120, 120, 120)


def curves_image(metrics: pd.DataFrame, epochs: int | None = None) -> Image.Image:
    """The loss and validation Dice curves of a training log (``metrics.parquet`` rows), 900 × 340 RGB.

    ``epochs``: the run's length, the x axis' extent (default: the epochs logged so far).
    """
    image = Image.new("RGB", _SIZE, "white")
    draw = ImageDraw.Draw(image)
    loss = metrics[(metrics["phase"] == "train") & (metrics["metric"] == "loss")].sort_values("epoch")
    dice = metrics[(metrics["phase"] == "val") & (metrics["metric"] == "dice") & (metrics["region"] != "mean")]
    logged = int(metrics["epoch"].max()) + 1 if len(metrics) else 1
    epochs = max(epochs or logged, logged, 2)
    low, high = _loss_range(loss["value"])
    _panel(draw, 0, "train loss", epochs, (low, high))
    _line(draw, 0, loss["epoch"], loss["value"], epochs, (low, high), (0, 0, 0))
    _panel(draw, 450, "validation Dice", epochs, (0.0, 1.0))
    if dice.empty:
        draw.text((450 + _PANEL[0] + 10, _PANEL[1] + 10), "no validation logged yet", fill=_GREY)
    for k, (region, rows) in enumerate(dice.sort_values("epoch").groupby("region", sort=False)):
        colour = _REGION_COLOURS.get(region, _GREY)
        _line(draw, 450, rows["epoch"], rows["value"], epochs, (0.0, 1.0), colour)
        draw.text((450 + _PANEL[2] + 8, _PANEL[1] + 14 * k), region, fill=colour)
    return image


def write_curves(metrics: pd.DataFrame, path: str | Path, epochs: int | None = None) -> None:
    """:func:`curves_image` written atomically as PNG to ``path``."""
    with atomic_write(Path(path)) as tmp:
        curves_image(metrics, epochs).save(tmp, format="PNG")


def _loss_range(values: pd.Series) -> tuple[float, float]:
    finite = values[values.map(math.isfinite)] if len(values) else values
    if finite.empty:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (0.0, high * 1.05) if high > 0 and low >= 0 else (low, high + (1.0 if high == low else 0.0))


def _panel(draw: ImageDraw.ImageDraw, dx: int, title: str, epochs: int, limits: tuple[float, float]) -> None:
    left, top, right, bottom = _PANEL
    draw.rectangle((left + dx, top, right + dx, bottom), outline=_GREY)
    draw.text((left + dx, top - 18), title, fill=(0, 0, 0))
    for fraction in (0.0, 0.5, 1.0):
        y = bottom - fraction * (bottom - top)
        draw.text((left + dx - 46, y - 6), f"{limits[0] + fraction * (limits[1] - limits[0]):.3g}", fill=_GREY)
    for epoch in sorted({1, (epochs + 1) // 2, epochs}):
        x = left + dx + (epoch - 1) / (epochs - 1) * (right - left)
        draw.text((x - 4, bottom + 4), str(epoch), fill=_GREY)
    draw.text(((left + right) / 2 + dx - 14, bottom + 22), "epoch", fill=_GREY)


def _line(
    draw: ImageDraw.ImageDraw, dx: int, epochs: pd.Series, values: pd.Series, total: int,
    limits: tuple[float, float], colour: tuple[int, int, int],
) -> None:
    left, top, right, bottom = _PANEL
    span = (limits[1] - limits[0]) or 1.0
    points = [
        (left + dx + epoch / (total - 1) * (right - left), bottom - (min(max(value, limits[0]), limits[1]) - limits[0]) / span * (bottom - top))
        for epoch, value in zip(epochs, values)
        if math.isfinite(value)
    ]
    if len(points) > 1:
        draw.line(points, fill=colour, width=2)
    for x, y in points:
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
