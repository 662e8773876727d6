"""Random train / val / test splits of a manifest (``assign_splits``, ``manifest brats-mets --splits``)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data.brats import patient_id
from workbench.data.manifest import CaseEntry, Manifest, assign_splits
from workbench.labels import BINARY

THIRDS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _manifest(ids, unlabelled=()) -> Manifest:
    cases = [CaseEntry(id=i, images={"t1": f"{i}.nii.gz"}, label=None if i in unlabelled else f"{i}-seg.nii.gz")
             for i in ids]
    return Manifest(name="m", schema=BINARY, modalities=("t1",), cases=cases, root=".")


def test_counts_follow_the_fractions_and_the_seed_fixes_the_draw():
    manifest = _manifest([f"c{i:02d}" for i in range(10)])
    split = assign_splits(manifest, THIRDS, seed=3)
    assert Counter(c.split for c in split.cases) == {"train": 6, "val": 2, "test": 2}
    assert [c.split for c in assign_splits(manifest, THIRDS, seed=3).cases] == [c.split for c in split.cases]
    draws = {tuple(c.split for c in assign_splits(manifest, THIRDS, seed=s).cases) for s in range(5)}
    assert len(draws) > 1
    assert [c.id for c in split.cases] == [c.id for c in manifest.cases]  # order and files kept


def test_a_patients_time_points_share_a_split_and_unlabelled_cases_keep_theirs():
    ids = [f"BraTS-MET-{p:05d}-{t:03d}" for p in range(6) for t in range(3 if p % 2 else 1)]
    manifest = _manifest(ids + ["BraTS-MET-00099-000"], unlabelled={"BraTS-MET-00099-000"})
    split = assign_splits(manifest, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=0, group=patient_id)
    by_patient: dict[str, set] = {}
    for case in split.cases:
        by_patient.setdefault(patient_id(case.id), set()).add(case.split)
    assert all(len(splits) == 1 for splits in by_patient.values())
    assert by_patient["BraTS-MET-00099"] == {None}
    patients = Counter(next(iter(s)) for p, s in by_patient.items() if p != "BraTS-MET-00099")
    assert sorted(patients.values()) == [1, 2, 3]  # 6 patients: round(1.5) = 2 with the largest remainder, 1, 3


def test_a_split_that_rounds_to_nothing_still_gets_a_case():
    split = assign_splits(_manifest([f"c{i}" for i in range(6)]), {"a": 1 / 12, "b": 1 / 12, "c": 10 / 12})
    assert Counter(c.split for c in split.cases) == {"a": 1, "b": 1, "c": 4}


def test_patient_id():
    assert patient_id("BraTS-MET-00123-001") == "BraTS-MET-00123"
    assert patient_id("case-7") == "case-7"


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 40), weights=st.lists(st.integers(1, 20), min_size=2, max_size=4), seed=st.integers(0, 99))
def test_every_labelled_case_gets_one_split_and_every_split_a_case(n, weights, seed):
    fractions = {f"s{k}": w / sum(weights) for k, w in enumerate(weights)}
    if n < len(fractions):
        return
    split = assign_splits(_manifest([f"c{i}" for i in range(n)]), fractions, seed=seed)
    counts = Counter(c.split for c in split.cases)
    assert set(counts) == set(fractions) and sum(counts.values()) == n
    for name, fraction in fractions.items():
        assert abs(counts[name] - fraction * n) < len(fractions)  # at least one each can shift a few cases


@pytest.mark.parametrize(("fractions", "message"), [
    ({"train": 0.7, "test": 0.2}, "sum to 1"),
    ({"train": 1.2, "test": -0.2}, "positive"),
    ({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}, "fewer than the 4 splits"),
])
def test_bad_fractions_are_refused(fractions, message):
    with pytest.raises(ValueError, match=message):
        assign_splits(_manifest(["a", "b", "c"]), fractions)


def test_the_demo_refuses_a_manifest_without_splits_before_training(tmp_path):
    from workbench.data.manifest import write_manifest
    from workbench.experiments.demo import demo_spec

    path = tmp_path / "m.yaml"
    write_manifest(_manifest(["a", "b", "c"]), path)
    with pytest.raises(ValueError, match=r"no case in split 'train'.*--splits 0\.7 0\.1 0\.2"):
        demo_spec(tmp_path / "out", manifest=path)
    write_manifest(assign_splits(_manifest(["a", "b", "c"]), {"train": 0.34, "val": 0.33, "test": 0.33}), path)
    assert demo_spec(tmp_path / "out", manifest=path).fixed["manifest"] == str(path.resolve())
