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
# Trains a U-Net with one workbench loss (`workbench.training.train`), predicts the held-out
# cases, evaluates them with `workbench.evaluate` (region Dice, PQ/SQ/RQ at 0.1/0.3/0.5, size
# strata, detection, CC-Dice, surface Dice, HD95) and writes into `out_dir`:
#
# | file | content |
# |---|---|
# | `train/` | the training run folder (config, its own `run.json`, `metrics.parquet`, checkpoint, predictions) |
# | `per_case.parquet` / `.csv` | `case_id, region, metric, threshold, stratum, value` per held-out case |
# | `lesions.parquet` / `.csv` | one row per reference or predicted lesion |
# | `summary.parquet` / `.csv` | `per_case` aggregated over cases |
# | `detection_rows.parquet` | lesion candidates of the stored probabilities vs the reference lesions, per region (operating points) |
# | `run.json` | written **last**: `status: complete`, the parameters, package versions, times, outputs |
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
n_folds: int = 0  # 0: the train/val split of the manifest; 2 or more: k-fold CV over train + val cases
epochs: int = 50
steps_per_epoch: int = 50
val_every: int = 10
patch_size: list[int] = [64, 64, 64]  # 3 ints
filters: list[int] = [16, 32, 64, 128]  # DynUNet features per level (the model size)
batch_size: int = 2
learning_rate: float = 0.01
device: str = "auto"  # "auto", "cpu" or "cuda"
workers: int = 0  # data-loader worker processes
eval_workers: int = 1  # processes evaluating the held-out cases
out_dir: str = "runs/notebook"
progress: bool = False  # tqdm bars (off: clean papermill logs)

# %% [markdown]
# ## Check the parameters
# Papermill only warns about a parameter the notebook does not know, and injects values as
# given; every one is checked here so that a typo fails before anything trains. Fields of the
# training config are checked again by `workbench.training.validate`.

# %%
import math
from pathlib import Path

from workbench.losses import LOSS_NAMES


def _fail(name, expected, value):
    raise ValueError(f"Parameter `{name}`: expected {expected}, but got {value!r} ({type(value).__name__}).")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


for _name in ("seed", "fold", "n_folds", "epochs", "steps_per_epoch", "val_every", "batch_size", "workers", "eval_workers"):
    if not _is_int(globals()[_name]):
        _fail(_name, "an integer", globals()[_name])
for _name in ("epochs", "steps_per_epoch", "val_every", "batch_size", "eval_workers"):
    if globals()[_name] < 1:
        _fail(_name, "a positive integer", globals()[_name])
for _name in ("seed", "workers", "n_folds", "fold"):
    if globals()[_name] < 0:
        _fail(_name, "an integer >= 0", globals()[_name])
for _name in ("alpha", "beta", "learning_rate"):
    _value = globals()[_name]
    if isinstance(_value, bool) or not isinstance(_value, (int, float)) or not math.isfinite(_value) or _value < 0:
        _fail(_name, "a finite number >= 0", _value)
if learning_rate <= 0:
    _fail("learning_rate", "a positive number", learning_rate)
if loss not in LOSS_NAMES:
    _fail("loss", f"one of {LOSS_NAMES}", loss)
if mode not in ("sigmoid", "softmax"):
    _fail("mode", "'sigmoid' or 'softmax'", mode)
if device not in ("auto", "cpu", "cuda"):
    _fail("device", "'auto', 'cpu' or 'cuda'", device)
if manifest is not None and not (isinstance(manifest, str) and Path(manifest).is_file()):
    _fail("manifest", "None or the path of an existing manifest file", manifest)
if not isinstance(out_dir, str) or not out_dir:
    _fail("out_dir", "a non-empty string", out_dir)
if not isinstance(progress, bool):
    _fail("progress", "true or false", progress)
if not isinstance(patch_size, (list, tuple)) or len(patch_size) != 3 or not all(_is_int(s) and s > 0 for s in patch_size):
    _fail("patch_size", "a list of 3 positive integers", patch_size)
if not isinstance(filters, (list, tuple)) or len(filters) < 3 or not all(_is_int(f) and f > 0 for f in filters):
    _fail("filters", "a list of at least 3 positive integers (features per level)", filters)
if n_folds == 1:
    _fail("n_folds", "0 (the manifest's split) or at least 2", n_folds)
if fold >= max(n_folds, 1):
    _fail("fold", f"an integer in [0, {max(n_folds, 1) - 1}] (n_folds = {n_folds})", fold)

parameters = {
    "manifest": manifest, "loss": loss, "alpha": float(alpha), "beta": float(beta), "mode": mode, "seed": seed,
    "fold": fold, "n_folds": n_folds, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "val_every": val_every,
    "patch_size": list(patch_size), "filters": list(filters), "batch_size": batch_size,
    "learning_rate": float(learning_rate), "device": device, "workers": workers, "eval_workers": eval_workers,
    "out_dir": out_dir, "progress": progress,
}
parameters

# %% [markdown]
# ## Data and split
# The held-out cases are the manifest's `val` split (`n_folds = 0`), or fold `fold` of a
# round-robin k-fold over the `train` + `val` cases in manifest order.

# %%
import dataclasses
import time

from workbench._runinfo import package_versions, utc_now, write_json
from workbench.data.cohort import default_manifest_path
from workbench.data.manifest import load_manifest

