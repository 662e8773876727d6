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
# # 03 — Compare the losses of a sweep
#
# Reads every run folder `<sweep_dir>/*/` whose `run.json` says `"status": "complete"` (written
# by `02_train_evaluate`), joins each run's parameters (`loss`, `alpha`, `beta`, `seed`, `fold`)
# to its `per_case.parquet`, and shows the multi-class paper's views:
#
# 1. region Dice (WT, TC, ET, RC, mean) per loss;
# 2. PQ and RQ at the matching thresholds 0.1 / 0.3 / 0.5;
# 3. PQ per lesion-size stratum;
# 4. RC Dice against PQ, one point per run;
# 5. the effect of β (a line per loss that was run with several β).
#
# A configuration is one (loss, α, β); its value is the mean over cases, then the mean (and
# standard deviation) over its runs (seeds, folds). With `out_dir`, that table is written as
# `out_dir/compare.parquet` (columns `loss, alpha, beta, region, metric, threshold, stratum,
# mean, std, n_runs`).
#
# The figures are `workbench.viz.figures` functions drawn from the long table `runs` (one row per
# run, case, region, metric, threshold and stratum).
#
# Run headless: `papermill notebooks/03_compare.ipynb out.ipynb -p sweep_dir runs/sweep -p out_dir runs/sweep/compare`.

# %% tags=["parameters"]
sweep_dir: str = "runs/sweep"  # folder of run folders, each with run.json and per_case.parquet
out_dir: "Optional[str]" = None  # where compare.parquet goes; None: write nothing

# %% [markdown]
# ## Check the parameters

# %%
from pathlib import Path

if not isinstance(sweep_dir, str) or not Path(sweep_dir).is_dir():
    raise ValueError(f"Parameter `sweep_dir`: expected an existing folder, but got {sweep_dir!r}.")
if out_dir is not None and (not isinstance(out_dir, str) or not out_dir):
    raise ValueError(f"Parameter `out_dir`: expected None or a non-empty string, but got {out_dir!r}.")

# %% [markdown]
# ## Load the complete runs

# %%
import json

import pandas as pd
from IPython.display import display

RUN_KEYS = ["loss", "alpha", "beta", "seed", "fold"]
frames, skipped = [], []
for run_json in sorted(Path(sweep_dir).glob("*/run.json")):
    run_dir = run_json.parent
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        skipped.append((run_dir.name, f"unreadable run.json: {error}"))
        continue
    if info.get("status") != "complete":
        skipped.append((run_dir.name, f"status {info.get('status')!r}"))
        continue
    if not (run_dir / "per_case.parquet").is_file():
        skipped.append((run_dir.name, "no per_case.parquet"))
        continue
    parameters = info.get("parameters", {})
    frame = pd.read_parquet(run_dir / "per_case.parquet")
    frame.insert(0, "run_id", run_dir.name)
    for key in RUN_KEYS:
        frame[key] = parameters.get(key)
    frames.append(frame)
if not frames:
    raise ValueError(f"Parameter `sweep_dir`: no complete run (run.json + per_case.parquet) in {sweep_dir!r}; skipped: {skipped}.")
runs = pd.concat(frames, ignore_index=True)
runs["alpha"] = runs["alpha"].astype(float)
runs["beta"] = runs["beta"].astype(float)
runs["config"] = runs["loss"] + " α=" + runs["alpha"].map("{:g}".format) + " β=" + runs["beta"].map("{:g}".format)
print(f"{runs['run_id'].nunique()} complete runs, {runs['config'].nunique()} configurations; skipped: {skipped or 'none'}")
runs.groupby(["loss", "alpha", "beta"])["run_id"].nunique().rename("runs").to_frame()

# %% [markdown]
# ## One table: mean over cases per run, then over the runs of a configuration

# %%
KEYS = ["region", "metric", "threshold", "stratum"]
per_run = (
    runs.groupby(["run_id", "config", *RUN_KEYS[:3], *KEYS], dropna=False, sort=False)["value"].mean().reset_index()
)
compare = (
    per_run.groupby(["config", "loss", "alpha", "beta", *KEYS], dropna=False, sort=False)["value"]
    .agg(mean="mean", std="std", n_runs="count")
    .reset_index()
)
if out_dir is not None:
    from workbench._io import atomic_write

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(out_dir) / "compare.parquet") as tmp:
        compare.drop(columns="config").to_parquet(tmp, index=False)
    print(f"wrote {Path(out_dir) / 'compare.parquet'}")

