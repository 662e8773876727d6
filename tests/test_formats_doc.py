"""``docs/formats.md`` stays true to the code: every field, key, column and state it must name,
its defaults and examples, and every ``docs/formats.md#anchor`` that help texts link to.

The tables come from the code itself: the readers' own "allowed keys" messages, the dataclasses,
and the files that ``evaluate``, ``evaluate --preset``, ``instances`` and ``export-nnunet``
write for a tiny phantom cohort (two 24³ cases) in a temporary folder.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
import shutil
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.cli import main
from workbench.data.cohort import cohort_manifest, make_cohort
from workbench.data.manifest import ManifestError, read_manifest
from workbench.data.perturb import write_perturbed_predictions
from workbench.experiments.sweep import check_parameters, load_sweep, run_id
from workbench.integrations.nnunet.export import export_dataset
from workbench.labels import SCHEMAS
from workbench.metrics import validation_scores
from workbench.metrics.detection_curves import ROW_COLUMNS
from workbench.runs.evaluate import run_evaluation
from workbench.runs.record import RunRecord, Status
from workbench.runs.scoring import run_scoring
from workbench.training.checkpoint import CHECKPOINT_KEYS
from workbench.training.config import TrainConfig, config_to_dict, validate
from workbench.training.loop import METRIC_COLUMNS
from workbench.training.probabilities import save_probabilities

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "formats.md"
NOTEBOOK = REPO / "notebooks" / "02_train_evaluate.ipynb"
_LINK = re.compile(r"(?:formats\.md|\{FORMATS_DOC\})#([A-Za-z0-9_-]+)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections() -> dict[str, str]:
    """Anchor -> text of its section (up to the next heading of the same or a higher level)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    headings, fenced = [], False
    for i, line in enumerate(lines):
        fenced ^= line.startswith("```")
        if not fenced and (match := re.match(r"(#+) (.+)", line)):
            headings.append((i, len(match.group(1)), match.group(2)))
    sections = {}
    for n, (start, level, title) in enumerate(headings):
        end = next((i for i, lvl, _ in headings[n + 1:] if lvl <= level), len(lines))
        sections[_slug(title)] = "\n".join(lines[start:end])
    return sections


SECTIONS = _sections()


def _section(anchor: str) -> str:
    assert anchor in SECTIONS, f"docs/formats.md has no section #{anchor}; it has {sorted(SECTIONS)}"
    return SECTIONS[anchor]


def _undocumented(names, anchor: str) -> list[str]:
    """The names that ``#anchor`` does not show as inline code (`` `name` ``)."""
    text = _section(anchor)
    return sorted({str(name) for name in names if f"`{name}`" not in text})


def _first_yaml_block(anchor: str) -> str:
    match = re.search(r"```yaml\n(.*?)```", _section(anchor), re.S)
    assert match, f"section #{anchor} has no ```yaml example"
    return match.group(1)


def _allowed(message: str, marker: str) -> list[str]:
    """The Python list that follows ``marker`` in an error message."""
    match = re.search(re.escape(marker) + r"\s*(\[[^\]]*\])", message)
    assert match, f"no {marker!r} list in: {message}"
    return ast.literal_eval(match.group(1))


# --------------------------------------------------------------------------- links


