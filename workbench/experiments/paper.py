"""The multi-class paper's comparison on our runs: its numbers, its tables, its claimed orderings.

The paper, "Instance Awareness of Multi-class Semantic Segmentation Loss Functions"
(``shared/papers/multiclass-instance-losses.txt``), trains nnU-Net with DC+CE, blob, CC, their IWL
variants and standalone inverse-size weighting on BraTS-METS 2025 (260 test cases) and reports
region Dice, PQ / RQ at Dice matching thresholds 0.1 / 0.3 / 0.5 and size-stratified PQ. Our copy
of its text lost most table cells and inline numbers: :func:`paper_reference` holds only the
numbers the text still states, each with the words it comes from.

Configurations. A results row (``loss``, ``alpha``, ``beta`` as :func:`collect_results` tags it)
is one of the paper's rows (:data:`PAPER_CONFIGS`): an instance loss (blob, cc, iwl_blob, iwl_cc)
at alpha = 1 and beta = 1 ("Global + Blob") or beta = 2 ("Global + Blob†"; other alpha / beta: not
a paper row); a loss without instance term (dc_ce, invweight_global, invweight_local) whatever
its alpha / beta, which it ignores, so such runs are further runs of one configuration. A missing
``alpha`` / ``beta`` column means the notebook default, 1. The paper's "InvWeight† (global)" has
no counterpart: the text does not say what † changes for a loss without instance term.

Tables (:func:`paper_tables`), each value the mean over a configuration's runs (seeds) per case,
then mean ± standard deviation over cases (the paper's std is over its 260 test cases too):

* Table 2: PQ at 0.5 per lesion size, foreground mean; small / medium / large are our strata
  ``"<100"``, ``"100-1000"``, ``">=1000"`` (mm³). This mapping and the region are ours: the text
  names the strata but not their edges.
* Table 3: Dice of WT, TC, ET, RC and their foreground mean (FG, our region ``"mean"``).
* Table 4 is not built: the text does not say what it holds (it cites "Tables 3–4" only for the
  InvWeight rows being worst "in both DSC and" a metric whose symbol was lost).
* Tables 5 and 6: foreground-mean PQ and RQ at 0.1, 0.3 and 0.5.

Claims (:func:`paper_claims`): per ordering the paper states, our paired difference over cases
with its 95 % interval (:func:`workbench.experiments.findings.paired_interval`), its verdict
(:func:`~workbench.experiments.findings.verdict`) and whether that agrees with the paper.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import pandas as pd

from workbench.experiments.findings import interval_text, paired_interval, verdict
from workbench.losses import LOSSES

__all__ = [
    "PAPER_CLAIMS",
    "PAPER_CONFIGS",
    "PAPER_REFERENCE",
    "PAPER_TITLE",
    "STRATA",
    "Cell",
    "Claim",
    "PaperConfig",
    "paper_claims",
    "paper_config",
    "paper_reference",
    "paper_sections",
    "paper_tables",
]

PAPER_TITLE = "Instance Awareness of Multi-class Semantic Segmentation Loss Functions"


class PaperConfig(NamedTuple):
    """One row of the paper's tables: our key (``"blob-b2"``), the paper's label, loss and beta (None: no instance term)."""

    key: str
    label: str
    loss: str
    beta: float | None


PAPER_CONFIGS: tuple[PaperConfig, ...] = (
    PaperConfig("dc_ce", "Baseline (DC+CE)", "dc_ce", None),
    PaperConfig("blob-b1", "Global + Blob", "blob", 1.0),
    PaperConfig("blob-b2", "Global + Blob†", "blob", 2.0),
    PaperConfig("cc-b1", "Global + CC", "cc", 1.0),
    PaperConfig("cc-b2", "Global + CC†", "cc", 2.0),
    PaperConfig("invweight_global", "InvWeight (global)", "invweight_global", None),
    PaperConfig("invweight_local", "InvWeight (local)", "invweight_local", None),
    PaperConfig("iwl_blob-b1", "Global + IWL-Blob", "iwl_blob", 1.0),
    PaperConfig("iwl_blob-b2", "Global + IWL-Blob†", "iwl_blob", 2.0),
    PaperConfig("iwl_cc-b1", "Global + IWL-CC", "iwl_cc", 1.0),
    PaperConfig("iwl_cc-b2", "Global + IWL-CC†", "iwl_cc", 2.0),
)
"""The paper's configurations we can run, in the row order of its Tables 3–6."""

