"""The official BraTS scorer (brats-evaluation 0.0.10 → panoptica) as the oracle of the challenge tests."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from _sessions import import_or_skip

import_or_skip("brats_evaluation", "brats-evaluation", "oracles")
from brats_evaluation.evaluation import evaluate_single_exam  # noqa: E402
from brats_evaluation.metrics_parser import parse_mets_results, parse_seg_results  # noqa: E402


def official(preset, pairs: list[tuple[Path, Path]], folder: Path) -> pd.DataFrame:
    """brats-evaluate + brats-parse-metrics on (prediction, reference) files, read back from its CSV."""
    from panoptica import Panoptica_Evaluator

    config = files("brats_evaluation").joinpath("configs", f"config_{preset.config}.yaml")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = Panoptica_Evaluator.load_from_config(str(config))
        metrics = [evaluate_single_exam(str(p), str(r), r.name, evaluator) for p, r in pairs]
        (folder / "summary.json").write_text(json.dumps({"metrics": metrics, "missings": []}))
        if preset.parser == "mets":
            parse_mets_results(str(folder / "summary.json"), 20.0, 0.1, str(folder / "official.csv"))
        else:
            parse_seg_results(str(folder / "summary.json"), str(folder / "official.csv"))
    return pd.read_csv(folder / "official.csv")


def assert_frames_equal(
    official_rows: pd.DataFrame, ours: pd.DataFrame, *, atol: float = 1e-6, hd95_atol: float = 1e-3
) -> None:
    """Every official column equal in ``ours`` (same order first): within ``atol``, HD95 within ``hd95_atol``."""
    assert list(ours.columns[: len(official_rows.columns)]) == list(official_rows.columns)
    for column in official_rows.columns.drop("subject_id"):
        expected = official_rows[column].to_numpy(float)
        got = pd.to_numeric(ours[column], errors="coerce").to_numpy(float)
        tolerance = hd95_atol if "hd95" in column else atol
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance, equal_nan=True, err_msg=column)
