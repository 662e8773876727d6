"""Dataset manifests (workbench.data.manifest)."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from workbench.data import manifest as manifest_module
from workbench.data.manifest import (
    CaseEntry,
    Manifest,
    ManifestError,
    cache_dir,
    load_case,
    load_manifest,
    read_manifest,
    validate_files,
    write_manifest,
)
from workbench.labels import BRATS_METS_2025, LabelSchema, LabelValueError

SHAPE = (4, 4, 3)
MODALITIES = ("t1c", "t2f")


def _write(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def _case_files(root: Path, case_id: str, *, label_value: int = 1) -> dict:
    """Write one case (two modalities + label) under root and return its manifest entry."""
    images = {}
    for i, modality in enumerate(MODALITIES):
        _write(root / case_id / f"{modality}.nii.gz", np.full(SHAPE, i + 1.0, np.float32))
        images[modality] = f"{case_id}/{modality}.nii.gz"
    label = np.zeros(SHAPE, np.uint8)
    label[1:3, 1:3, 1] = label_value
    _write(root / case_id / "seg.nii.gz", label)
    return {"id": case_id, "images": images, "label": f"{case_id}/seg.nii.gz"}


def _document(cases: list[dict], **top) -> dict:
    return {"name": "toy", "schema": "brats_mets_2025", "modalities": list(MODALITIES), **top, "cases": cases}


def _write_yaml(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep a user's $WORKBENCH_CACHE from changing how roots are written."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A valid manifest with three labelled cases (train, train, val) and one without label (test)."""
    cases = [_case_files(tmp_path, f"c{i}") for i in range(4)]
    cases[0]["split"], cases[1]["split"], cases[2]["split"] = "train", "train", "val"
    cases[3] = {"id": "c3", "images": cases[3]["images"], "split": "test"}
    return _write_yaml(tmp_path / "toy.yaml", _document(cases))


def test_read_manifest_resolves_paths_against_the_manifest_folder(dataset):
    manifest = read_manifest(dataset)
    assert manifest.name == "toy" and manifest.schema is BRATS_METS_2025
    assert manifest.modalities == MODALITIES and manifest.root == dataset.parent
    assert manifest.source == dataset and manifest.generator is None
    assert [c.id for c in manifest.cases] == ["c0", "c1", "c2", "c3"]
    assert manifest.case("c1").images["t2f"] == dataset.parent / "c1" / "t2f.nii.gz"
    assert manifest.case("c0").label == dataset.parent / "c0" / "seg.nii.gz"
    assert manifest.case("c3").label is None
    assert [c.id for c in manifest.split("train")] == ["c0", "c1"]


def test_case_and_split_lookup_errors_list_alternatives(dataset):
    manifest = read_manifest(dataset)
    with pytest.raises(KeyError, match=r"no case 'c0x'; closest ids: \['c0'\]"):
        manifest.case("c0x")
    with pytest.raises(KeyError, match=r"no case 'BraTS'; ids look like \['c0', 'c1', 'c2'\]"):
        manifest.case("BraTS")
    with pytest.raises(KeyError, match=r"no case in split 'valid'; its splits: \['test', 'train', 'val'\]"):
        manifest.split("valid")


def test_root_relative_to_manifest_folder(tmp_path):
    data = tmp_path / "data"
    entry = _case_files(data, "c0")
    (tmp_path / "manifests").mkdir()
    path = _write_yaml(tmp_path / "manifests" / "m.yaml", _document([entry], root="../data"))
    manifest = read_manifest(path)
    assert manifest.root == data
    assert manifest.case("c0").label == data / "c0" / "seg.nii.gz"


def test_cache_placeholder_honours_workbench_cache(tmp_path, monkeypatch):
    cache = tmp_path / "my-cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    assert cache_dir() == cache
    entry = _case_files(cache / "toy", "c0")
    path = _write_yaml(tmp_path / "m.yaml", _document([entry], root="{cache}/toy"))

    manifest = load_manifest(path)

    assert manifest.root == cache / "toy"
    assert manifest.case("c0").images["t1c"] == cache / "toy" / "c0" / "t1c.nii.gz"
    write_manifest(manifest, tmp_path / "again.yaml")
    assert yaml.safe_load((tmp_path / "again.yaml").read_text())["root"] == "{cache}/toy"


