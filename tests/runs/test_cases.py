"""The one case runner: order, processes, and errors that name the case."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.runs.cases import CasePair, EvaluationError, run_cases


def _pairs(n):
    return [CasePair(f"case-{i}", Path(f"pred-{i}.nii.gz"), Path(f"ref-{i}.nii.gz")) for i in range(n)]


def _name_length(pair: CasePair) -> tuple[str, int]:
    return pair.case_id, len(pair.prediction.name)


def _fail_on_two(pair: CasePair) -> str:
    if pair.case_id == "case-2":
        raise ValueError("label values [7] outside the schema")
    return pair.case_id


def _bug_on_one(pair: CasePair) -> str:
    if pair.case_id == "case-1":
        raise KeyError("bug")
    return pair.case_id


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_pair_order(workers):
    pairs = _pairs(5)
    assert run_cases(pairs, _name_length, workers=workers, progress=False) == [(p.case_id, len("pred-0.nii.gz")) for p in pairs]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_data_error_names_the_case_and_its_files(workers):
    with pytest.raises(EvaluationError, match=r"Case 'case-2' \(prediction pred-2.nii.gz, reference ref-2.nii.gz\): label values"):
        run_cases(_pairs(4), _fail_on_two, workers=workers, progress=False)


def test_a_bug_keeps_its_type_with_a_note_naming_the_case():
    with pytest.raises(KeyError) as info:
        run_cases(_pairs(3), _bug_on_one, progress=False)
    assert any("case-1" in note for note in info.value.__notes__)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_int(workers):
    with pytest.raises(ValueError, match="Expected `workers` to be a positive int"):
        run_cases(_pairs(1), _name_length, workers=workers, progress=False)
