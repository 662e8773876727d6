"""A tiny run notebook for sweep tests, built with nbformat: it follows the run-notebook contract
(papermill parameters incl. ``out_dir``; writes ``run.json`` and ``per_case.parquet``)."""

from __future__ import annotations

from pathlib import Path

import nbformat

PARAMETERS = """\
out_dir = "."
loss = "blob"
alpha = 1
beta = 1
seed = 0
fold = 0
fail = False
log = ""        # when set: append one line per execution (counts executions)
hang_dir = ""   # when set: write the kernel's pid to hang_dir/<run-id>.pid, sleep while hang_dir/<run-id> exists
"""

BODY = """\
import json, os, time
from pathlib import Path
import pandas as pd

if log:
    with open(log, "a") as handle:
        handle.write(f"{Path(out_dir).name}\\n")
if hang_dir:
    Path(hang_dir, Path(out_dir).name + ".pid").write_text(str(os.getpid()))
while hang_dir and os.path.exists(os.path.join(hang_dir, Path(out_dir).name)):
    time.sleep(0.1)
if fail:
    raise RuntimeError(f"run {Path(out_dir).name} made to fail")
rows = []
for case in ("c0", "c1"):
    for region in ("WT", "ET"):
        base = 0.5 + 0.1 * beta + 0.01 * seed + (0.1 if loss == "blob" else 0.0)
        rows.append(dict(case_id=case, region=region, metric="dice", threshold=float("nan"), stratum="all", value=base))
        for t in (0.1, 0.5):
            for metric in ("pq", "rq", "sq"):
                rows.append(dict(case_id=case, region=region, metric=metric, threshold=t, stratum="all", value=base - t / 2))
pd.DataFrame(rows).to_parquet(Path(out_dir) / "per_case.parquet")
(Path(out_dir) / "run.json").write_text(json.dumps({"status": "complete", "loss": loss}))
"""


def write_notebook(path: Path) -> Path:
    """Write the test notebook to ``path`` and return it."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(BODY)]
    nbformat.write(notebook, str(path))
    return path
