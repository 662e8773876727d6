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
# # 02 — Train and evaluate one loss
#
# Trains a U-Net with one workbench loss, predicts the held-out cases, evaluates them (region
# Dice, PQ/SQ/RQ at 0.1/0.3/0.5, size strata, detection, CC-Dice, surface Dice, HD95) and stores
# their lesion candidates: `workbench.runs.pipeline.train_and_evaluate`, which checks every
# parameter before anything is written. It writes into `out_dir`:
#
# | file | content |
# |---|---|
# | `train/` | the training run folder (config, its own `run.json`, `metrics.parquet`, checkpoint, predictions) |
# | `per_case.parquet` / `.csv` | `case_id, region, metric, threshold, stratum, value` per held-out case |
# | `lesions.parquet` / `.csv` | one row per reference or predicted lesion |
# | `summary.parquet` / `.csv` | `per_case` aggregated over cases |
# | `detection_rows.parquet` | lesion candidates of the stored probabilities vs the reference lesions, per region (operating points) |
# | `run.json` | `running` while the run goes on; `complete`, written last, vouches for every output (parameters, versions, times, outputs) |
#
# A sweep treats a run as done iff `out_dir/run.json` says `"status": "complete"`.
#
# Run headless: `papermill notebooks/02_train_evaluate.ipynb out.ipynb -p loss blob -p beta 2.0 -p out_dir runs/blob-b2`.

# %% tags=["parameters"]
manifest: "Optional[str]" = None  # dataset manifest (.yaml); None: the built-in phantom cohort
loss: str = "blob"  # dc_ce, blob, cc, iwl_blob, iwl_cc, invweight_global, invweight_local
alpha: float = 1.0  # weight of the global DC+CE term (instance losses only)
beta: float = 1.0  # weight of the instance term (instance losses only)
mode: str = "sigmoid"  # "sigmoid" (regions WT/TC/ET/RC) or "softmax" (classes)
seed: int = 0
fold: int = 0  # held-out fold, 0 to n_folds - 1 (0 when n_folds is 0)
n_folds: int = 0  # 0: the manifest's train/test split; 2 or more: k-fold CV over train + val cases
epochs: int = 12
steps_per_epoch: int = 30
val_every: int = 1  # validate (Dice per region, the training curves) every k epochs
patch_size: list[int] = [48, 48, 48]  # 3 ints
filters: list[int] = [8, 16, 32]  # DynUNet features per level (the model size)
batch_size: int = 2
optimizer: str = "adamw"  # "adamw" or "sgd" (nnU-Net's)
learning_rate: float = 0.01
sw_overlap: float = 0.25  # sliding-window overlap at inference
device: str = "auto"  # "auto", "cpu" or "cuda"
workers: int = 0  # data-loader worker processes
eval_workers: int = 1  # processes evaluating the held-out cases
out_dir: str = "runs/notebook"
progress: bool = False  # tqdm bars (off: clean papermill logs)

# %% [markdown]
# ## Train, predict, evaluate
# The held-out cases are the manifest's `test` split (`n_folds = 0`; its `val` split when it has
# no labelled test case), or fold `fold` of a round-robin k-fold over the `train` + `val` cases.
# Training validates every `val_every` epochs on the `val` cases (the training curves). When
# `out_dir/train` already holds a checkpoint (a run stopped before `run.json` said complete,
# started again by a sweep), training resumes from it; a config that differs from the saved one
# is then an error naming the field.

# %%
from workbench.runs.pipeline import train_and_evaluate

result = train_and_evaluate(
    out_dir, manifest=manifest, loss=loss, alpha=alpha, beta=beta, mode=mode, seed=seed, fold=fold, n_folds=n_folds,
    epochs=epochs, steps_per_epoch=steps_per_epoch, val_every=val_every, patch_size=patch_size, filters=filters,
    batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate, sw_overlap=sw_overlap, device=device,
    workers=workers, eval_workers=eval_workers, progress=progress,
)
print(
    f"trained {result.run.epochs_completed} epochs on {len(result.train_cases)} cases in {result.train_seconds:.1f} s; "
    f"held out {len(result.held_out_cases)}: {list(result.held_out_cases)}"
)

# %%
import plotly.express as px

metrics = result.run.metrics
curve = metrics[(metrics["phase"] == "train") & (metrics["metric"] == "loss")]
px.line(curve, x="epoch", y="value", title=f"training loss ({loss})", markers=True).show()

# %%
summary = result.evaluation.summary
headline = summary[
    (summary["stratum"] == "all")
    & (
        summary["metric"].isin(["dice", "f1", "cc_dice"])
        | (summary["metric"].isin(["pq", "rq", "sq"]) & (summary["threshold"] == 0.5))
    )
]
headline.pivot_table(index="region", columns="metric", values="mean", sort=False).round(3)

# %%
per_case = result.evaluation.per_case
dice = per_case[(per_case["metric"] == "dice") & (per_case["region"] != "mean")]
fig = px.box(dice, x="region", y="value", points="all", hover_data=["case_id"], title=f"held-out Dice per region ({loss})")
fig.update_yaxes(range=[0, 1])
fig.show()

# %% [markdown]
# Lesion candidates of the stored probabilities (components of p ≥ t at every threshold t of the
# grid), matched to the reference lesions, for the report's operating points: per region and
# threshold, the lesions found (TP), missed (FN) and the false-positive candidates (FP):

# %%
rows = result.detection_rows
rows.assign(
    outcome=rows["is_lesion"].map({1: "lesion", 0: "FP"}).where(rows["is_lesion"] == 0, rows["confidence"].gt(0).map({True: "TP", False: "FN"}))
).pivot_table(index=["region", "threshold"], columns="outcome", values="case_id", aggfunc="size", fill_value=0)