_LABELS = {config.key: config.label for config in PAPER_CONFIGS}
_ORDER = tuple(_LABELS)
_TABLE2_ORDER = (  # Table 2 lists the IWL rows before the InvWeight rows
    "dc_ce", "blob-b1", "blob-b2", "cc-b1", "cc-b2", "iwl_blob-b1", "iwl_blob-b2", "iwl_cc-b1", "iwl_cc-b2",
    "invweight_global", "invweight_local",
)
_INVWEIGHT = ("invweight_global", "invweight_local")

STRATA = {"small": "<100", "medium": "100-1000", "large": ">=1000"}
"""The paper's size strata (Table 2) → our strata (mm³); the mapping is ours."""


class Cell(NamedTuple):
    """Which results rows a number is: region, metric, threshold (None for Dice) and stratum."""

    region: str
    metric: str
    threshold: float | None = None
    stratum: str = "all"


# --------------------------------------------------------------------------- the paper's numbers

_FG_PQ = "Table 5"
_REFERENCE_COLUMNS = ["config", "table", "section", "region", "metric", "threshold", "stratum", "value",
                      "as_written", "quote", "note"]
_PQ_NOTE = "the PQ symbol and its threshold were lost in our copy; 0.5 assumed (the threshold of Fig. 3 and §1)"
_REFERENCES: tuple[tuple[str, str, str, Cell, str, str, str], ...] = (
    # config, table, section, cell, as written, quote (verbatim), note
    ("dc_ce", "Table 3", "§4.2", Cell("WT", "dice"), "0.751",
     "The baseline DC+CE achieves strong performance on the three common regions (WT 0.751, TC 0.749, ET 0.727)", ""),
    ("dc_ce", "Table 3", "§4.2", Cell("TC", "dice"), "0.749",
     "The baseline DC+CE achieves strong performance on the three common regions (WT 0.751, TC 0.749, ET 0.727)", ""),
    ("dc_ce", "Table 3", "§4.2", Cell("ET", "dice"), "0.727",
     "The baseline DC+CE achieves strong performance on the three common regions (WT 0.751, TC 0.749, ET 0.727)", ""),
    ("dc_ce", "Table 3", "§4.2", Cell("RC", "dice"), "0.150",
     "but fails on the rare resection cavity (RC 0.150)", "also §1 (0.15) and §5"),
    ("dc_ce", _FG_PQ, "§1", Cell("mean", "pq", 0.5), "0.38",
     "a foreground-mean Panoptic Quality [4] at DSC threshold 0.5 () of 0.38", ""),
    ("blob-b1", "Table 3", "§4.2", Cell("RC", "dice"), "0.221",
     "Blob loss shows a similar but smaller improvement (RC 0.221, FG 0.615)", "also §1 (0.22)"),
    ("blob-b1", "Table 3", "§4.2", Cell("mean", "dice"), "0.615",
     "Blob loss shows a similar but smaller improvement (RC 0.221, FG 0.615)", ""),
    ("cc-b1", "Table 3", "§4.2", Cell("TC", "dice"), "0.764", "achieving the best TC (0.764) and ET (0.740)", ""),
    ("cc-b1", "Table 3", "§4.2", Cell("ET", "dice"), "0.740", "achieving the best TC (0.764) and ET (0.740)", ""),
    ("cc-b1", "Table 3", "§4.2", Cell("RC", "dice"), "0.306", "raising RC from 0.150 to 0.306", "also §5 (0.31)"),
    ("cc-b1", "Table 3", "§4.2", Cell("mean", "dice"), "0.644", "yielding the second-best foreground mean (0.644)",
     "also §4.5"),
    ("cc-b2", "Table 3", "§4.5", Cell("mean", "dice"), "0.638",
     "increasing from 1 to 2 reduces foreground Dice from 0.644 to 0.638", "β=2 (the β symbols were lost)"),
    ("cc-b1", _FG_PQ, "§4.5", Cell("mean", "pq", 0.5), "0.390", "and from 0.390 to 0.386", _PQ_NOTE),
    ("cc-b2", _FG_PQ, "§4.5", Cell("mean", "pq", 0.5), "0.386", "and from 0.390 to 0.386", _PQ_NOTE),
    ("iwl_blob-b1", "Table 3", "§4.2", Cell("RC", "dice"), "0.441", "produces the highest RC Dice (0.441)",
     "also §4.1, §1 (0.44), §5 (0.44)"),
    ("iwl_blob-b1", "Table 3", "§4.2", Cell("mean", "dice"), "0.646", "the best foreground mean (0.646)",
     "also §4.1, §4.5"),
    ("iwl_blob-b1", "Table 3", "§4.2", Cell("WT", "dice"), "0.725", "WT drops from 0.768 to 0.725",
     "the row 0.768 belongs to is not named"),
    ("iwl_blob-b1", "Table 3", "§4.2", Cell("ET", "dice"), "0.695", "ET from 0.740 to 0.695",
     "the row 0.740 belongs to is not named"),
    ("iwl_blob-b2", "Table 3", "§4.5", Cell("mean", "dice"), "0.593",
     "IWL-Blob drops from 0.646 to 0.593 in foreground Dice", "β=2"),
    ("iwl_blob-b1", _FG_PQ, "§4.5", Cell("mean", "pq", 0.5), "0.306", "and from 0.306 to 0.234 in", _PQ_NOTE),
    ("iwl_blob-b2", _FG_PQ, "§4.5", Cell("mean", "pq", 0.5), "0.234", "and from 0.306 to 0.234 in", _PQ_NOTE),
)


