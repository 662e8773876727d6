"""workbench.viz.layers, headless: hand-made cases with known TP/FP/FN lesions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.data.manifest import CaseData
from workbench.instances import instance_maps
from workbench.labels import get_schema
from workbench.metrics import lesion_table
from workbench.viz import STATUS_COLOURS, layers, lesion_features, lesion_labels
from workbench.viz.layers import DEFAULT_LABELS, lesion_texts
from workbench.instances.weights import iwl_weights

SCHEMA = get_schema("brats_mets_2025")
SPACING = (3.0, 1.0, 0.5)


def box(shape, corner, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return mask


@pytest.fixture(scope="module")
def hand_case():
    """ET lesions: A (found, Dice 0.8 > 0.5), B (missed) in the reference; C (invented) in the prediction.

    Every ET voxel is also WT and TC; the RC region has one lesion D, found exactly.
    """
    shape = (10, 16, 20)
    a, b = box(shape, (1, 1, 1), (2, 4, 5)), box(shape, (6, 10, 12), (2, 3, 3))
    c, d = box(shape, (6, 1, 14), (2, 2, 2)), box(shape, (2, 10, 2), (3, 3, 3))
    a_pred = box(shape, (1, 1, 1), (2, 4, 3))  # 24 of A's 40 voxels: Dice 48 / 64 = 0.75
    reference = np.zeros(shape, dtype=np.uint8)
    reference[a | b] = 3
    reference[d] = 4
    prediction = np.zeros(shape, dtype=np.uint8)
    prediction[a_pred | c] = 3
    prediction[d] = 4
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, size=(4, *shape)).astype(np.float32)
    case = CaseData(id="hand", image=image, label=reference, affine=np.diag([*SPACING, 1.0]), spacing=SPACING,
                    modalities=("t1n", "t1c", "t2w", "t2f"))
    return {"case": case, "prediction": prediction, "A": a, "B": b, "C": c, "D": d}


def by_name(layer_data):
    return {kwargs["name"]: (data, kwargs, kind) for data, kwargs, kind in layer_data}


def test_status_layers_hold_exactly_the_lesions_of_each_status(hand_case):
    out = by_name(layers(hand_case["case"], hand_case["prediction"], schema=SCHEMA))
    for region in ("ET", "TC", "WT"):
        tp, fp, fn = (out[f"{region} {s}"][0] for s in ("TP", "FP", "FN"))
        np.testing.assert_array_equal(tp > 0, hand_case["A"])
        np.testing.assert_array_equal(fn > 0, hand_case["B"])
        np.testing.assert_array_equal(fp > 0, hand_case["C"])
    np.testing.assert_array_equal(out["RC TP"][0] > 0, hand_case["D"])
    assert not out["RC FP"][0].any() and not out["RC FN"][0].any()
    for status, colour in STATUS_COLOURS.items():
        assert out[f"ET {status}"][1]["colormap"] == {None: colour, 0: "transparent"}


def test_status_layers_match_lesion_table_on_a_phantom():
    from workbench.data.perturb import Perturbation, perturb_labels
    from workbench.data.phantoms import MODALITIES, make_case

    phantom = make_case(7, shape=(40, 40, 40))
    prediction = perturb_labels(phantom.label, seed=0, perturbation=Perturbation(drop=0.5))
    case = CaseData(id="p5", image=phantom.image, label=phantom.label, affine=np.eye(4), spacing=phantom.spacing,
                    modalities=MODALITIES)
    lesions = lesion_table(prediction, phantom.label, spacing=phantom.spacing, threshold=0.3)
    assert set(lesions["status"]) == {"TP", "FP", "FN"}, "the perturbation should give every status"
    out = by_name(layers(case, prediction, schema=SCHEMA, threshold=0.3))
    for region in SCHEMA.region_names:
        rows = lesions[lesions["region"] == region]
        ref_ids = instance_maps(SCHEMA.to_region_masks(phantom.label)[None], "sigmoid").components[0, SCHEMA.region_names.index(region)]
        for status in ("TP", "FN"):
            expected = np.isin(ref_ids, rows.loc[rows["status"] == status, "ref_id"].to_numpy(int))
            layer = out[f"{region} {status}"][0]
            np.testing.assert_array_equal(layer > 0, expected)
            np.testing.assert_array_equal(layer[expected], ref_ids[expected])  # labelled with the lesion ids
        fp_rows = rows[rows["status"] == "FP"]
        assert len(np.unique(out[f"{region} FP"][0][out[f"{region} FP"][0] > 0])) == len(fp_rows)
        points, kwargs, kind = out[f"{region} lesions"]
        assert kind == "points" and len(points) == len(rows)
        np.testing.assert_allclose(points, rows[["centroid_z", "centroid_y", "centroid_x"]].to_numpy(float))
        assert list(kwargs["features"]["status"]) == list(rows["status"])


def test_components_and_voronoi_cells_are_those_of_workbench_instances(hand_case):
    case = hand_case["case"]
    out = by_name(layers(case, schema=SCHEMA, connectivity=6))
    maps = instance_maps(SCHEMA.to_region_masks(case.label)[None], "sigmoid", connectivity=6, spacing=SPACING)
    for k, region in enumerate(SCHEMA.region_names):
        np.testing.assert_array_equal(out[f"{region} components"][0], maps.components[0, k])
        np.testing.assert_array_equal(out[f"{region} Voronoi cells"][0], maps.cells[0, k])
    softmax = by_name(layers(case, schema=SCHEMA, mode="softmax"))
    classes = instance_maps(SCHEMA.to_class_map(case.label)[None], "softmax", spacing=SPACING, num_classes=4)
    np.testing.assert_array_equal(softmax["NETC Voronoi cells"][0], classes.cells[0, 0])


def test_scale_follows_spacing_on_every_layer(hand_case):
    out = layers(hand_case["case"], hand_case["prediction"], schema=SCHEMA, loss="iwl_cc")
    assert {kind for _, _, kind in out} == {"image", "labels", "points"}
    for data, kwargs, _ in out:
        assert kwargs["scale"] == SPACING, kwargs["name"]


def test_weight_layer_is_log10_of_the_loss_weights(hand_case):
    case = hand_case["case"]
    out = by_name(layers(case, schema=SCHEMA, loss="iwl_blob", max_weight=50.0))
    maps = instance_maps(SCHEMA.to_region_masks(case.label)[None], "sigmoid", spacing=SPACING)
    expected = iwl_weights(maps, domain="blob", max_weight=50.0)[0]
    for k, region in enumerate(SCHEMA.region_names):
        data, kwargs, kind = out[f"{region} weights (iwl_blob, log10)"]
        assert kind == "image"
        np.testing.assert_allclose(data, np.log10(expected[k]), rtol=1e-6)
    assert "weights (invweight_global, log10)" in by_name(layers(case, schema=SCHEMA, loss="invweight_global"))


def test_two_dimensional_cases():
    reference = np.zeros((20, 24), dtype=np.uint8)
    reference[2:6, 2:6] = 3
    reference[12:15, 15:19] = 3
    prediction = np.zeros_like(reference)
    prediction[2:6, 2:6] = 3
    case = CaseData(id="2d", image=np.ones((1, 20, 24), np.float32), label=reference, affine=np.eye(4),
                    spacing=(0.8, 1.2), modalities=("flair",))
    out = by_name(layers(case, prediction, schema=SCHEMA))
    points, kwargs, _ = out["ET lesions"]
    assert points.shape == (2, 2) and kwargs["scale"] == (0.8, 1.2)
    np.testing.assert_allclose(points[1], [13.0, 16.5])
    assert kwargs["features"]["label"][1] == "ET FN R2 · 12 mm² · Dice 0.00"
    np.testing.assert_array_equal(out["ET FN"][0] > 0, (reference == 3) & (prediction == 0))


def test_the_first_region_with_a_lesion_starts_visible(hand_case):
    out = by_name(layers(hand_case["case"], hand_case["prediction"], schema=SCHEMA))
    assert out["WT FN"][1]["visible"] and not out["RC FN"][1]["visible"]
    assert [name for name, (_, kw, kind) in out.items() if kind == "image" and kw["visible"]] == ["t1c"]
    shown = by_name(layers(hand_case["case"], hand_case["prediction"], schema=SCHEMA, visible_region="RC"))
    assert shown["RC FN"][1]["visible"] and not shown["WT FN"][1]["visible"]


def test_bad_input_is_named(hand_case):
    case, prediction = hand_case["case"], hand_case["prediction"]
    with pytest.raises(ValueError, match=r"shape \(10, 16\)"):
        layers(case, prediction[:, :, 0], schema=SCHEMA)
    with pytest.raises(ValueError, match="puts no weights"):
        layers(case, schema=SCHEMA, loss="blob")
    with pytest.raises(ValueError, match="Unknown region 'XX'"):
        layers(case, schema=SCHEMA, visible_region="XX")
    with pytest.raises(ValueError, match="no reference"):
        layers(CaseData("x", case.image, None, case.affine, SPACING, case.modalities), schema=SCHEMA)
    bad = prediction.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"\[7\]"):
        layers(case, bad, schema=SCHEMA)
    lesions = lesion_table(prediction, case.label, threshold=[0.3, 0.5])
    with pytest.raises(ValueError, match="one threshold"):
        lesion_labels(prediction, case.label, lesions[lesions["region"] == "ET"], schema=SCHEMA, region="ET")


def many_false_positives(shape=(32, 32, 32)):
    """A phantom prediction missing some lesions and inventing 40 one-voxel-radius blobs."""
    from workbench.data.perturb import Perturbation, perturb_labels
    from workbench.data.phantoms import MODALITIES, make_case

    phantom = make_case(7, shape=shape)
    prediction = perturb_labels(phantom.label, seed=0, perturbation=Perturbation(
        drop=0.4, dilate=0.0, erode=0.0, false_positives=40, fp_radius=(1, 1)))
    case = CaseData(id="fp", image=phantom.image, label=phantom.label, affine=np.eye(4), spacing=phantom.spacing,
                    modalities=MODALITIES)
    return case, prediction


def test_false_positive_markers_carry_no_text_by_default():
    case, prediction = many_false_positives()
    out = by_name(layers(case, prediction, schema=SCHEMA))
    for region in SCHEMA.region_names:
        _, kwargs, _ = out[f"{region} lesions"]
        features = kwargs["features"]
        assert kwargs["text"]["string"] == "{text}", "the markers show the `text` feature, not every `label`"
        labelled = features[features["text"] != ""]
        assert not labelled["status"].eq("FP").any(), region
        expected = features[features["status"] != "FP"].sort_values(["status", "size_mm3"], ascending=[True, False])
        assert sorted(labelled.index) == sorted(expected.index[:DEFAULT_LABELS]), "FN then TP, largest first, capped"
        assert (labelled["text"] == labelled["label"]).all()
    wt = out["WT lesions"][1]["features"]
    assert wt["status"].eq("FP").sum() >= 20 and (wt["text"] != "").sum() <= DEFAULT_LABELS
    capped = lesion_texts(wt, case.spacing, cap=2)
    assert list(wt["id"][capped != ""]) == [2, 4] and set(wt["status"][capped != ""]) == {"FN"}, "the two largest misses"


def test_a_selected_lesion_labels_itself_and_its_nearest_neighbours():
    rows = [  # status, id, size, centroid (voxels); spacing 2 mm
        ("FN", 1, 100.0, (10, 10, 10)), ("FP", 2, 8.0, (10, 11, 10)), ("FP", 3, 8.0, (10, 10, 13)),
        ("FP", 4, 8.0, (10, 14, 10)), ("TP", 5, 50.0, (10, 10, 15)), ("FP", 6, 8.0, (10, 30, 30)),
        ("FP", 7, 8.0, (11, 10, 10)),
    ]
    lesions = pd.DataFrame({
        "region": "ET", "status": [r[0] for r in rows], "threshold": 0.5,
        "ref_id": [np.nan if r[0] == "FP" else r[1] for r in rows], "pred_id": [r[1] if r[0] == "FP" else np.nan for r in rows],
        "ref_mm3": [np.nan if r[0] == "FP" else r[2] for r in rows], "pred_mm3": [r[2] if r[0] == "FP" else np.nan for r in rows],
        "dice": 0.0, **{axis: [r[3][k] for r in rows] for k, axis in enumerate(("centroid_z", "centroid_y", "centroid_x"))},
    })
    features = lesion_features(lesions)
    spacing = (2.0, 2.0, 2.0)
    texts = lesion_texts(features, spacing, selected=0, neighbours=3, radius_mm=12.0)
    assert texts[0] == features["label"][0] == "ET FN R1 · 100 mm³ · Dice 0.00"
    assert list(texts[1:]) == ["FP P2", "FP P3", "", "", "", "FP P7"], "the 3 nearest within 12 mm (P4 is 8 mm away, 4th)"
    in_slice = lesion_texts(features, spacing, selected=0, neighbours=3, radius_mm=12.0, slice_axis=0)
    assert list(in_slice[1:]) == ["FP P2", "FP P3", "FP P4", "", "", ""], "P7 lies on the next slice along axis 0"
    spaced = lesion_texts(features, spacing, selected=0, neighbours=3, radius_mm=12.0, min_gap_mm=3.0)
    assert list(spaced[1:]) == ["", "FP P3", "FP P4", "TP R5", "", ""], "P2 and P7 (2 mm away) would print over R1"
    among = np.array([True, False, True, True, True, True, True])
    assert list(lesion_texts(features, spacing, selected=0, among=among, radius_mm=12.0)[1:4]) == ["", "FP P3", "FP P4"]
    assert list(lesion_texts(features, spacing)) == [features["label"][0], "", "", "", features["label"][4], "", ""]
