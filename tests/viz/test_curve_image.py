"""The per-run curve image: drawn where the values say, with the regions' colours."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from workbench.viz.curve_image import _PANEL, _REGION_COLOURS, curves_image, write_curves


def _log(dice_wt):
    rows = []
    for epoch, value in enumerate(dice_wt):
        rows.append({"epoch": epoch, "phase": "train", "region": "", "metric": "loss", "threshold": np.nan, "value": 2.0 - epoch})
        rows.append({"epoch": epoch, "phase": "val", "region": "WT", "metric": "dice", "threshold": np.nan, "value": value})
    return pd.DataFrame(rows)


def test_validation_dice_is_drawn_at_its_height_in_the_region_colour():
    image = np.asarray(curves_image(_log([0.5, 0.5, 0.5]), epochs=3))
    left, top, right, bottom = _PANEL
    y = round(bottom - 0.5 * (bottom - top))
    x = 450 + (left + right) // 2
    column = image[top:bottom, x]
    hits = np.flatnonzero((column == _REGION_COLOURS["WT"]).all(axis=1)) + top
    assert hits.size and abs(hits.mean() - y) <= 2
    assert not (image[:, : 450] == _REGION_COLOURS["WT"]).all(axis=-1).any()  # Dice only in the right panel


def test_the_axis_spans_the_run_and_a_log_without_validation_still_draws(tmp_path):
    partial = _log([0.2])
    path = tmp_path / "curves.png"
    write_curves(partial[partial["phase"] == "train"], path, epochs=12)
    with Image.open(path) as image:
        assert image.size == (900, 340) and image.format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # atomic: no temporary left behind