started = utc_now()
manifest_path = Path(manifest) if manifest is not None else default_manifest_path()
data = load_manifest(manifest_path)
if n_folds == 0:
    train_ids = [case.id for case in data.split("train")]
    held_out_ids = [case.id for case in data.split("val")]
else:
    pool = [case.id for case in data.cases if case.split in ("train", "val")]
    if len(pool) < n_folds:
        _fail("n_folds", f"at most the {len(pool)} train + val cases", n_folds)
    held_out_ids = pool[fold::n_folds]
    train_ids = [cid for cid in pool if cid not in held_out_ids]
print(f"{data.name}: {len(train_ids)} training cases, {len(held_out_ids)} held out: {held_out_ids}")

# %% [markdown]
# ## Train
# The training run lives in `out_dir/train` (it writes its own `run.json` there); `alpha` and
# `beta` go to the loss only for the instance losses (`dc_ce` has no instance term). When
# `out_dir/train` already holds a checkpoint (a run that stopped before `run.json` was written,
# started again by a sweep), training resumes from it; a config that differs from the saved
# one is then an error naming the field.

# %%
from workbench.training import train, validate

out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
config = validate(
    {
        "out_dir": str(out / "train"),
        "manifest": str(manifest_path),
        "train_cases": train_ids,
        "val_cases": held_out_ids,
        "loss": loss,
        "loss_options": {} if loss == "dc_ce" else {"alpha": float(alpha), "beta": float(beta)},
        "mode": mode,
        "filters": list(filters),
        "patch_size": list(patch_size),
        "batch_size": batch_size,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "val_every": val_every,
        "learning_rate": float(learning_rate),
        "device": device,
        "workers": workers,
        "seed": seed,
        "progress": progress,
    }
)
tick = time.perf_counter()
result = train(config, resume=(out / "train" / "checkpoints" / "last.pt").is_file())
train_seconds = time.perf_counter() - tick
print(f"trained {result.epochs_completed} epochs in {train_seconds:.1f} s; {len(result.predictions)} predictions")

# %%
import plotly.express as px

curve = result.metrics[(result.metrics["phase"] == "train") & (result.metrics["metric"] == "loss")]
fig = px.line(curve, x="epoch", y="value", title=f"training loss ({loss})", markers=True)
fig.show()

# %% [markdown]
# ## Evaluate the held-out predictions

# %%
from workbench.evaluate import evaluate_cohort, write_tables

reference = dataclasses.replace(data, cases=tuple(data.case(cid) for cid in held_out_ids))
evaluation = evaluate_cohort(result.run_dir / "predictions", reference, workers=eval_workers, progress=progress)
table_paths = write_tables(
    out, evaluation, attrs={"parameters": parameters, "metrics": evaluation.config}
)
per_case = evaluation.per_case
summary = evaluation.summary

# %% [markdown]
# ## Lesion candidates for operating-point analyses
# The training run stored each held-out case's probabilities (`train/predictions/*.probabilities.npz`);
# their lesion candidates, matched to the reference lesions, let the report compare losses at any
# operating point, not only at argmax.

# %%
import pandas as pd

from workbench._io import atomic_write
from workbench.data.manifest import load_case
from workbench.experiments.detection import DETECTION_ROWS
from workbench.metrics.detection_curves import region_rows
from workbench.training.probabilities import PROBABILITY_SUFFIX, load_probabilities

detection_parts = []
for case_id in held_out_ids:
    probabilities, channels = load_probabilities(result.run_dir / "predictions" / f"{case_id}{PROBABILITY_SUFFIX}")
    case = load_case(data, case_id)
    detection_parts.append(region_rows(
        probabilities, channels, case.label, schema=data.schema, mode=mode, case_id=case_id, spacing=case.spacing,
    ))
detection_rows = pd.concat(detection_parts, ignore_index=True)
with atomic_write(out / DETECTION_ROWS) as tmp:
    detection_rows.to_parquet(tmp, index=False)
detection_rows.groupby(["region", "is_lesion"]).size().unstack(fill_value=0)

# %%
headline = summary[
    (summary["stratum"] == "all")
    & (
        summary["metric"].isin(["dice", "f1", "cc_dice"])
        | (summary["metric"].isin(["pq", "rq", "sq"]) & (summary["threshold"] == 0.5))
    )
]
headline.pivot_table(index="region", columns="metric", values="mean", sort=False).round(3)

# %%
dice = per_case[(per_case["metric"] == "dice") & (per_case["region"] != "mean")]
fig = px.box(dice, x="region", y="value", points="all", hover_data=["case_id"], title=f"held-out Dice per region ({loss})")
fig.update_yaxes(range=[0, 1])
fig.show()

# %% [markdown]
# ## Record the run
# `run.json` is written last and atomically: its `complete` status vouches for every output.

# %%
outputs = [str(p.relative_to(out)) for p in table_paths] + [DETECTION_ROWS, "train/"]
write_json(
    out / "run.json",
    {
        "status": "complete",
        "parameters": parameters,
        "versions": package_versions(["workbench", "torch", "monai", "numpy", "pandas", "pyarrow", "papermill"]),
        "started": started,
        "finished": utc_now(),
        "manifest": str(manifest_path),
        "train_cases": train_ids,
        "held_out_cases": held_out_ids,
        "train_seconds": train_seconds,
        "outputs": outputs,
    },
)
print(f"wrote {out / 'run.json'}")
