"""Minutes to target per loss, and validation Dice against wall-clock minutes, from a finished sweep.

Reads every run folder of a sweep (``workbench demo`` writes one into ``runs/demo/losses``):
the per-epoch training log (``train/metrics.parquet``: validation Dice per region, seconds per
epoch) and the held-out evaluation (``per_case.parquet``). Prints, in Markdown:

* per run: the wall-clock minutes of training until the validation Dice first reached the
  targets of issue 20 (WT ≥ 0.80, TC ≥ 0.70, ET ≥ 0.65) — "not reached" otherwise — and the
  held-out test Dice per region and ET lesion F1 at the end;
* the curve: validation Dice (mean over WT, TC, ET) after each epoch against the cumulative
  training minutes, one column per run.

The minutes are those the runs logged (two runs at a time on a 2-core machine share it, as in
the demo). Run:  python benchmarks/bench_convergence.py runs/demo/losses
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

TARGETS = {"WT": 0.80, "TC": 0.70, "ET": 0.65}


def run_curves(run_dir: Path) -> pd.DataFrame:
    """Per epoch: cumulative training minutes and validation Dice per region (columns WT, TC, ET, RC)."""
    log = pd.read_parquet(run_dir / "train" / "metrics.parquet")
    seconds = log[(log["phase"] == "train") & (log["metric"] == "seconds")].set_index("epoch")["value"]
    dice = log[(log["phase"] == "val") & (log["metric"] == "dice")].pivot_table(index="epoch", columns="region", values="value")
    curves = dice.join((seconds.cumsum() / 60).rename("minutes"), how="inner")
    return curves.reset_index()


def minutes_to_target(curves: pd.DataFrame) -> float | None:
    """The first logged minute at which every target region reached its target; None if never."""
    reached = curves[[region for region in TARGETS]].ge(pd.Series(TARGETS)).all(axis=1)
    return float(curves.loc[reached, "minutes"].iloc[0]) if reached.any() else None


def held_out(run_dir: Path) -> dict[str, float]:
    """Held-out (test) Dice per region and ET lesion F1 (lesion matching at argmax), means over cases."""
    table = pd.read_parquet(run_dir / "per_case.parquet")
    table = table[table["stratum"] == "all"]
    dice = table[table["metric"] == "dice"].groupby("region")["value"].mean()
    f1 = table[(table["metric"] == "f1") & (table["region"] == "ET")]["value"].mean()
    return {**{f"test {region}": float(dice[region]) for region in ("WT", "TC", "ET", "RC")}, "test ET F1": float(f1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args()
    runs = sorted(path.parent for path in args.sweep_dir.glob("*/per_case.parquet"))
    summary, curves = [], {}
    for run_dir in runs:
        curve = run_curves(run_dir)
        curves[run_dir.name] = curve.set_index("minutes")[list(TARGETS)].mean(axis=1)
        target = minutes_to_target(curve)
        summary.append({
            "run": run_dir.name,
            "minutes to target": "not reached" if target is None else f"{target:.1f}",
            "training minutes": f"{curve['minutes'].iloc[-1]:.1f}",
            **{key: f"{value:.3f}" for key, value in held_out(run_dir).items()},
        })
    columns = list(summary[0]) if summary else ["run"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in summary:
        print("| " + " | ".join(str(row[column]) for column in columns) + " |")
    print()
    for name, curve in curves.items():
        points = ", ".join(f"{minutes:.1f} min {dice:.2f}" for minutes, dice in curve.items())
        print(f"- {name}: {points}")


if __name__ == "__main__":
    main()
