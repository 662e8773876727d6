# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 — Loss explorer: one phantom volume, one shaped prediction
#
# Builds one synthetic BraTS-METS-like case (`workbench.data.phantoms.make_case`), derives a
# prediction from its reference (dilated or eroded, shifted, small lesions missed, a given
# confidence and noise), and shows for one instance loss
#
# * the loss value next to nnU-Net's DC+CE alone,
# * the per-component table of its instance term (`build_loss(name).components(...)`: size,
#   domain size, weight, Dice, CE, loss of every lesion) and its loss per lesion as bars,
# * slices of the image, the reference, the prediction and the per-voxel gradient magnitude
#   `|∂L/∂logits|` (summed over channels) of the loss and of DC+CE, on one colour scale, through
#   the largest lesion of `region`.
#
# With `interactive = True` (and a live Jupyter front end) sliders reshape the prediction;
# headless runs (papermill, `interactive = False`) draw the parameters' prediction once.
#
# Run headless: `papermill notebooks/01_loss_explorer.ipynb out.ipynb -p loss cc -p dilate 1`.

# %% tags=["parameters"]
case_seed: int = 0  # phantom seed
shape: list[int] = [64, 64, 64]  # phantom grid, 3 ints
loss: str = "blob"  # an instance loss with a component table: blob, cc, iwl_blob, iwl_cc
mode: str = "sigmoid"  # "sigmoid" (regions WT/TC/ET/RC) or "softmax" (classes)
region: str = "WT"  # region (sigmoid) or class name (softmax) whose largest lesion is sliced
dilate: int = 0  # voxels of dilation (negative: erosion) of every predicted lesion
shift: int = 0  # voxels the prediction is shifted along the first axis
miss_below: int = 0  # reference lesions smaller than this many voxels are left out of the prediction
confidence: float = 3.0  # logit magnitude inside and outside the predicted masks
noise: float = 1.0  # standard deviation of Gaussian logit noise
interactive: bool = False  # ipywidgets sliders (needs a live front end)

# %% [markdown]
# ## Check the parameters

# %%
import math

from workbench.labels import BRATS_METS_2025

INSTANCE_LOSSES = ("blob", "cc", "iwl_blob", "iwl_cc")


def _fail(name, expected, value):
    raise ValueError(f"Parameter `{name}`: expected {expected}, but got {value!r} ({type(value).__name__}).")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


for _name in ("case_seed", "dilate", "shift", "miss_below"):
    if not _is_int(globals()[_name]):
        _fail(_name, "an integer", globals()[_name])
if case_seed < 0:
    _fail("case_seed", "an integer >= 0", case_seed)
if miss_below < 0:
    _fail("miss_below", "an integer >= 0", miss_below)
if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(_is_int(s) and s >= 16 for s in shape):
    _fail("shape", "a list of 3 integers >= 16", shape)
if loss not in INSTANCE_LOSSES:
    _fail("loss", f"one of {INSTANCE_LOSSES}", loss)
if mode not in ("sigmoid", "softmax"):
    _fail("mode", "'sigmoid' or 'softmax'", mode)
if region not in BRATS_METS_2025.foreground_names(mode):
    _fail("region", f"one of {BRATS_METS_2025.foreground_names(mode)} (mode {mode!r})", region)
for _name in ("confidence", "noise"):
    _value = globals()[_name]
    if isinstance(_value, bool) or not isinstance(_value, (int, float)) or not math.isfinite(_value) or _value < 0:
        _fail(_name, "a finite number >= 0", _value)
if not isinstance(interactive, bool):
    _fail("interactive", "true or false", interactive)

# %% [markdown]
# ## The phantom and its target

# %%
import cc3d
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from scipy import ndimage

from workbench.data.phantoms import make_case
from workbench.losses import build_loss
from workbench.viz.figures import component_loss_bars, gradient_slices

schema = BRATS_METS_2025
phantom = make_case(case_seed, shape=tuple(shape))
names = schema.foreground_names(mode)
channel = names.index(region)
target_np = schema.to_target(phantom.label, mode)  # sigmoid: (R, *S) bool; softmax: (*S) classes 0..C
if mode == "sigmoid":
    masks = target_np.astype(bool)