def test_cache_dir_default_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "workbench"


def test_write_read_round_trip(dataset, tmp_path):
    manifest = read_manifest(dataset)
    out = tmp_path / "out" / "copy.yaml"
    out.parent.mkdir()
    write_manifest(manifest, out)

    again = read_manifest(out)

    assert again.source == out
    for field in ("name", "schema", "modalities", "cases", "root", "generator"):
        assert getattr(again, field) == getattr(manifest, field), field
    document = yaml.safe_load(out.read_text())
    assert document["root"] == dataset.parent.as_posix()  # outside the new file's folder: absolute
    assert document["cases"][0]["images"]["t1c"] == "c0/t1c.nii.gz"  # relative to root
    assert "label" not in document["cases"][3]
    assert [p.name for p in out.parent.iterdir()] == ["copy.yaml"]  # no temp file left


def test_round_trip_keeps_generator_and_manifest_folder_root(tmp_path):
    manifest = Manifest(
        name="gen",
        schema=BRATS_METS_2025,
        modalities=MODALITIES,
        cases=(CaseEntry("a", {m: tmp_path / "a" / f"{m}.nii.gz" for m in MODALITIES}, split="0"),),
        root=tmp_path,
        generator={"name": "phantoms", "n": 1, "shape": (4, 4, 3)},
    )
    write_manifest(manifest, tmp_path / "gen.yaml")
    document = yaml.safe_load((tmp_path / "gen.yaml").read_text())
    assert document["root"] == "." and document["generator"]["shape"] == [4, 4, 3]
    again = read_manifest(tmp_path / "gen.yaml")
    assert again.cases == manifest.cases and again.root == tmp_path
    assert dict(again.generator) == {"name": "phantoms", "n": 1, "shape": [4, 4, 3]}


def test_write_manifest_rejects_an_unregistered_schema(tmp_path):
    schema = LabelSchema(name="custom", labels={1: "A"})
    manifest = Manifest("m", schema, ("t1",), (CaseEntry("a", {"t1": tmp_path / "a.nii"}),), tmp_path)
    with pytest.raises(ValueError, match=r"its schema 'custom' is not registered"):
        write_manifest(manifest, tmp_path / "m.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="nope"), r"field 'schema': Unknown label schema 'nope'; known schemas"),
        (lambda d: d["cases"][1].update(id="c0"), r"case 'c0', field 'id': duplicate id"),
        (
            lambda d: d["cases"][0]["images"].pop("t2f"),
            r"case 'c0', field 'images': lacks declared modalities \['t2f'\]",
        ),
        (
            lambda d: d["cases"][1]["images"].update(t1n="x.nii.gz"),
            r"case 'c1', field 'images': has undeclared modalities \['t1n'\]",
        ),
        (lambda d: d.update(extra=1), r"unknown top-level keys \['extra'\]"),
        (lambda d: d.pop("modalities"), r"missing required field 'modalities'"),
        (lambda d: d["cases"][1].update(id=7), r"case #1, field 'id' must be a string \(quote ids"),
        (lambda d: d["cases"][0].update(label=3), r"case 'c0', field 'label' must be a file path, got int 3"),
        (lambda d: d["cases"][0].update(split=True), r"case 'c0', field 'split' must be a split name or fold id"),
        (lambda d: d["cases"][0].update(size=1), r"case 'c0': unknown fields \['size'\]"),
        (lambda d: d.update(root="{data}/x"), r"field 'root': unknown placeholders \['\{data\}'\]"),
        (lambda d: d.update(generator={"n": 3}), r"generator, field 'name': missing"),
        (lambda d: d.update(cases=[]), r"field 'cases' must be a non-empty list"),
    ],
)
def test_structural_errors_name_file_case_and_field(dataset, edit, message):
    document = yaml.safe_load(dataset.read_text())
    edit(document)
    _write_yaml(dataset, document)
    with pytest.raises(ManifestError, match=re.escape(f"manifest {dataset}") + r".*" + message):
        read_manifest(dataset)