REGIONS = [r for r in ["WT", "TC", "ET", "RC", "mean"] if r in set(compare["region"])] or sorted(compare["region"].unique())
THRESHOLDS = sorted(t for t in compare["threshold"].dropna().unique())
MAIN_T = 0.5 if 0.5 in THRESHOLDS else max(THRESHOLDS)


def select(metric, *, stratum="all", threshold=None):
    rows = compare[(compare["metric"] == metric) & (compare["stratum"] == stratum)]
    return rows if threshold is None else rows[rows["threshold"] == threshold]


# %% [markdown]
# ## 1. Region Dice per loss

# %%
from workbench.viz.figures import (
    beta_effect_lines,
    metric_bars,
    rc_dice_vs_pq,
    stratified_pq_bars,
    threshold_lines,
)

dice = select("dice")
display(dice.pivot_table(index="config", columns="region", values="mean")[[r for r in REGIONS if r in set(dice["region"])]].round(3))
metric_bars(runs, "dice").show()

# %% [markdown]
# ## 2. PQ and RQ at each matching threshold

# %%
pq_rq = compare[compare["metric"].isin(["pq", "rq"]) & (compare["stratum"] == "all")]
display(
    pq_rq[pq_rq["region"] == "mean"].pivot_table(index="config", columns=["metric", "threshold"], values="mean").round(3)
)
threshold_lines(runs, ("pq", "rq")).show()

# %% [markdown]
# ## 3. PQ per lesion-size stratum (threshold 0.5, or the largest one present)

# %%
strata = compare[(compare["metric"] == "pq") & (compare["threshold"] == MAIN_T) & (compare["stratum"] != "all")]
if strata.empty:
    print("no size-stratified rows in these runs")
else:
    display(strata.pivot_table(index="config", columns=["region", "stratum"], values="mean", sort=False).round(3))
    stratified_pq_bars(runs, MAIN_T).show()

# %% [markdown]
# ## 4. RC Dice against PQ (one point per run)

# %%
if "RC" not in set(runs["region"]):
    print("no RC region in these runs")
else:
    rc_dice_vs_pq(runs, MAIN_T).show()

# %% [markdown]
# ## 5. Effect of β

# %%
beta_view = select("pq", threshold=MAIN_T)
beta_view = beta_view[beta_view["region"] == "mean"]
if (beta_view.groupby("loss")["beta"].nunique() < 2).all():
    print(f"every loss was run with one β only ({dict(beta_view.groupby('loss')['beta'].first())}); no β curve to draw")
beta_effect_lines(runs, threshold=MAIN_T).show()

# %% [markdown]
# ## 6. Operating points: argmax against matched precision, with bootstrap intervals
# Runs that stored lesion candidates (`detection_rows.parquet`, written by `02_train_evaluate`)
# are compared at argmax and at a matched precision of 0.85: a loss that only trades recall for
# precision shows no gain there. Intervals: 95 % bootstrap over cases; differences to the first
# configuration are paired over the same (seed, fold, case) units.

# %%
from workbench.experiments.detection import DETECTION_ROWS, ci_label, curve_points, detection_table, paired_differences
from workbench.metrics.detection_curves import volume_bias
from workbench.viz.figures import froc_curves, pr_curves, volume_bias_bars

config_of = runs.groupby("run_id")["config"].first()
seed_of = runs.groupby("run_id")["seed"].first()
detections, lesion_tables = [], []
for run_id in config_of.index:
    run_dir = Path(sweep_dir) / run_id
    if (run_dir / DETECTION_ROWS).is_file():
        detections.append(pd.read_parquet(run_dir / DETECTION_ROWS).assign(config=config_of[run_id], seed=seed_of[run_id]))
    if (run_dir / "lesions.parquet").is_file():
        lesion_tables.append(pd.read_parquet(run_dir / "lesions.parquet").assign(config=config_of[run_id]))
if detections:
    detection = pd.concat(detections, ignore_index=True)
    operating = detection_table(detection, precision=0.85)
    display(ci_label(operating, ["ap", "argmax_precision", "argmax_recall", "matched_recall"]))
    baseline = detection["config"].iloc[0]
    print(f"differences to {baseline}:")
    display(paired_differences(detection, baseline, precision=0.85).round(3))
    points = curve_points(detection)
    pr_curves(points).show()
    froc_curves(points).show()
else:
    print("no run stored lesion candidates (detection_rows.parquet): no operating-point analysis")
if lesion_tables:
    bias = pd.concat(
        [volume_bias(part).assign(config=config) for config, part in pd.concat(lesion_tables).groupby("config", sort=False)],
        ignore_index=True,
    )
    if len(bias):
        volume_bias_bars(bias).show()