else:
    masks = np.stack([target_np == c for c in range(1, len(names) + 1)])
target = torch.from_numpy(np.ascontiguousarray(target_np.astype(np.float32 if mode == "sigmoid" else np.int64)))[None]
print(f"phantom {case_seed}: shape {phantom.label.shape}, spacing {tuple(round(s, 2) for s in phantom.spacing)} mm")
pd.DataFrame(
    {"lesions": [int(cc3d.connected_components(m, connectivity=26, return_N=True)[1]) for m in masks],
     "voxels": [int(m.sum()) for m in masks]},
    index=pd.Index(names, name=mode),
)

# %% [markdown]
# ## Shape a prediction, evaluate the loss and its gradient


# %%
def predicted_masks(dilate, shift, miss_below):
    """Foreground masks (K, *S) of the shaped prediction."""
    out = []
    for mask in masks:
        if miss_below > 0:
            mask = cc3d.dust(mask, threshold=miss_below, connectivity=26)
        if dilate > 0:
            mask = ndimage.binary_dilation(mask, iterations=dilate)
        elif dilate < 0:
            mask = ndimage.binary_erosion(mask, iterations=-dilate)
        out.append(np.roll(mask, shift, axis=0))
    return np.stack(out)


def logits_from(pred, confidence, noise):
    """Logits (1, K, *S): ±confidence on the masks plus Gaussian noise (softmax: a background channel first)."""
    if mode == "softmax":
        pred = np.concatenate([~pred.any(0, keepdims=True), pred])
    rng = np.random.default_rng(case_seed)
    logits = confidence * (2.0 * pred - 1.0) + noise * rng.standard_normal(pred.shape)
    return torch.from_numpy(logits.astype(np.float32))[None]


def loss_and_gradient(loss_fn, logits):
    """`loss_fn(logits, target)` and its per-voxel gradient magnitude (*S), summed over the channels of `logits`."""
    logits = logits.detach().requires_grad_(True)
    value = loss_fn(logits, target)
    value.backward()
    return value.item(), logits.grad[0].abs().sum(0).numpy()


def explore(dilate=dilate, shift=shift, miss_below=miss_below, confidence=confidence, noise=noise):
    pred = predicted_masks(dilate, shift, miss_below)
    logits = logits_from(pred, confidence, noise)
    instance_loss = build_loss(loss, mode=mode, schema=schema.name, spacing=tuple(phantom.spacing))
    loss_fns = {loss: instance_loss, "dc_ce": build_loss("dc_ce", mode=mode, schema=schema.name)}
    values, gradients = {}, {}
    for name, loss_fn in loss_fns.items():
        values[name], gradients[name] = loss_and_gradient(loss_fn, logits)
    table = instance_loss.components(logits, target)
    display(pd.DataFrame({"loss": list(values), "value": list(values.values())}).round(4))
    display(table.round(3))
    if len(table):
        component_loss_bars(table).show()

    labels = cc3d.connected_components(masks[channel], connectivity=26)
    if labels.max() > 0:
        largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
        z = int(round(ndimage.center_of_mass(labels == largest)[2]))
    else:
        z = masks.shape[-1] // 2
    gradient_slices(
        phantom.image[1, :, :, z].T,
        {name: gradient[:, :, z].T for name, gradient in gradients.items()},
        masks={f"reference {region}": masks[channel][:, :, z].T, f"prediction {region}": pred[channel][:, :, z].T},
        image_title="image (t1c)",
        title=f"{loss} and dc_ce: |∂L/∂logits| on slice z = {z} through the largest {region} lesion",
    ).show()


# %%
if interactive:
    import ipywidgets as widgets

    widgets.interact(
        explore,
        dilate=widgets.IntSlider(value=dilate, min=-3, max=3),
        shift=widgets.IntSlider(value=shift, min=-8, max=8),
        miss_below=widgets.IntSlider(value=miss_below, min=0, max=200, step=5),
        confidence=widgets.FloatSlider(value=confidence, min=0.0, max=10.0, step=0.5),
        noise=widgets.FloatSlider(value=noise, min=0.0, max=5.0, step=0.25),
    )
else:
    explore()
