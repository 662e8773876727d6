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
from workbench.viz.selection import check_parameters

check_parameters(run_dir=run_dir, case_id=case_id, threshold=threshold, open_viewer=open_viewer, screenshot=screenshot)

# %% [markdown]
# ## The case and its lesions
#
# Without `case_id`, the case with the most misses in the run's lesion table
# (`workbench.viz.selection.most_missed_case`), else the run's first predicted case.

# %%
from workbench.viz.selection import most_missed_case, ordered_lesions, region_counts, status_counts
from workbench.viz.sources import find_training_run, run_source

if case_id is None:
    case_id = most_missed_case(run_dir, threshold=threshold)
source = run_source(run_dir, case_id)
case = source.case
print(f"run {find_training_run(run_dir)}: case {case.id}, loss {source.loss or '(no voxel weights)'}, mode {source.mode}")

table = ordered_lesions(source, threshold=threshold)
print(status_counts(table).to_string())
table.round(2)

# %% [markdown]
# ## Per region

# %%
region_counts(table)

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
