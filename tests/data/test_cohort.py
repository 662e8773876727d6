"""Phantom cohorts on disk: they load like real data and regenerate when files go missing."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from workbench.data import cohort
from workbench.data.cohort import case_seed, default_cohort_manifest, default_manifest_path, make_cohort
from workbench.data.manifest import load_case, load_manifest, write_manifest
from workbench.data.phantoms import make_case

SHAPE = (32, 32, 32)


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory):
    return make_cohort(5, 7, tmp_path_factory.mktemp("cohort"), shape=SHAPE)


def test_cohort_loads_like_real_data_and_equals_make_case(small_cohort):
    manifest = load_manifest(small_cohort)
    assert [c.id for c in manifest.cases] == [f"phantom-{i:03d}" for i in range(5)]
    assert [c.split for c in manifest.cases] == ["train", "train", "train", "val", "test"]
    case = load_case(manifest, "phantom-002")
    expected = make_case(case_seed(7, 2), shape=SHAPE)
    np.testing.assert_array_equal(case.label, expected.label)
    np.testing.assert_array_equal(case.image, expected.image)
    np.testing.assert_allclose(case.spacing, expected.spacing, rtol=1e-6)
    assert case.modalities == ("t1n", "t1c", "t2w", "t2f")


def test_missing_files_are_regenerated_identically(small_cohort):
    manifest = load_manifest(small_cohort)
    label_file = manifest.case("phantom-004").label
    before = label_file.read_bytes()
    label_file.unlink()
    load_manifest(small_cohort)
    assert label_file.read_bytes() == before


def test_case_seeds_are_distinct_across_cases_and_cohorts():
    seeds = {case_seed(c, i) for c in range(3) for i in range(50)}
    assert len(seeds) == 150


def test_generator_version_mismatch_is_an_error(small_cohort, tmp_path):
    document = yaml.safe_load(small_cohort.read_text())
    document["generator"]["version"] = -1
    document["root"] = str(tmp_path)
    stale = tmp_path / "manifest.yaml"
    stale.write_text(yaml.safe_dump(document))
    with pytest.raises(ValueError, match=r"phantom generator version -1"):
        load_manifest(stale)


def test_committed_default_manifest_is_the_default_cohort(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    written = tmp_path / "default.yaml"
    write_manifest(default_cohort_manifest(), written)
    assert default_manifest_path().read_text() == written.read_text()
    assert "{cache}/phantoms_default-v" in written.read_text()


def test_bad_cohort_size_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"`n` to be a positive number of cases, but got 0"):
        cohort.cohort_manifest(0, 0, tmp_path)
