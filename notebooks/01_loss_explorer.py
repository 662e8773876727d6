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
# prediction from its reference (dilated or eroded, the largest lesion over-segmented, shifted,
# small lesions missed, a given confidence and noise), and shows for one instance loss
#
# * the loss value next to nnU-Net's DC+CE alone,
# * the per-component table of its instance term (`build_loss(name).components(...)`: size,
#   domain size, weight, Dice, CE, loss of every lesion) and its loss per lesion as bars,
# * slices of the image, the reference, the prediction and the per-voxel gradient magnitude
#   `|∂L/∂logits|` (summed over channels) of the loss and of DC+CE, on one colour scale, through
#   the largest lesion of `region`.
#
# The defaults show what an instance term adds: the prediction is confident and leaves out the
# lesions under 30 voxels, so each missed lesion's term is ≈ 1 and each found one's is low, while
# DC+CE, which counts voxels, hardly notices; the widget says which controls to move next.
#
# With `interactive = True` (the default; open it with `workbench lab`) controls change the loss,
# the region, the slice and the shaping, and the tables and figures update in place. Headless
# runs (papermill, `interactive = False`) draw the parameters' prediction once.
#
# Run headless: `papermill notebooks/01_loss_explorer.ipynb out.ipynb -p interactive False -p loss cc -p dilate 1`.

# %% tags=["parameters"]
case_seed: int = 0  # phantom seed
shape: list[int] = [64, 64, 64]  # phantom grid, 3 ints
loss: str = "blob"  # an instance loss with a component table: blob, cc, iwl_blob, iwl_cc
mode: str = "sigmoid"  # "sigmoid" (regions WT/TC/ET/RC) or "softmax" (classes)
region: str = "WT"  # region (sigmoid) or class name (softmax) whose largest lesion is sliced
dilate: int = 0  # voxels of dilation (negative: erosion) of every predicted lesion
grow_largest: int = 0  # voxels of further dilation of each region's largest lesion (over-segmentation)
shift: int = 0  # voxels the prediction is shifted along the first axis
miss_below: int = 30  # reference lesions smaller than this many voxels are left out of the prediction
confidence: float = 10.0  # logit magnitude inside and outside the predicted masks
noise: float = 0.5  # standard deviation of Gaussian logit noise
interactive: bool = True  # ipywidgets controls and live figures (False: draw once, e.g. under papermill)

# %% [markdown]
# ## Check the parameters

# %%
import math

from workbench.labels import BRATS_METS_2025
from workbench.viz.explorer import EXPLORER_LOSSES


def _fail(name, expected, value):
    raise ValueError(f"Parameter `{name}`: expected {expected}, but got {value!r} ({type(value).__name__}).")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


for _name in ("case_seed", "dilate", "grow_largest", "shift", "miss_below"):
    if not _is_int(globals()[_name]):
        _fail(_name, "an integer", globals()[_name])
if case_seed < 0:
    _fail("case_seed", "an integer >= 0", case_seed)
for _name in ("grow_largest", "miss_below"):
    if globals()[_name] < 0:
        _fail(_name, "an integer >= 0", globals()[_name])
if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(_is_int(s) and s >= 16 for s in shape):
    _fail("shape", "a list of 3 integers >= 16", shape)
if loss not in EXPLORER_LOSSES:
    _fail("loss", f"one of {EXPLORER_LOSSES}", loss)
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
# ## The phantom and its reference lesions
#
# Instance maps (components and Voronoi cells) are computed once here; the first evaluation of a
# new install also compiles the loss kernels (cached afterwards).

# %%
from workbench.viz.explorer import LossExplorer, Shaping

explorer = LossExplorer(case_seed, tuple(shape), mode)
shaping = Shaping(dilate=dilate, grow_largest=grow_largest, shift=shift, miss_below=miss_below,
                  confidence=confidence, noise=noise)
print(f"phantom {case_seed}: shape {explorer.shape}, spacing {tuple(round(s, 2) for s in explorer.spacing)} mm")
explorer.lesion_counts()

# %% [markdown]
# ## The loss, its components and its gradient

# %%
import pandas as pd
from IPython.display import display

from workbench.viz.explorer import components_figure, explorer_widget

if interactive:
    display(explorer_widget(explorer, loss, region, shaping))
else:
    exploration = explorer.evaluate(loss, shaping)
    display(pd.Series(exploration.values, name="value").rename_axis("loss").to_frame().round(4))
    display(exploration.components.round(3))
    components_figure(exploration).show()
    explorer.slices_figure(exploration, region, explorer.largest_lesion_slice(region)).show()