def paper_reference() -> pd.DataFrame:
    """The paper's numbers that our copy of its text still states, one row each.

    Returns
    -------
    DataFrame
        ``config`` (a key of :data:`PAPER_CONFIGS`), ``table`` (the paper table the number belongs
        to), ``section`` (where the text states it), ``region, metric, threshold, stratum`` (as in
        a results table; threshold NaN for Dice), ``value``, ``as_written`` (the number as the text
        writes it), ``quote`` (the words it comes from, verbatim) and ``note``.

    Notes
    -----
    Left out: Table 1 (dataset counts, not results); ranges (§4.4: "0.39–0.40", "0.22–0.61",
    "0.703 to 0.730"); "as low as 0.352 / 0.015" (§4.1, one of three InvWeight rows, not named);
    the 0.768 / 0.740 IWL-Blob is compared with in §4.2 (row not named); roundings repeated in
    §1 and §5 (the note names them).
    """
    rows = [
        {"config": config, "table": table, "section": section, "region": cell.region, "metric": cell.metric,
         "threshold": math.nan if cell.threshold is None else cell.threshold, "stratum": cell.stratum,
         "value": float(written), "as_written": written, "quote": quote, "note": note}
        for config, table, section, cell, written, quote, note in _REFERENCES
    ]
    return pd.DataFrame(rows, columns=_REFERENCE_COLUMNS)


PAPER_REFERENCE = paper_reference()
""":func:`paper_reference` at import (a copy: modifying it changes nothing here)."""


def _reference_lookup() -> dict[tuple[str, Cell], float]:
    return {
        (row.config, Cell(row.region, row.metric, None if pd.isna(row.threshold) else float(row.threshold), row.stratum)):
        row.value
        for row in paper_reference().itertuples()
    }


# --------------------------------------------------------------------------- our results as paper rows


def paper_config(results: pd.DataFrame) -> pd.Series:
    """The :data:`PAPER_CONFIGS` key of each results row (module docstring), None when it is none.

    Examples
    --------
    >>> rows = pd.DataFrame({"loss": ["blob", "blob", "dc_ce", "cc"], "beta": [1.0, 2, 2, 3]})
    >>> paper_config(rows).tolist()
    ['blob-b1', 'blob-b2', 'dc_ce', None]
    """
    if "loss" not in results.columns:
        return pd.Series([None] * len(results), index=results.index, dtype=object)
    alpha = _numeric(results, "alpha")
    beta = _numeric(results, "beta")
    keys = []
    for loss, a, b in zip(results["loss"], alpha, beta):
        spec = LOSSES.get(str(loss))
        if spec is None:
            keys.append(None)
        elif not spec.instance_term:
            keys.append(spec.name)
        elif math.isclose(a, 1.0) and (math.isclose(b, 1.0) or math.isclose(b, 2.0)):
            keys.append(f"{spec.name}-b{b:g}")
        else:
            keys.append(None)
    return pd.Series(keys, index=results.index, dtype=object)


