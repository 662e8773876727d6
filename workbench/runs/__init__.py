"""Run folders: what a job writes, and the jobs that write them.

=====================  ==========================================================================
module                 job
=====================  ==========================================================================
``record``             ``run.json``, the one writer: :class:`RunRecord` (running → complete /
                       failed / interrupted), :func:`is_complete`, :func:`read_run`
``cases``              pairing predictions with reference cases, split selection, the one
                       parallel case runner (:func:`run_cases`)
``tables``             result tables as Parquet + CSV, atomically (:func:`write_tables`)
``evaluate``           ``workbench evaluate``: the workbench's metrics over a cohort
``scoring``            ``workbench evaluate --preset``: a challenge's official scoring over a cohort
``pipeline``           train → predict → evaluate one loss into one folder (notebook 02, sweeps)
=====================  ==========================================================================
"""

from workbench.runs.cases import CaseMatchError, CasePair, EvaluationError, match_cases, run_cases, select_split
from workbench.runs.evaluate import CohortEvaluation, evaluate_cohort, run_evaluation, summarise
from workbench.runs.record import RunRecord, is_complete, read_run
from workbench.runs.scoring import ScoredCohort, run_scoring, score_cohort
from workbench.runs.tables import write_tables

__all__ = [
    "CaseMatchError",
    "CasePair",
    "CohortEvaluation",
    "EvaluationError",
    "RunRecord",
    "ScoredCohort",
    "evaluate_cohort",
    "is_complete",
    "match_cases",
    "read_run",
    "run_cases",
    "run_evaluation",
    "run_scoring",
    "score_cohort",
    "select_split",
    "summarise",
    "write_tables",
]