def test_structural_errors_are_reported_together(dataset):
    document = yaml.safe_load(dataset.read_text())
    document["schema"] = "nope"
    document["cases"][2]["id"] = 2
    _write_yaml(dataset, document)
    with pytest.raises(ManifestError, match=r"2 problems:\n  - field 'schema'.*\n  - case #2, field 'id'"):
        read_manifest(dataset)


def test_invalid_yaml_and_missing_manifest(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match=r"bad\.yaml: not valid YAML"):
        read_manifest(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError, match=r"Manifest file .*absent\.yaml does not exist"):
        read_manifest(tmp_path / "absent.yaml")


def test_missing_file_is_named(dataset):
    missing = dataset.parent / "c1" / "t2f.nii.gz"
    missing.unlink()
    with pytest.raises(ManifestError, match=re.escape(f"{missing}: file does not exist (case 'c1', t2f)")):
        validate_files(read_manifest(dataset))
    message = f"{missing}: file does not exist (and the manifest declares no generator)"
    with pytest.raises(ManifestError, match=re.escape(message)):
        load_manifest(dataset, validate=False)


def test_label_shape_mismatch_names_both_files(dataset):
    label = dataset.parent / "c2" / "seg.nii.gz"
    _write(label, np.zeros((4, 4, 5), np.uint8))
    first = dataset.parent / "c2" / "t1c.nii.gz"
    expected = f"{label} has shape (4, 4, 5) but {first} has shape (4, 4, 3) (case 'c2', label vs t1c)"
    with pytest.raises(ManifestError, match=re.escape(expected)):
        load_manifest(dataset)


def test_modality_affine_mismatch_names_both_files(dataset):
    other = dataset.parent / "c0" / "t2f.nii.gz"
    _write(other, np.zeros(SHAPE, np.float32), np.diag([1.0, 1.0, 1.5, 1.0]))
    first = dataset.parent / "c0" / "t1c.nii.gz"
    pattern = re.escape(f"{other} has affine ") + r".* but " + re.escape(f"{first} has affine")
    with pytest.raises(ManifestError, match=pattern + r".*largest difference 0\.5 mm"):
        validate_files(read_manifest(dataset))


def test_label_values_outside_schema_are_listed(dataset):
    label = np.zeros(SHAPE, np.uint8)
    label[0, 0, 0], label[1, 1, 1], label[2, 2, 2] = 3, 7, 9
    _write(dataset.parent / "c1" / "seg.nii.gz", label)
    manifest = read_manifest(dataset)
    message = r"c1/seg\.nii\.gz: Label map holds values \[7, 9\] that schema 'brats_mets_2025'"
    with pytest.raises(ManifestError, match=message):
        validate_files(manifest)
    validate_files(manifest, check_labels=False)
    with pytest.raises(LabelValueError, match=r"c1/seg\.nii\.gz \(case 'c1'\): Label map holds values \[7, 9\]"):
        load_case(manifest, "c1")


def test_all_problems_are_reported_together(dataset):
    root = dataset.parent
    (root / "c0" / "t1c.nii.gz").unlink()
    _write(root / "c1" / "seg.nii.gz", np.zeros((3, 3, 3), np.uint8))
    _write(root / "c2" / "seg.nii.gz", np.full(SHAPE, 5, np.uint8))
    (root / "c3" / "t2f.nii.gz").write_bytes(b"garbage" * 10)
    with pytest.raises(ManifestError) as info:
        validate_files(read_manifest(dataset))
    message = str(info.value)
    assert message.startswith(f"manifest {dataset}: 4 problems:\n")
    assert f"{root / 'c0' / 't1c.nii.gz'}: file does not exist (case 'c0', t1c)" in message
    assert f"{root / 'c1' / 'seg.nii.gz'} has shape (3, 3, 3)" in message
    assert "values [5]" in message and "(case 'c2', label)" in message
    assert f"Cannot read NIfTI file {root / 'c3' / 't2f.nii.gz'}" in message


