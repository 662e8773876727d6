"""The loss explorer behind 01_loss_explorer: shaped predictions, losses against direct calls, live widget."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
import torch
from scipy import ndimage

from workbench.losses import build_loss
from workbench.viz.explorer import LossExplorer, Shaping, components_html, explorer_widget, values_html

SHAPE = (32, 32, 32)


@pytest.fixture(scope="module")
def explorer():
    return LossExplorer(3, SHAPE, "sigmoid")


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"dilate": 1.5}, "`dilate` to be an integer"), ({"miss_below": -1}, "`miss_below` ≥ 0"),
     ({"grow_largest": -1}, "`grow_largest` ≥ 0"), ({"grow_largest": 2.0}, "`grow_largest` to be an integer"),
     ({"noise": float("nan")}, "`noise`"), ({"confidence": -1.0}, "`confidence`"), ({"shift": True}, "`shift`")],
)
def test_shaping_names_a_bad_value(fields, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Shaping(**fields)


@pytest.mark.parametrize(("arguments", "message"), [((-1,), "case_seed"), ((0, (8, 32, 32)), "shape"),
                                                    ((0, SHAPE, "logits"), "mode")])
def test_the_explorer_names_a_bad_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        LossExplorer(*arguments)


def test_shaping_reshapes_the_reference(explorer):
    masks = explorer.masks
    assert masks.shape == (4, *SHAPE) and masks.any()
    np.testing.assert_array_equal(explorer.prediction(Shaping(miss_below=0)), masks)
    dilated, eroded = (explorer.prediction(Shaping(dilate=d, miss_below=0)) for d in (1, -1))
    assert (dilated.sum(axis=(1, 2, 3)) >= masks.sum(axis=(1, 2, 3))).all()
    assert dilated.sum() > masks.sum() > eroded.sum()
    np.testing.assert_array_equal(explorer.prediction(Shaping(shift=3, miss_below=0)), np.roll(masks, 3, axis=1))
    wt = masks[0]
    sizes = np.bincount(cc3d.connected_components(wt, connectivity=26).ravel())[1:]
    threshold = int(np.sort(sizes)[-1])  # every lesion but the largest goes
    kept = cc3d.connected_components(explorer.prediction(Shaping(miss_below=threshold))[0], connectivity=26)
    assert kept.max() == 1 and (kept > 0).sum() == sizes.max()


def test_logits_are_confidence_signed_masks_plus_fixed_noise(explorer):
    prediction = explorer.prediction(Shaping())
    clean = explorer.logits(prediction, Shaping(confidence=2.0, noise=0.0))[0].numpy()
    np.testing.assert_array_equal(clean, np.where(prediction, 2.0, -2.0))
    noisy = explorer.logits(prediction, Shaping(confidence=2.0, noise=1.0))[0].numpy()
    again = explorer.logits(prediction, Shaping(confidence=2.0, noise=1.0))[0].numpy()
    np.testing.assert_array_equal(noisy, again)  # the same noise for every shaping: only the shaping changes
    assert 0.9 < (noisy - clean).std() < 1.1


@pytest.mark.parametrize("loss", ["blob", "cc", "iwl_blob", "iwl_cc"])
@pytest.mark.parametrize("mode", ["sigmoid", "softmax"])
def test_evaluate_equals_calling_the_loss_directly(loss, mode):
    explorer = LossExplorer(3, SHAPE, mode)
    shaping = Shaping(dilate=1, shift=1, miss_below=10, confidence=2.5, noise=0.5)
    result = explorer.evaluate(loss, shaping)
    logits = explorer.logits(explorer.prediction(shaping), shaping).requires_grad_(True)
    # Without the explorer's precomputed instance maps: the loss computes them itself.
    direct = build_loss(loss, mode=mode, schema="brats_mets_2025", spacing=explorer.spacing)
    value = direct(logits, explorer.target)
    value.backward()
    assert result.values[loss] == pytest.approx(float(value.detach()), rel=1e-5)
    np.testing.assert_allclose(result.gradients[loss], logits.grad[0].abs().sum(0).numpy(), rtol=1e-4, atol=1e-9)
    baseline = build_loss("dc_ce", mode=mode, schema="brats_mets_2025")(logits.detach(), explorer.target)
    assert result.values["dc_ce"] == pytest.approx(float(baseline), rel=1e-5)
    table = direct.components(logits.detach(), explorer.target)
    np.testing.assert_allclose(result.components["loss"], table["loss"], rtol=1e-5)
    assert list(result.components["channel"]) == list(table["channel"])
    assert result.prediction.shape == (4, *SHAPE) and result.seconds > 0


def test_a_worse_prediction_costs_more(explorer):
    good = explorer.evaluate("blob", Shaping(miss_below=0, confidence=10.0, noise=0.0))
    bad = explorer.evaluate("blob", Shaping(dilate=2, shift=4, miss_below=0, confidence=10.0, noise=0.0))
    missed = explorer.evaluate("blob", Shaping(miss_below=10_000, confidence=10.0, noise=0.0))
    assert (good.components["dice"] < 0.1).all()  # the Dice *loss* of each component
    assert (missed.components["dice"] > 0.99).all()
    assert good.values["blob"] < bad.values["blob"] < missed.values["blob"]


def test_slices_show_the_region_on_the_chosen_slice(explorer):
    result = explorer.evaluate("cc", Shaping())
    z = explorer.largest_lesion_slice("ET")
    assert explorer.masks[2][:, :, z].any()
    figure = explorer.slices_figure(result, "ET", z)
    names = [trace.name for trace in figure.data]
    assert names == ["image (t1c)", "reference ET", "prediction ET", "cc", "dc_ce"]
    np.testing.assert_array_equal(figure.data[1].z, explorer.masks[2][:, :, z].T.astype(float))
    with pytest.raises(ValueError, match="slice `z`"):
        explorer.slices_figure(result, "ET", SHAPE[2])
    with pytest.raises(ValueError, match="region"):
        explorer.slices_figure(result, "XX", 0)


def test_the_widget_updates_its_views_when_a_control_moves(explorer):
    box = explorer_widget(explorer, "blob", "WT", Shaping())
    bars, slices = box.children[-2], box.children[-1]
    values, table = box.children[-3].children
    first = box.exploration
    assert values.value == values_html(first) and table.value == components_html(first)
    bars_before = [list(trace.y) for trace in bars.data]
    prediction_before = np.asarray(slices.data[2].z).copy()

    box.controls["dilate"].value = 2
    moved = box.exploration
    assert moved.shaping.dilate == 2 and moved.values["blob"] != first.values["blob"]
    assert f"{moved.values['blob']:.4f}" in values.value and values.value != values_html(first)
    assert [list(trace.y) for trace in bars.data] != bars_before
    assert (np.asarray(slices.data[2].z) >= prediction_before).all()
    assert np.asarray(slices.data[2].z).sum() > prediction_before.sum()

    box.controls["loss"].value = "iwl_cc"
    assert set(box.exploration.values) == {"iwl_cc", "dc_ce"}
    assert [trace.name for trace in slices.data][-2:] == ["iwl_cc", "dc_ce"]

    box.controls["region"].value = "ET"
    assert box.controls["z"].value == explorer.largest_lesion_slice("ET")
    assert slices.data[1].name == "reference ET"
    box.controls["z"].value = 0
    assert "z = 0" in slices.layout.title.text


def test_the_component_table_says_its_terms_are_losses(explorer):
    html = components_html(explorer.evaluate("blob", Shaping()))
    assert "<th>Dice loss</th>" in html and "<th>CE</th>" in html and "batch" not in html


def test_a_value_outside_a_sliders_range_widens_it_instead_of_being_clipped(explorer):
    box = explorer_widget(explorer, "blob", "WT", Shaping(dilate=5, noise=7.5))
    assert box.controls["dilate"].value == 5 and box.controls["dilate"].max == 5
    assert box.controls["noise"].value == 7.5 and box.exploration.shaping.noise == 7.5


def test_an_error_in_a_callback_is_shown_in_the_widget(explorer, monkeypatch):
    box = explorer_widget(explorer, "blob", "WT", Shaping())
    problem = box.children[4]

    def broken(*args, **kwargs):
        raise RuntimeError("kernel ran out of memory")

    monkeypatch.setattr(explorer, "evaluate", broken)
    with pytest.raises(RuntimeError):
        box.controls["shift"].value = 1
    assert "RuntimeError: kernel ran out of memory" in problem.value
    monkeypatch.undo()
    box.controls["shift"].value = 2
    assert problem.value == "" and box.exploration.shaping.shift == 2


def test_values_html_marks_each_value_for_the_browser_test(explorer):
    result = explorer.evaluate("blob", Shaping())
    html = values_html(result)
    assert html.count("class='wb-value'") == 2 and "data-loss='dc_ce'" in html
    term = result.values["blob"] - result.values["dc_ce"]
    assert f"<td class='wb-term'>{term:.4f}</td>" in html and "(blob − dc_ce)" in html


# --------------------------------------------------------------------------- the defaults and the hint


@pytest.fixture(scope="module")
def several_lesions():
    """Case 0 (the notebook's phantom) at 32³: three lesions per region, of 12 to 133 voxels."""
    explorer = LossExplorer(0, SHAPE, "sigmoid")
    sizes = explorer.instances.sizes[0]
    assert all(len(s) == 3 and min(s) < Shaping().miss_below < max(s) for s in sizes[:3])
    return explorer


def widget_terms(box) -> tuple[float, float, np.ndarray]:
    """The widget's instance term, its DC+CE and its per-component instance terms."""
    exploration = box.exploration
    values = exploration.values
    return values[exploration.loss] - values["dc_ce"], values["dc_ce"], exploration.components["loss"].to_numpy()


def test_grow_largest_over_segments_the_largest_lesion_only(several_lesions):
    explorer = several_lesions
    plain = explorer.prediction(Shaping(miss_below=0))
    grown = explorer.prediction(Shaping(miss_below=0, grow_largest=2))
    for channel in range(3):
        components = explorer.instances.components[0, channel]
        largest = components == int(np.argmax(explorer.instances.sizes[0][channel])) + 1
        added = grown[channel] & ~plain[channel]
        assert added.any() and (plain[channel] <= grown[channel]).all()
        np.testing.assert_array_equal(added, ndimage.binary_dilation(largest, iterations=2) & ~plain[channel])
    # A largest lesion that `miss_below` leaves out is not brought back by growing it.
    np.testing.assert_array_equal(explorer.prediction(Shaping(miss_below=10_000, grow_largest=2)), False)


def test_at_the_defaults_the_instance_term_tells_missed_from_found_lesions(several_lesions):
    result = several_lesions.evaluate("blob", Shaping())
    components = result.components
    missed = components["size"] < Shaping().miss_below
    assert 3 <= missed.sum() < len(components)
    assert (components.loss[missed] > 0.95).all() and (components.loss[~missed] < 0.1).all()
    term, dc_ce = result.values["blob"] - result.values["dc_ce"], result.values["dc_ce"]
    assert term > dc_ce + 0.15
    found = several_lesions.evaluate("blob", Shaping(miss_below=0))
    assert term - (found.values["blob"] - found.values["dc_ce"]) > 3 * (dc_ce - found.values["dc_ce"])
    # The gradient lights up the missed lesions: its largest value lies on one, and there it exceeds DC+CE's.
    on_missed = (several_lesions.masks & ~result.prediction).any(0)
    gradient = result.gradients["blob"]
    assert on_missed[np.unravel_index(np.argmax(gradient), gradient.shape)]
    assert gradient[on_missed].mean() > 1.3 * result.gradients["dc_ce"][on_missed].mean()


def test_the_hint_names_the_widgets_controls_and_says_what_they_do(several_lesions):
    import re

    box = explorer_widget(several_lesions, "blob", "WT", Shaping())
    hint = box.children[3].value
    assert "What to try" in hint
    descriptions = {control.description for control in box.controls.values()}
    named = set(re.findall(r"<i>(.*?)</i>", hint))
    assert {"miss below", "grow largest", "confidence", "loss"} <= named <= descriptions

    term, dc_ce, before = widget_terms(box)  # "Set miss below to 0 and back: ... several times as much as DC+CE"
    box.controls["miss_below"].value = 0
    found_term, found_dc_ce, found = widget_terms(box)
    assert term - found_term > 3 * (dc_ce - found_dc_ce) > 0

    box.controls["grow_largest"].value = 2  # "with blob every lesion's term rises"
    grown = widget_terms(box)[2]
    assert (grown > found + 0.3).all()
    box.controls["loss"].value = "cc"  # "switch loss to cc and only the grown lesion's term rises"
    cc_grown = widget_terms(box)[2]
    box.controls["grow_largest"].value = 0
    cc_found = widget_terms(box)[2]
    rose = cc_grown > cc_found + 0.3
    assert rose.sum() == 3 and np.allclose(cc_grown[~rose], cc_found[~rose], atol=0.02)  # one per region
    sizes = box.exploration.components["size"].to_numpy()
    channels = box.exploration.components["channel"].to_numpy()
    assert all(sizes[rose & (channels == c)] == sizes[channels == c].max() for c in ("WT", "TC", "ET"))

    box.controls["confidence"].value = 3.0  # "every term towards 1 and the differences fade"
    assert (widget_terms(box)[2] > 0.75).all()
