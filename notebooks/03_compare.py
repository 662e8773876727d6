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
# Every sub-folder of `sweep_dir` whose `run.json` says complete and that holds
# `per_case.parquet`, tagged with its parameters (`workbench.experiments.collect_results`).

# %%
from IPython.display import display

from workbench.experiments import collect_results, compare_table, run_table

RUN_KEYS = ["loss", "alpha", "beta", "seed", "fold"]
CONFIG_KEYS = ["loss", "alpha", "beta"]
runs = collect_results(sweep_dir, keys=RUN_KEYS)
if not len(runs):
    listed = run_table(sweep_dir, keys=RUN_KEYS)
    raise ValueError(
        f"Parameter `sweep_dir`: no complete run (run.json + per_case.parquet) in {sweep_dir!r}; "
        f"runs found: {dict(zip(listed['run_id'], listed['status']))}."
    )
runs = runs.astype({"alpha": float, "beta": float})
runs["config"] = runs["loss"] + " α=" + runs["alpha"].map("{:g}".format) + " β=" + runs["beta"].map("{:g}".format)
skipped = {run: status for run, status in runs.attrs["status"].items() if status != "complete"}
print(f"{runs['run_id'].nunique()} complete runs, {runs['config'].nunique()} configurations; not complete: {skipped or 'none'}")
runs.groupby(CONFIG_KEYS)["run_id"].nunique().rename("runs").to_frame()

# %% [markdown]
# ## One table: mean over cases per run, then over the runs of a configuration

# %%
compare = compare_table(runs, ["config", *CONFIG_KEYS])
if out_dir is not None:
    from workbench.runs.tables import write_table

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    print(f"wrote {write_table(Path(out_dir) / 'compare.parquet', compare.drop(columns='config'))}")

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
from workbench.experiments import detection_analysis
from workbench.experiments.detection import ci_label
from workbench.viz.figures import froc_curves, pr_curves, volume_bias_bars

analysis = detection_analysis(sweep_dir, CONFIG_KEYS)
if len(analysis.operating):
    display(ci_label(analysis.operating, ["ap", "argmax_precision", "argmax_recall", "matched_recall"]))
    print(f"differences to {analysis.baseline}:")
    display(analysis.differences.round(3))
    pr_curves(analysis.points).show()
    froc_curves(analysis.points).show()
else:
    print("no run stored lesion candidates (detection_rows.parquet): no operating-point analysis")
if len(analysis.volume_bias):
    volume_bias_bars(analysis.volume_bias).show()