def test_generator_is_called_when_files_are_missing(tmp_path, monkeypatch):
    calls = []

    def fake_generator(manifest: Manifest) -> None:
        calls.append(dict(manifest.generator))
        for case in manifest.cases:
            _case_files(manifest.root, case.id)

    monkeypatch.setitem(manifest_module.GENERATORS, "fake", fake_generator)
    entries = [
        {"id": f"c{i}", "images": {m: f"c{i}/{m}.nii.gz" for m in MODALITIES}, "label": f"c{i}/seg.nii.gz"}
        for i in range(2)
    ]
    path = _write_yaml(tmp_path / "gen.yaml", _document(entries, root="cohort", generator={"name": "fake", "n": 2}))

    manifest = load_manifest(path)

    assert calls == [{"name": "fake", "n": 2}]
    assert (tmp_path / "cohort" / "c1" / "seg.nii.gz").is_file()
    load_manifest(path)  # files present now: the generator is not called again
    assert len(calls) == 1
    assert load_case(manifest, "c1").image.shape == (2, *SHAPE)


def test_generator_that_leaves_files_missing_is_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(manifest_module.GENERATORS, "lazy", lambda manifest: None)
    entry = {"id": "c0", "images": {m: f"{m}.nii.gz" for m in MODALITIES}}
    path = _write_yaml(tmp_path / "gen.yaml", _document([entry], generator={"name": "lazy"}))
    message = r"2 problems:\n  - .*t1c\.nii\.gz: generator 'lazy' did not create this file"
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_generator_module_is_imported_on_demand(tmp_path, monkeypatch):
    plugin = tmp_path / "plugins" / "wb_test_generator_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(
        "from workbench.data.manifest import GENERATORS\n"
        "def touch(manifest):\n"
        "    for case in manifest.cases:\n"
        "        for file in case.images.values():\n"
        "            file.write_bytes(b'')\n"
        "GENERATORS['plugin'] = touch\n"
    )
    monkeypatch.syspath_prepend(str(plugin.parent))
    monkeypatch.setattr(manifest_module, "GENERATORS", {})
    monkeypatch.setitem(manifest_module._GENERATOR_MODULES, "plugin", "wb_test_generator_plugin")
    entry = {"id": "c0", "images": {m: f"{m}.nii.gz" for m in MODALITIES}}
    path = _write_yaml(tmp_path / "gen.yaml", _document([entry], generator={"name": "plugin"}))

    load_manifest(path, validate=False)

    assert "plugin" in manifest_module.GENERATORS and (tmp_path / "t1c.nii.gz").is_file()


def test_unknown_generator_is_a_clear_error(tmp_path):
    entry = {"id": "c0", "images": {m: f"{m}.nii.gz" for m in MODALITIES}}
    path = _write_yaml(tmp_path / "gen.yaml", _document([entry], generator={"name": "nonexistent"}))
    message = r"gen\.yaml: field 'generator': unknown generator 'nonexistent'; registered"
    with pytest.raises(ManifestError, match=message):
        load_manifest(path)


def test_load_case_returns_channel_first_image_and_int_label(dataset):
    manifest = load_manifest(dataset)
    case = load_case(manifest, "c0")
    assert case.id == "c0" and case.modalities == MODALITIES
    assert case.image.shape == (2, *SHAPE) and case.image.dtype == np.float32
    np.testing.assert_array_equal(case.image[:, 0, 0, 0], [1.0, 2.0])
    assert np.issubdtype(case.label.dtype, np.integer) and case.label.shape == SHAPE
    assert case.spacing == (1.0, 1.0, 1.0) and case.affine.shape == (4, 4)
    assert load_case(manifest, manifest.case("c3")).label is None