def test_every_link_to_the_formats_page_has_a_section():
    sources = [*sorted((REPO / "workbench").rglob("*.py")), REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        anchors = _LINK.findall(text) + (re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", text) if path == DOC else [])
        broken += [f"{path.relative_to(REPO)}: #{a}" for a in anchors if a not in SECTIONS]
    assert not broken, f"links to missing sections of docs/formats.md: {broken}"


# --------------------------------------------------------------------------- inputs


def test_manifest_section_names_every_key_the_reader_allows(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nschema: binary\nmodalities: [t1]\nbogus: 1\ncases:\n  - {id: a, images: {t1: a.nii.gz}, extra: 1}\n")
    with pytest.raises(ManifestError) as error:
        read_manifest(bad)
    top = _allowed(str(error.value), "unknown top-level keys ['bogus']; allowed:")
    case = _allowed(str(error.value), "unknown fields ['extra']; allowed:")
    assert {"name", "cases"} <= set(top) and {"id", "images"} <= set(case)
    assert _undocumented(top + case, "dataset-manifest") == []
    generator = cohort_manifest(2, 0, tmp_path).generator
    assert _undocumented(generator, "dataset-manifest") == []


def test_manifest_example_reads_and_schemas_are_listed(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(_first_yaml_block("dataset-manifest"))
    manifest = read_manifest(path)
    assert manifest.case("a").images["t1"] == tmp_path / "a" / "a-t1.nii.gz"  # relative to the manifest's folder
    table = _section("label-schemas")
    for schema in SCHEMAS.values():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{schema.name}` |")), None)
        assert row is not None, f"schema {schema.name} is not in #label-schemas"
        assert all(f"{value} {name}" in row for value, name in schema.labels.items()), row
        assert all(f"{region} {{{', '.join(map(str, values))}}}" in row for region, values in schema.regions.items()), row


def _config_rows() -> dict[str, str]:
    """Field -> its row of the training-config table."""
    rows = {}
    for line in _section("training-config").splitlines():
        if match := re.match(r"\| `(\w+)` \|", line):
            rows[match.group(1)] = line
    return rows


def test_training_config_section_lists_every_field_with_its_default():
    rows = _config_rows()
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    assert sorted(rows) == sorted(fields)
    defaults = config_to_dict(TrainConfig())
    for name in fields:
        cell = rows[name].split("|")[3]
        shown = yaml.safe_load(re.search(r"`([^`]*)`", cell).group(1))
        actual = defaults[name]
        if isinstance(actual, float):
            assert math.isclose(shown, actual, rel_tol=1e-3), f"{name}: doc {shown!r}, code {actual!r}"
        else:
            assert shown == actual, f"{name}: doc {shown!r}, code {actual!r}"


def test_training_config_example_is_a_valid_config():
    config = validate(yaml.safe_load(_first_yaml_block("training-config")))
    assert config.loss == "blob" and config.loss_options == {"preset": "alpha2_beta1"}


def test_sweep_section_names_every_key_and_its_example_runs_the_notebook(tmp_path):
    sweeps = tmp_path / "configs" / "sweeps"
    sweeps.mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "notebooks" / NOTEBOOK.name)
    bad = sweeps / "bad.yaml"
    bad.write_text("name: x\nbogus: 1\n")
    with pytest.raises(ValueError) as error:
        load_sweep(bad)
    assert _undocumented(_allowed(str(error.value), "known fields:"), "sweep-file") == []
    example = sweeps / "example.yaml"
    example.write_text(_first_yaml_block("sweep-file"))
    spec = load_sweep(example)
    assert spec.out == tmp_path / "runs"  # relative to the sweep file's folder
    check_parameters(spec)  # every grid and fixed key is a parameter of the real notebook
    import papermill

    assert _undocumented(papermill.inspect_notebook(str(NOTEBOOK)), "sweep-file") == []


# --------------------------------------------------------------------------- run folders


def test_training_run_folder_section_names_columns_keys_and_metrics(tmp_path):
    assert _undocumented(METRIC_COLUMNS, "run-folder") == []
    assert _undocumented(CHECKPOINT_KEYS, "checkpoint") == []
    ref = np.zeros((6, 6, 6), dtype=np.uint8)
    ref[1:3, 1:3, 1:3] = 3
    assert _undocumented(set(validation_scores(ref, ref)["metric"]), "run-folder") == []
    path = tmp_path / "c.probabilities.npz"
    save_probabilities(path, np.full((2, 4, 4, 4), 0.5, dtype=np.float32), ("WT", "TC"))
    with np.load(path) as data:
        keys = {re.sub(r"_\d+$", "_<k>", key) for key in data.files}
    assert _undocumented(keys, "probabilities-file") == []


def test_run_record_section_names_every_state_and_common_field(tmp_path):
    assert _undocumented(typing.get_args(Status), "run-record") == []
    with RunRecord(tmp_path / "ok", parameters={}) as record:
        record.finish(outputs=[])
    with pytest.raises(KeyboardInterrupt), RunRecord(tmp_path / "stopped", parameters={}):
        raise KeyboardInterrupt
    fields = set()
    for folder in ("ok", "stopped"):
        fields |= set(json.loads((tmp_path / folder / "run.json").read_text()))
    assert _undocumented(fields, "run-record") == []


def test_sweep_folder_sections_name_run_ids_and_detection_columns():
    for point in ({"loss": "blob", "alpha": 1.0, "beta": 1.0, "seed": 0}, {"lr": 0.01, "patch_size": [64, 64, 64]}):
        assert f"`{run_id(point)}`" in _section("sweep-folder")
    assert _undocumented([*ROW_COLUMNS, "region"], "sweep-run-folder") == []


# --------------------------------------------------------------------------- outputs of a tiny cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A two-case 24³ phantom cohort and perturbed predictions of it."""
    folder = tmp_path_factory.mktemp("formats")
    manifest = make_cohort(2, 0, folder / "cohort", shape=(24, 24, 24))
    predictions = write_perturbed_predictions(manifest, folder / "pred", seed=0)
    return folder, manifest, predictions


def _columns(folder: Path, name: str) -> list[str]:
    columns = list(pd.read_parquet(folder / f"{name}.parquet").columns)
    assert list(pd.read_csv(folder / f"{name}.csv", nrows=0).columns) == columns
    return columns


def test_evaluation_section_names_every_column_and_value(cohort):
    folder, manifest, predictions = cohort
    out = folder / "eval"
    result = run_evaluation(predictions, manifest, out, progress=False)
    for name in ("per_case", "lesions", "summary"):
        assert _undocumented(_columns(out, name), "evaluate-outputs") == [], name
    per_case, lesions = result.per_case, result.lesions
    values = {*per_case["metric"], *per_case["stratum"], "mean", *lesions["status"]}
    assert _undocumented(values, "evaluate-outputs") == []
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    names = {*record, *record["parameters"], *record["timings"]}
    assert _undocumented(names, "run-record") == []


def test_preset_section_names_every_column(cohort):
    folder, manifest, predictions = cohort
    out = folder / "preset"
    run_scoring(predictions, manifest, out, preset="brats_mets_2025", progress=False)
    regions = ("et", "rc", "tc", "wt")
    metrics = {column.rsplit("_", 1)[0] for column in _columns(out, "scores") if column.endswith(regions)}
    assert "lesionwise_dsc_mean" in metrics
    assert _undocumented(metrics, "preset-outputs") == []
    tables = {*_columns(out, "scores")[:1], *_columns(out, "summary"), *_columns(out, "lesions")}
    assert _undocumented(tables, "preset-outputs") == []
    board = pd.read_csv(out / "leaderboard.csv")
    assert _undocumented(board["subject_id"].iloc[-3:], "preset-outputs") == []
    record = json.loads((out / "run.json").read_text())
    assert _undocumented(record["parameters"], "run-record") == []
    assert _undocumented(record["outputs"], "preset-outputs") == []


def test_instances_section_names_the_files_and_the_printed_columns(cohort, tmp_path, capsys):
    _, manifest, _ = cohort
    label = read_manifest(manifest).cases[0].label
    assert main(["instances", str(label), "--out", str(tmp_path)]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    files = {"<channel>-" + path.name.split("-", 1)[1] for path in tmp_path.iterdir()}
    assert files == {"<channel>-components.nii.gz", "<channel>-cells.nii.gz"}
    assert _undocumented(header, "instance-maps") == []
    assert all(f"OUT/{name}" in _section("instance-maps") for name in files)


def test_nnunet_section_names_the_dataset_json_fields(cohort, tmp_path):
    _, manifest, _ = cohort
    folder = export_dataset(read_manifest(manifest), tmp_path, 901)
    dataset = json.loads((folder / "dataset.json").read_text())
    assert _undocumented({*dataset, *dataset["workbench"]}, "nnu-net-raw-dataset") == []
    assert f"Dataset{{ID:03d}}_{{NAME}}" in _section("nnu-net-raw-dataset") and folder.name == "Dataset901_phantoms"


def test_phantom_cohort_section_matches_the_files_written(cohort):
    folder, manifest, _ = cohort
    written = sorted(p.relative_to(folder / "cohort").as_posix() for p in (folder / "cohort").rglob("*") if p.is_file())
    text = _section("phantom-cohort")
    assert "manifest.yaml" in written and "OUT/manifest.yaml" in text
    for path in written:
        name = Path(path).name.replace("phantom-001", "phantom-000")
        assert name in text, f"{path} is not shown in #phantom-cohort"