def _numeric(results: pd.DataFrame, column: str) -> pd.Series:
    if column not in results.columns:
        return pd.Series(1.0, index=results.index)
    return pd.to_numeric(results[column], errors="coerce").fillna(1.0)


def _prepare(results: pd.DataFrame) -> pd.DataFrame:
    """The results rows of paper configurations, with their key in ``paper_config``."""
    keyed = results.assign(paper_config=paper_config(results))
    return keyed[keyed["paper_config"].notna()]


def _present(prepared: pd.DataFrame, order: Sequence[str] = _ORDER) -> list[str]:
    found = set(prepared["paper_config"])
    return [key for key in order if key in found]


def _case_means(prepared: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    """One column per configuration, one row per case: the mean over the configuration's runs."""
    rows = prepared[
        prepared["region"].eq(cell.region) & prepared["metric"].eq(cell.metric) & prepared["stratum"].eq(cell.stratum)
    ]
    threshold = pd.to_numeric(rows["threshold"], errors="coerce")
    rows = rows[threshold.isna() if cell.threshold is None else (threshold - cell.threshold).abs().lt(1e-9)]
    if not len(rows):
        return pd.DataFrame()
    return rows.groupby(["case_id", "paper_config"])["value"].mean().unstack("paper_config")


# --------------------------------------------------------------------------- tables


class _Table(NamedTuple):
    title: str
    order: tuple[str, ...]
    columns: tuple[tuple[str, Cell], ...]


_TABLES = {
    "Table 2": _Table(
        "PQ at 0.5 per lesion size (foreground mean; small / medium / large = our strata <100 / 100-1000 / >=1000 mm³)",
        _TABLE2_ORDER, tuple((size, Cell("mean", "pq", 0.5, stratum)) for size, stratum in STRATA.items()),
    ),
    "Table 3": _Table(
        "Region Dice (FG: foreground mean)", _ORDER,
        tuple((region, Cell(region, "dice")) for region in ("WT", "TC", "ET", "RC"))
        + (("FG", Cell("mean", "dice")),),
    ),
    "Table 5": _Table(
        "Foreground-mean PQ per matching threshold", _ORDER,
        tuple((f"{t:g}", Cell("mean", "pq", t)) for t in (0.1, 0.3, 0.5)),
    ),
    "Table 6": _Table(
        "Foreground-mean RQ per matching threshold", _ORDER,
        tuple((f"{t:g}", Cell("mean", "rq", t)) for t in (0.1, 0.3, 0.5)),
    ),
}


def paper_tables(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Our numbers in the layout of the paper's Tables 2, 3, 5 and 6 (module docstring).

    Parameters
    ----------
    results : DataFrame
        A results table (:func:`workbench.experiments.collect_results`): ``run_id``, ``loss``
        (and ``alpha``, ``beta`` if in the grid), ``case_id, region, metric, threshold, stratum,
        value``. Rows of no paper configuration are left out.

    Returns
    -------
    dict of str to DataFrame
        ``"Table 2"``, ``"Table 3"``, ``"Table 5"``, ``"Table 6"``. Index: the paper's row labels
        of the configurations present, in the paper's order. Columns (two levels): per table column
        (``small``…, ``WT``…``FG``, ``0.1``…) ``mean`` and ``std`` over cases (of the per-case mean
        over runs; NaN values skipped) and ``paper`` (the paper's number, NaN where the text gives
        none); then ``("n", "cases")`` and ``("n", "runs")``. ``attrs["title"]`` says what it holds.
    """
    prepared = _prepare(results)
    reference = _reference_lookup()
    tables = {}
    for name, spec in _TABLES.items():
        keys = _present(prepared, spec.order)
        columns = pd.MultiIndex.from_tuples(
            [(column, stat) for column, _ in spec.columns for stat in ("mean", "std", "paper")]
            + [("n", "cases"), ("n", "runs")]
        )
        table = pd.DataFrame(index=pd.Index([_LABELS[k] for k in keys], dtype=object), columns=columns, dtype=float)
        for column, cell in spec.columns:
            means = _case_means(prepared, cell)
            for key in keys:
                values = means[key] if key in means.columns else pd.Series(dtype=float)
                table.loc[_LABELS[key], (column, "mean")] = values.mean()
                table.loc[_LABELS[key], (column, "std")] = values.std()
                table.loc[_LABELS[key], (column, "paper")] = reference.get((key, cell), math.nan)
        for key in keys:
            rows = prepared[prepared["paper_config"].eq(key)]
            table.loc[_LABELS[key], ("n", "cases")] = rows["case_id"].nunique()
            table.loc[_LABELS[key], ("n", "runs")] = rows["run_id"].nunique() if "run_id" in rows else math.nan
        table.attrs["title"] = spec.title
        tables[name] = table
    return tables


# --------------------------------------------------------------------------- claims

Expect = Literal["higher", "lower", "not lower"]


class Claim(NamedTuple):
    """An ordering the paper states: ``config`` is ``expect`` than ``versus`` in ``cell``.

    ``versus`` with several keys: against the strongest of those present (highest mean for
    "higher" / "not lower", lowest for "lower"), i.e. "best" or "worst" of a set.
    """

    text: str
    where: str
    quote: str
    config: str
    versus: tuple[str, ...]
    cell: Cell
    expect: Expect


_PQ5 = Cell("mean", "pq", 0.5)
_FG_DICE = Cell("mean", "dice")
_NON_INVWEIGHT = tuple(k for k in _ORDER if k not in _INVWEIGHT)
_ALL_CC_ORDER = "Multi-class CC loss improves DSC across all four regions simultaneously"
_IWL_PQ = "IWL variants achieve lower despite higher Dice"
_BETA_DICE = "consistently outperforms across all configurations (Fig. 4)"
_BETA_PQ = "variants consistently underperform their counterparts"
_SMALL = "The IWL variants degrade small-instance"
_LARGE = "but maintain large-instance detection"
_WORST = "produces the worst results in both DSC and"


_SHORT = {"blob": "Blob", "cc": "CC", "iwl_blob": "IWL-Blob", "iwl_cc": "IWL-CC"}


def _others(key: str) -> tuple[str, ...]:
    return tuple(k for k in _ORDER if k != key)


PAPER_CLAIMS: tuple[Claim, ...] = (
    Claim("CC raises RC Dice over DC+CE", "§4.2, §5", "raising RC from 0.150 to 0.306", "cc-b1", ("dc_ce",),
          Cell("RC", "dice"), "higher"),
    Claim("CC raises foreground Dice over DC+CE", "Abstract, §4.2", "multi-class CC loss improves foreground Dice",
          "cc-b1", ("dc_ce",), _FG_DICE, "higher"),
    *(Claim(f"CC raises {region} Dice over DC+CE", "§4.2", _ALL_CC_ORDER, "cc-b1", ("dc_ce",), Cell(region, "dice"),
            "higher") for region in ("WT", "TC", "ET")),
    Claim("CC keeps DC+CE's PQ@0.5", "Abstract, §5", "while maintaining Panoptic Quality at DSC threshold 0.5",
          "cc-b1", ("dc_ce",), _PQ5, "not lower"),
    Claim("Blob raises RC Dice over DC+CE", "§4.2", "Blob loss shows a similar but smaller improvement", "blob-b1",
          ("dc_ce",), Cell("RC", "dice"), "higher"),
    Claim("CC has a higher foreground Dice than Blob", "§4.2", "CC loss outperforms blob loss on voxel overlap",
          "cc-b1", ("blob-b1",), _FG_DICE, "higher"),
    Claim("CC has the best TC Dice", "§4.2", "achieving the best TC (0.764) and ET (0.740)", "cc-b1", _others("cc-b1"),
          Cell("TC", "dice"), "higher"),
    Claim("CC has the best ET Dice", "§4.2", "achieving the best TC (0.764) and ET (0.740)", "cc-b1", _others("cc-b1"),
          Cell("ET", "dice"), "higher"),
    *(Claim(f"Blob has the best PQ@{t:g}", "§4.3" + (", Abstract" if t == 0.5 else ""),
            "Global + Blob achieves the highest PQ across all thresholds", "blob-b1", _others("blob-b1"),
            Cell("mean", "pq", t), "higher") for t in (0.1, 0.3, 0.5)),
    Claim("Blob has the best RQ@0.5 (threshold ours)", "Abstract, §4.3",
          "Blob loss achieves the best detection quality", "blob-b1", _others("blob-b1"), Cell("mean", "rq", 0.5),
          "higher"),
    Claim("CC has the best PQ@0.5 after Blob", "§4.3", "followed by Global + CC", "cc-b1",
          tuple(k for k in _others("cc-b1") if k != "blob-b1"), _PQ5, "higher"),
    Claim("IWL-Blob raises RC Dice over Blob", "§1, §4.2", "increasing blob loss RC Dice from 0.22 to 0.44",
          "iwl_blob-b1", ("blob-b1",), Cell("RC", "dice"), "higher"),
    Claim("IWL-Blob has a lower PQ@0.5 than Blob", "§4.3, Abstract", _IWL_PQ, "iwl_blob-b1", ("blob-b1",), _PQ5, "lower"),
    Claim("IWL-CC has a lower PQ@0.5 than CC", "§4.3", _IWL_PQ, "iwl_cc-b1", ("cc-b1",), _PQ5, "lower"),
    Claim("IWL-Blob has the best RC Dice", "§4.2, §4.1", "produces the highest RC Dice (0.441)", "iwl_blob-b1",
          _others("iwl_blob-b1"), Cell("RC", "dice"), "higher"),
    Claim("IWL-Blob has the best foreground Dice", "§4.2", "the best foreground mean (0.646)", "iwl_blob-b1",
          _others("iwl_blob-b1"), _FG_DICE, "higher"),
    *(Claim(f"{_LABELS[key]} is below every non-InvWeight configuration in {name}", "§4.1", _WORST, key,
            _NON_INVWEIGHT, cell, "lower")
      for key in _INVWEIGHT for name, cell in (("foreground Dice", _FG_DICE), ("PQ@0.5", _PQ5))),
    *(Claim(f"{_SHORT[loss]}: β=1 beats β=2 in {name}", where, quote, f"{loss}-b1", (f"{loss}-b2",), cell,
            "higher")
      for name, where, quote, cell in (("foreground Dice", "§4.5", _BETA_DICE, _FG_DICE), ("PQ@0.5", "§4.3", _BETA_PQ, _PQ5))
      for loss in ("blob", "cc", "iwl_blob", "iwl_cc")),
    *(Claim(f"IWL-{_SHORT[loss]} has a lower small-lesion PQ@0.5 than {_SHORT[loss]}", "§4.4",
            _SMALL, f"iwl_{loss}-b1", (f"{loss}-b1",), Cell("mean", "pq", 0.5, STRATA["small"]), "lower")
      for loss in ("blob", "cc")),
    *(Claim(f"IWL-{_SHORT[loss]} keeps {_SHORT[loss]}'s large-lesion PQ@0.5", "§4.4",
            _LARGE, f"iwl_{loss}-b1", (f"{loss}-b1",), Cell("mean", "pq", 0.5, STRATA["large"]), "not lower")
      for loss in ("blob", "cc")),
)
"""The orderings the paper states that our results can test, with where and in which words it states them."""

_AGREEMENT: dict[str, dict[str, str]] = {
    "higher": {"better": "agrees", "worse": "disagrees"},
    "lower": {"better": "disagrees", "worse": "agrees"},
    "not lower": {"better": "agrees", "within the noise": "agrees", "worse": "disagrees"},
}
_VERDICT_REASONS = {
    ("higher", "within the noise"): "the interval holds 0: no ordering either way",
    ("lower", "within the noise"): "the interval holds 0: no ordering either way",
    ("not lower", "within the noise"): "the interval holds 0; its low end is the largest loss it leaves open",
    **{(expect, "cannot tell"): "fewer than two cases with both values: no interval" for expect in _AGREEMENT},
}
_CLAIM_COLUMNS = ["claim", "where", "quote", "config", "versus", "region", "metric", "threshold", "stratum", "expected",
                  "difference", "low", "high", "n_cases", "verdict", "agreement", "reason"]


def paper_claims(results: pd.DataFrame, claims: Sequence[Claim] = PAPER_CLAIMS) -> pd.DataFrame:
    """Per ordering the paper claims, our paired difference over cases and whether we agree.

    Parameters
    ----------
    results : DataFrame
        A results table, as for :func:`paper_tables`.
    claims : sequence of Claim, optional
        The orderings to test; default :data:`PAPER_CLAIMS`.

    Returns
    -------
    DataFrame
        One row per claim: ``claim, where, quote`` (the paper's words, verbatim), ``config``,
        ``versus`` (the paper label of the configuration compared with; for a "best" / "worst"
        claim the strongest rival present, "the strongest rival present" when none is), the cell (``region,
        metric, threshold, stratum``), ``expected`` ("higher", "lower" or "not lower"),
        ``difference, low, high, n_cases`` (config − versus, paired over the cases both have, each
        the mean over its runs, with the 95 % interval of
        :func:`~workbench.experiments.findings.paired_interval`), ``verdict`` (of
        :func:`~workbench.experiments.findings.verdict`, higher is better), ``agreement``
        ("agrees", "disagrees" or "cannot tell") and ``reason``.

    Notes
    -----
    "higher" / "lower" agree on a "better" / "worse" verdict and disagree on the opposite; "within
    the noise" cannot tell them. "not lower" (the paper's "maintaining") agrees on "better" or
    "within the noise" and disagrees on "worse". A "cannot tell" verdict, or a configuration or
    cell absent from the results, gives "cannot tell" with the reason.
    """
    prepared = _prepare(results)
    present = set(prepared["paper_config"])
    records = []
    for claim in claims:
        record: dict[str, Any] = {
            "claim": claim.text, "where": claim.where, "quote": claim.quote, "config": _LABELS[claim.config],
            "versus": _LABELS[claim.versus[0]] if len(claim.versus) == 1 else "the strongest rival present",
            "region": claim.cell.region,
            "metric": claim.cell.metric, "threshold": math.nan if claim.cell.threshold is None else claim.cell.threshold,
            "stratum": claim.cell.stratum, "expected": claim.expect, "difference": math.nan, "low": math.nan,
            "high": math.nan, "n_cases": 0, "verdict": None, "agreement": "cannot tell", "reason": "",
        }
        means = _case_means(prepared, claim.cell)
        pair, reason = _pair(claim, present, means)
        if pair is None:
            record["reason"] = reason
        else:
            interval = paired_interval(pair.iloc[:, 0], pair.iloc[:, 1])
            found = verdict(interval, higher_is_better=True)
            record.update(
                versus=_LABELS[pair.columns[1]], difference=interval.difference, low=interval.low, high=interval.high,
                n_cases=interval.n_cases, verdict=found, agreement=_AGREEMENT[claim.expect].get(found, "cannot tell"),
                reason=_VERDICT_REASONS.get((claim.expect, found), ""),
            )
        records.append(record)
    return pd.DataFrame(records, columns=_CLAIM_COLUMNS)


def _pair(claim: Claim, present: set[str], means: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The per-case values of the claim's configuration and its competitor (cases both have), or a reason."""
    where = _cell_text(claim.cell)
    absent = [_LABELS[claim.config]] if claim.config not in present else []
    if not any(k in present for k in claim.versus):
        absent.append(" / ".join(_LABELS[k] for k in claim.versus))
    if absent:
        return None, f"no results for {' and '.join(absent)}"
    if claim.config not in means.columns or means[claim.config].notna().sum() == 0:
        return None, f"no {where} values for {_LABELS[claim.config]}"
    rivals = [k for k in claim.versus if k in means.columns and means[k].notna().any()]
    if not rivals:
        return None, f"no {where} values for {' / '.join(_LABELS[k] for k in claim.versus if k in present)}"
    rival_means = means[rivals].mean()
    rival = rival_means.idxmin() if claim.expect == "lower" else rival_means.idxmax()
    pair = means[[claim.config, rival]].dropna()
    if not len(pair):
        return None, f"no case has {where} values of both {_LABELS[claim.config]} and {_LABELS[rival]}"
    return pair, ""


def _cell_text(cell: Cell) -> str:
    region = "foreground-mean" if cell.region == "mean" else cell.region
    metric = "Dice" if cell.metric == "dice" else cell.metric.upper()
    at = "" if cell.threshold is None else f"@{cell.threshold:g}"
    size = "" if cell.stratum == "all" else f" (lesions {cell.stratum} mm³)"
    return f"{region} {metric}{at}{size}"


# --------------------------------------------------------------------------- report sections


def paper_sections(results: pd.DataFrame) -> tuple[list[str], list[Any]]:
    """The report's section on the paper: tables, claims (HTML fragments) and Figure 3.

    Parameters
    ----------
    results : DataFrame
        A results table, as for :func:`paper_tables`.

    Returns
    -------
    sections : list of str
        HTML fragments: a heading and what the section compares, Tables 2, 3, 5 and 6 (ours as
        mean ± std over cases, the paper's number beside it where the text gives one), the claims
        of :func:`paper_claims`.
    figures : list of plotly Figure
        Figure 3: RC Dice against foreground-mean PQ@0.5, one point per run
        (:func:`workbench.viz.figures.rc_dice_vs_pq`); none when no run has both.

    Both lists are empty when the results hold fewer than two of the paper's configurations.
    """
    from workbench.viz.figures import LOSS_COLOURS, apply_styles, rc_dice_vs_pq

    prepared = _prepare(results)
    present = _present(prepared)
    if len(present) < 2:
        return [], []
    sections = [
        "<h2>The multi-class paper's comparison</h2>",
        f"<p>Our runs in the layout of <i>{html.escape(PAPER_TITLE)}</i> (BraTS-METS 2025, nnU-Net, 260 test cases; "
        f"here: {html.escape(', '.join(_LABELS[k] for k in present))}). Ours: per case the mean over a configuration's "
        "runs (seeds), then mean ± standard deviation over cases. <i>paper</i>: the number where our copy of the "
        "paper's text still states it (most table cells were lost). † = β 2, otherwise α = β = 1. Table 4 is left "
        "out: the text does not say what it holds. Size strata (Table 2) are ours: small &lt; 100, medium "
        "100–1000, large ≥ 1000 mm³.</p>",
    ]
    for name, table in paper_tables(results).items():
        sections += [f"<h3>{name}: {html.escape(table.attrs['title'])}</h3>", _table_html(table)]
    claims = paper_claims(results)
    sections += [
        "<h3>The paper's claimed orderings</h3>",
        "<p>Difference: claimed configuration − the one compared with (for a “best” or “worst” claim the "
        "strongest rival present), paired over cases, with its 95 % interval; verdict and agreement are computed "
        "from the interval.</p>",
        _claims_html(claims),
    ]
    figures = []
    labelled = prepared.assign(configuration=prepared["paper_config"].map(_LABELS))
    try:
        figure = rc_dice_vs_pq(labelled, 0.5, by="configuration")
        # each loss its colour of every other figure; β = 2 drawn dotted
        styles = {config.label: (LOSS_COLOURS[config.loss], "dot" if config.beta == 2 else "solid")
                  for config in PAPER_CONFIGS if config.loss in LOSS_COLOURS}
        figures.append(apply_styles(figure, styles))
    except ValueError as error:
        sections.append(f"<p>No Figure 3: {html.escape(str(error))}</p>")
    return sections, figures


def _table_html(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(index=table.index)
    for column in dict.fromkeys(c for c, _ in table.columns if c != "n"):
        mean, std, paper = (table[(column, s)] for s in ("mean", "std", "paper"))
        shown[column] = [_mean_std(m, s) for m, s in zip(mean, std)]
        shown[f"{column} paper"] = paper.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    shown["cases"] = table[("n", "cases")].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    shown["runs"] = table[("n", "runs")].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    return shown.to_html(escape=True)


def _mean_std(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def _claims_html(claims: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "claim": claims["claim"], "where": claims["where"], "versus": claims["versus"],
        "difference [95 %]": [interval_text(row) for row in claims.to_dict("records")],
        "cases": claims["n_cases"], "verdict": claims["verdict"].fillna(""), "agreement": claims["agreement"],
        "reason": claims["reason"],
    })
    return shown.to_html(index=False, escape=True)
