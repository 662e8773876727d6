"""Lesion tiles: crop around the centroid, outlines in two colours, PNG inline, largest lesions picked."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from workbench.viz.gallery import PRED_COLOUR, REF_COLOUR, lesion_tile, pick_lesions, png_bytes, tile_html


def test_tile_crops_around_the_centroid_and_draws_both_outlines():
    image = np.random.default_rng(0).normal(size=(40, 40, 20)).astype(np.float32)
    ref = np.zeros(image.shape, bool)
    ref[10:16, 20:26, 5] = True
    pred = np.zeros(image.shape, bool)
    pred[12:18, 20:26, 5] = True
    rgb = lesion_tile(image, ref, pred, (12.5, 22.5, 5.0), crop=16, scale=2)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    is_ref = (rgb == REF_COLOUR).all(axis=2)
    is_pred = (rgb == PRED_COLOUR).all(axis=2)
    assert is_ref.any() and is_pred.any()
    # outlines, not filled: the ref square (6 voxels → 12 px) has its centre pixels free of colour
    rows, cols = np.nonzero(is_ref)
    assert rows.max() - rows.min() == 11 and cols.max() - cols.min() <= 11
    # a centroid by the border is padded, not shifted
    corner = lesion_tile(image, ref, pred, (0.0, 0.0, 30.0), crop=16, scale=1)
    assert corner.shape == (16, 16, 3)
    assert (corner[:, :8] == corner[0, 0]).all()  # left of the volume's first voxel along axis 0: padding (0)
    assert not (corner[:8, 8:] == corner[0, 0]).all()  # the image itself


def test_png_bytes_and_inline_html_round_trip():
    from PIL import Image

    rgb = np.zeros((6, 9, 3), np.uint8)
    rgb[2, 3] = (255, 0, 255)
    png = png_bytes(rgb)
    assert png.startswith(b"\x89PNG")
    assert (np.asarray(Image.open(io.BytesIO(png))) == rgb).all()
    tag = tile_html(png, "missed <ET> 12 mm³")
    data = tag.split("base64,", 1)[1].split("'", 1)[0]
    assert base64.b64decode(data) == png and "missed &lt;ET&gt; 12 mm³" in tag


def test_pick_lesions_keeps_the_largest_of_each_kind_once():
    rows = [
        # the same missed lesion in WT and TC (same centroid) and in both seeds: shown once, as WT
        ("r0", "c0", "TC", "FN", 900.0, np.nan, 5, 5, 5), ("r0", "c0", "WT", "FN", 1000.0, np.nan, 5, 5, 5),
        ("r1", "c0", "WT", "FN", 1000.0, np.nan, 5.2, 5, 5),
        ("r0", "c1", "WT", "FN", 10.0, np.nan, 1, 1, 1), ("r0", "c1", "ET", "FN", 500.0, np.nan, 9, 9, 9),
        ("r0", "c1", "WT", "FP", np.nan, 70.0, 3, 3, 3), ("r0", "c2", "WT", "FP", np.nan, 90.0, 4, 4, 4),
        ("r0", "c2", "WT", "TP", 100.0, 90.0, 6, 6, 6),
    ]
    lesions = pd.DataFrame(rows, columns=["run_id", "case_id", "region", "status", "ref_mm3", "pred_mm3",
                                          "centroid_z", "centroid_y", "centroid_x"]).assign(threshold=0.5)
    picked = pick_lesions(lesions, per_kind=2)
    assert list(zip(picked["kind"], picked["region"], picked["volume"])) == [
        ("missed", "WT", 1000.0), ("missed", "ET", 500.0), ("false positive", "WT", 90.0), ("false positive", "WT", 70.0),
    ]
    assert len(pick_lesions(lesions[lesions["status"].eq("TP")])) == 0
