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
# # 04 — Audit the detections of a run
#
# Lists the lesions of one case of a run — missed (FN) first, then false positives, then
# detections, each by size — and opens the napari audit view on it: the image channels, the
# reference and predicted label maps, per region the components, Voronoi cells and (for IWL /
# InvWeight runs) the loss's voxel weights, and the TP / FP / FN lesions in three colour-blind-safe
# colours. In napari, pick a lesion in the "Lesions" table to go to it; `n` / `p` step through
# misses and false positives.
#
# `run_dir` is a run folder of `workbench demo` / `workbench sweep` (or a `workbench train` run).
# The same view from a shell: `workbench audit RUN_DIR --case CASE_ID`.
# napari needs a display; with `open_viewer = False` (headless, e.g. under papermill) the notebook
# stops after the tables, and `screenshot` saves a PNG of the view instead of leaving it open.
# In JupyterLab (`workbench lab`; relative paths start in the folder it was started from) the view
# opens in its own window and stays responsive between cells: the kernel runs Qt's event loop
# (`%gui qt`), so `viewer` can be driven from the next cell.

# %% tags=["parameters"]
run_dir: str = "runs/demo/losses/iwl_blob-a1.0-b1.0-s0"  # a run folder
case_id: "Optional[str]" = None  # None: the case with the most missed lesions
threshold: float = 0.5  # Dice threshold of the lesion matching
open_viewer: bool = True  # open napari (needs a display)
screenshot: "Optional[str]" = None  # save a PNG of the view here and close it

# %% [markdown]
# ## Check the parameters

# %%
import math
from pathlib import Path


def _fail(name, expected, value):
    raise ValueError(f"Parameter `{name}`: expected {expected}, but got {value!r} ({type(value).__name__}).")


if not isinstance(run_dir, str) or not Path(run_dir).is_dir():
    _fail("run_dir", "the path of an existing run folder", run_dir)
if case_id is not None and not isinstance(case_id, str):
    _fail("case_id", "None or a case id", case_id)
if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (0 < threshold <= 1) or not math.isfinite(threshold):
    _fail("threshold", "a number in (0, 1]", threshold)
if not isinstance(open_viewer, bool):
    _fail("open_viewer", "true or false", open_viewer)
if screenshot is not None and not isinstance(screenshot, str):
    _fail("screenshot", "None or a .png path", screenshot)

# %% [markdown]
# ## The case and its lesions

# %%
import pandas as pd

from workbench.metrics import lesion_table
from workbench.viz import lesion_features
from workbench.viz.sources import find_training_run, run_source

if case_id is None:
    # The case with the most misses, from the run's lesion table if it has one, else the first.
    tables = list(Path(run_dir).glob("lesions.parquet"))
    if tables:
        lesions_all = pd.read_parquet(tables[0])
        misses = lesions_all[(lesions_all["status"] == "FN") & (lesions_all["threshold"] == threshold)]
        counts = misses.groupby("case_id").size()
        case_id = str(counts.idxmax()) if len(counts) else None
source = run_source(run_dir, case_id)
case = source.case
print(f"run {find_training_run(run_dir)}: case {case.id}, loss {source.loss or '(no voxel weights)'}, mode {source.mode}")

lesions = lesion_table(source.prediction, case.label, schema=source.schema, spacing=case.spacing,
                       threshold=threshold, connectivity=source.connectivity, case_id=case.id)
features = lesion_features(lesions, case.label.ndim)
features["order"] = features["status"].map({"FN": 0, "FP": 1, "TP": 2})
table = features.sort_values(["order", "size_mm3"], ascending=[True, False]).drop(columns=["order", "label"])
print(table["status"].value_counts().reindex(["FN", "FP", "TP"], fill_value=0).to_string())
table.round(2)

# %% [markdown]
# ## Per region

# %%
table.pivot_table(index="region", columns="status", values="id", aggfunc="count", fill_value=0).reindex(
    columns=["TP", "FP", "FN"], fill_value=0
)

# %% [markdown]
# ## The napari view

# %%
print(f"From a shell: workbench audit {run_dir} --case {case.id}")
if open_viewer:
    from IPython import get_ipython

    from workbench.viz.audit import audit_viewer, save_screenshot

    if get_ipython() is not None:
        get_ipython().run_line_magic("gui", "qt")  # Qt events run while the kernel waits for the next cell
    viewer = audit_viewer(source, threshold=threshold, show=True)
    if screenshot is not None:
        save_screenshot(viewer, screenshot)
        viewer.close()
        print(f"screenshot: {screenshot}")
