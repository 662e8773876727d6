"""Dataset manifests: the files that make up a dataset, checked before any training starts.

A manifest is a YAML file (``data_manifests/*.yaml``)::

    name: phantoms_default
    schema: brats_mets_2025            # a workbench.labels schema name
    modalities: [t1n, t1c, t2w, t2f]   # channel order of the image
    root: "{cache}/phantoms_default"   # optional
    generator:                         # optional
      name: phantoms
      n: 24
      seed: 0
      shape: [96, 96, 96]
    cases:
      - id: phantom-000
        images: {t1n: phantom-000/phantom-000-t1n.nii.gz, t1c: ..., t2w: ..., t2f: ...}
        label: phantom-000/phantom-000-seg.nii.gz
        split: train

Top-level keys (no others are allowed):

``name`` : str, required
    The dataset's name.
``schema`` : str, required
    A schema registered in :data:`workbench.labels.SCHEMAS`; label values are checked against it.
``modalities`` : list of str, required
    Distinct modality names; every case gives exactly one image file for each.
``root`` : str, optional
    Folder that relative file paths resolve against. A relative root resolves against the
    manifest file's folder (the default root); ``{cache}`` expands to :func:`cache_dir` and a
    leading ``~`` to the home folder.
``generator`` : mapping, optional
    How to (re)create missing files: ``name`` picks a function registered in
    :data:`GENERATORS`, the other keys are its options (read from ``manifest.generator``).
    :func:`load_manifest` calls it when files are missing.
``cases`` : list of mappings, required, non-empty
    ``id`` (str, required, unique; quote ids YAML would read as numbers; it names the case's
    output files, so no path separator, leading dot, surrounding space or empty id), ``images`` (mapping
    modality -> file, required), ``label`` (file, optional: test cases may lack labels),
    ``split`` (str, or an int fold id read as str; optional).

A key given twice in one mapping is an error (YAML would otherwise keep the last value).
Reading a manifest (:func:`read_manifest`) checks its structure only; :func:`validate_files`
checks every file it names, from headers (plus label values); :func:`load_manifest` does both
and runs the generator first when needed. :func:`load_case` loads one case's arrays.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "toy.yaml").write_text('''
... name: toy
... schema: binary
... modalities: [t1]
... cases:
...   - {id: a, images: {t1: a-t1.nii.gz}, label: a-seg.nii.gz, split: train}
...   - {id: b, images: {t1: b-t1.nii.gz}, split: test}
... ''')
>>> manifest = read_manifest(folder / "toy.yaml")
>>> [case.id for case in manifest.split("test")], manifest.case("a").images["t1"].name
(['b'], 'a-t1.nii.gz')
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from workbench._io import atomic_write
from workbench._paths import check_case_id
from workbench._yaml import load_yaml
from workbench.data.nifti import NiftiHeader, grid_mismatch, load_image, load_label, read_header
from workbench.labels import SCHEMAS, LabelSchema, LabelValueError, get_schema

__all__ = [
    "GENERATORS",
    "CaseData",
    "CaseEntry",
    "Manifest",
    "ManifestError",
    "assign_splits",
    "cache_dir",
    "load_case",
    "load_manifest",
    "read_manifest",
    "validate_files",
    "write_manifest",
]

GENERATORS: dict[str, Callable[[Manifest], None]] = {}
"""Generator name -> function that writes every file of a manifest (it may skip existing ones).

Modules register into it at import time, e.g. ``GENERATORS["phantoms"] = write_cohort``."""

# Modules that register a generator when imported; load_manifest imports them on demand, so a
# manifest naming one works without the caller importing the module first.
_GENERATOR_MODULES = {"phantoms": "workbench.data.cohort"}

_TOP_KEYS = ("name", "schema", "modalities", "root", "generator", "cases")
_REQUIRED_TOP_KEYS = ("name", "schema", "modalities", "cases")
_CASE_KEYS = ("id", "images", "label", "split")
_PROGRESS_MIN_CASES = 20


class ManifestError(ValueError):
    """A manifest, or the files it names, has problems; the message lists every one."""


@dataclass(frozen=True)
class CaseEntry:
    """One case of a manifest: where its files are.

    Attributes
    ----------
    id : str
    images : Mapping[str, Path]
        Modality -> image file (absolute once read from a manifest); read-only.
    label : Path or None
        Label map file; None for cases without a reference (validation / test sets).
    split : str or None
        ``"train"``, ``"val"``, ``"test"``, a fold id, or None.
    """

    id: str
    images: Mapping[str, Path]
    label: Path | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", MappingProxyType({m: Path(p) for m, p in self.images.items()}))
        if self.label is not None:
            object.__setattr__(self, "label", Path(self.label))


@dataclass(frozen=True)
class Manifest:
    """A dataset: its label schema, modalities and cases.

    Attributes
    ----------
    name : str
    schema : LabelSchema
    modalities : tuple of str
        Channel order of the images.
    cases : tuple of CaseEntry
        Ids are unique; every case has an image for exactly the declared modalities.
    root : Path
        Folder that the manifest's relative paths resolved against.
    generator : Mapping or None
        ``{"name": ..., **options}`` of the function that creates missing files.
    source : Path or None
        The manifest file it was read from.

    Raises
    ------
    ManifestError
        On construction, if ids repeat or cannot name a file (:func:`workbench._paths.check_case_id`),
        or a case's modalities differ from ``modalities``.
    """

    name: str
    schema: LabelSchema
    modalities: tuple[str, ...]
    cases: tuple[CaseEntry, ...]
    root: Path
    generator: Mapping[str, Any] | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "root", Path(self.root))
        if self.generator is not None:
            object.__setattr__(self, "generator", MappingProxyType(dict(self.generator)))
        problems = []
        if len(set(self.modalities)) != len(self.modalities) or not self.modalities:
            problems.append(f"field 'modalities' must list distinct names, got {list(self.modalities)}")
        seen: set[str] = set()
        for case in self.cases:
            problems.extend(_id_problems(case.id, f"case {case.id!r}"))
            if case.id in seen:
                problems.append(f"case {case.id!r}, field 'id': duplicate id")
            seen.add(case.id)
            missing = [m for m in self.modalities if m not in case.images]
            extra = [m for m in case.images if m not in self.modalities]
            if missing:
                problems.append(f"case {case.id!r}, field 'images': lacks declared modalities {missing}")
            if extra:
                problems.append(
                    f"case {case.id!r}, field 'images': has undeclared modalities {extra} "
                    f"(declared: {list(self.modalities)})"
                )
        if problems:
            raise _error(self, problems)

    @cached_property
    def _by_id(self) -> dict[str, CaseEntry]:
        return {case.id: case for case in self.cases}

    def case(self, id: str) -> CaseEntry:
        """The case with this id.

        Raises
        ------
        KeyError
            If there is none; the message lists the closest ids.
        """
        try:
            return self._by_id[id]
        except KeyError:
            close = difflib.get_close_matches(str(id), self._by_id, n=5)
            hint = f"closest ids: {close}" if close else f"ids look like {list(self._by_id)[:3]}"
            raise KeyError(f"Manifest {self.name!r} has no case {id!r}; {hint}.") from None

    def split(self, name: str) -> tuple[CaseEntry, ...]:
        """The cases whose ``split`` is ``name``, in manifest order.

        Raises
        ------
        KeyError
            If no case is in that split; the message lists the splits there are.
        """
        cases = tuple(case for case in self.cases if case.split == name)
        if not cases:
            splits = sorted({case.split for case in self.cases if case.split is not None})
            raise KeyError(f"Manifest {self.name!r} has no case in split {name!r}; its splits: {splits}.")
        return cases


@dataclass(frozen=True, eq=False)
class CaseData:
    """The arrays of one case, as :func:`load_case` returns them.

    Attributes
    ----------
    id : str
    image : ndarray of float32, shape (C, *S)
        Channels in the order of ``modalities``.
    label : ndarray of int, shape (*S), or None
        Label map, values checked against the manifest's schema; None if the case has none.
    affine : ndarray of float64, shape (4, 4)
    spacing : tuple of float
        Voxel size in mm per spatial axis.
    modalities : tuple of str
    """

    id: str
    image: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    spacing: tuple[float, ...]
    modalities: tuple[str, ...]


def assign_splits(
    manifest: Manifest,
    fractions: Mapping[str, float],
    *,
    seed: int = 0,
    group: Callable[[str], str] | None = None,
) -> Manifest:
    """The manifest with its labelled cases split at random into ``fractions`` (e.g. train / val / test).

    Parameters
    ----------
    manifest : Manifest
    fractions : Mapping[str, float]
        Split name -> fraction of the labelled cases' groups; positive, summing to 1. Each split gets
        ``round(fraction * groups)`` groups (the largest-remainder rule, so the counts add up) and at
        least one when there are enough groups.
    seed : int
        Of the shuffle: the same manifest, fractions and seed give the same splits.
    group : callable, optional
        Case id -> group id; the cases of one group (one patient's time points) land in one split, so
        no patient is both trained on and held out. Default: every case its own group.

    Returns
    -------
    Manifest
        Unlabelled cases keep their split.

    Raises
    ------
    ValueError
        If a fraction is not positive, they do not sum to 1, or there are fewer labelled groups than splits.
    """
    if not fractions or any(not np.isfinite(f) or f <= 0 for f in fractions.values()):
        raise ValueError(f"Expected positive split fractions, but got {dict(fractions)}.")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"Expected split fractions that sum to 1, but got {dict(fractions)} (sum {sum(fractions.values()):g}).")
    group = group or (lambda case_id: case_id)
    groups = sorted({group(case.id) for case in manifest.cases if case.label is not None})
    if len(groups) < len(fractions):
        raise ValueError(f"Manifest {manifest.name!r} has {len(groups)} labelled case groups, fewer than the "
                         f"{len(fractions)} splits {list(fractions)}.")
    shares = np.array(list(fractions.values())) * len(groups)
    counts = np.maximum(np.floor(shares).astype(int), 1)
    for k in np.argsort(-(shares - np.floor(shares)), kind="stable")[: max(len(groups) - counts.sum(), 0)]:
        counts[k] += 1
    while counts.sum() > len(groups):  # the minimum of one per split took groups from the largest
        counts[np.argmax(counts)] -= 1
    order = np.random.default_rng(seed).permutation(len(groups))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    split_of = {groups[i]: name for name, lo, hi in zip(fractions, bounds[:-1], bounds[1:], strict=True) for i in order[lo:hi]}
    cases = [replace(case, split=split_of[group(case.id)]) if case.label is not None else case for case in manifest.cases]
    return replace(manifest, cases=tuple(cases))


def cache_dir() -> Path:
    """Workbench's cache folder: ``$WORKBENCH_CACHE`` if set, else ``$XDG_CACHE_HOME/workbench``
    (``~/.cache/workbench``). Returned as an absolute path; not created."""
    configured = os.environ.get("WORKBENCH_CACHE")
    if configured:
        return Path(os.path.abspath(Path(configured).expanduser()))
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(os.path.abspath(Path(base).expanduser() / "workbench"))


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Parse a manifest file and check its structure (no data file is touched).

    Parameters
    ----------
    path : str or PathLike
        A YAML manifest, format in the module docstring.

    Returns
    -------
    manifest : Manifest
        With absolute file paths and ``source`` set to ``path``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ManifestError
        Listing every structural problem: invalid YAML or a key given twice, unknown or missing
        keys, wrong types, an unknown schema or placeholder, duplicate ids or ids that cannot name
        a file, a case lacking a declared modality or having an undeclared one. Each names the manifest file, the case id and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest file {path} does not exist.")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), path)
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {path}: expected a mapping with keys {list(_TOP_KEYS)}, got {raw!r}.")
    problems: list[str] = []
    unknown = [k for k in raw if k not in _TOP_KEYS]
    if unknown:
        problems.append(f"unknown top-level keys {unknown}; allowed: {list(_TOP_KEYS)}")
    for key in _REQUIRED_TOP_KEYS:
        if raw.get(key) is None:
            problems.append(f"missing required field {key!r}")
    name = _field(raw, "name", str, "a string", "", problems)
    schema_name = _field(raw, "schema", str, "a schema name", "", problems)
    schema = None
    if schema_name is not None:
        try:
            schema = get_schema(schema_name)
        except ValueError as exc:
            problems.append(f"field 'schema': {exc}")
    modalities = _field(raw, "modalities", list, "a list of modality names", "", problems)
    if modalities is not None and (not modalities or not all(isinstance(m, str) for m in modalities)):
        problems.append(f"field 'modalities' must be a non-empty list of strings, got {modalities!r}")
        modalities = None
    root_spec = _field(raw, "root", str, "a folder path", "", problems)
    root = _resolve_root(root_spec, Path(os.path.abspath(path)).parent, problems)
    generator = _field(raw, "generator", dict, "a mapping with a 'name'", "", problems)
    if generator is not None:
        _field(generator, "name", str, "a registered generator name", "generator", problems, required=True)
    raw_cases = _field(raw, "cases", list, "a non-empty list of cases", "", problems)
    if raw_cases is not None and not raw_cases:
        problems.append("field 'cases' must be a non-empty list of cases, got []")
    cases = [_parse_case(item, i, root, problems) for i, item in enumerate(raw_cases or ())]
    if problems:
        raise _error(path, problems)
    return Manifest(
        name=name,
        schema=schema,
        modalities=tuple(modalities),
        cases=tuple(cases),
        root=root,
        generator=generator,
        source=path,
    )


def validate_files(manifest: Manifest, *, check_labels: bool = True) -> None:
    """Check every file of a manifest up front and report all problems at once.

    Headers only are read (nibabel), except label maps when ``check_labels`` is set.

    Parameters
    ----------
    manifest : Manifest
    check_labels : bool, default True
        Also read every label map and check its values against ``manifest.schema``.

    Raises
    ------
    ManifestError
        Listing each problem with its file: a missing or unreadable file, a 4D file, a
        modality or label whose shape or affine differs from the case's first modality (both
        files named), label values outside the schema (the offending values listed).

    Notes
    -----
    A tqdm progress bar runs over the cases when there are at least 20 and stderr is a terminal.
    """
    problems: list[str] = []
    disable = True if len(manifest.cases) < _PROGRESS_MIN_CASES else None
    for case in tqdm(manifest.cases, desc=f"checking {manifest.name}", unit="case", disable=disable):
        problems.extend(_case_problems(manifest, case, check_labels))
    if problems:
        raise _error(manifest, problems)


def load_manifest(path: str | os.PathLike[str], *, validate: bool = True) -> Manifest:
    """Read a manifest, create its missing files with its generator, then check the files.

    Parameters
    ----------
    path : str or PathLike
    validate : bool, default True
        Run :func:`validate_files` (headers and label values). Without it, only the existence of
        every file is checked.

    Returns
    -------
    manifest : Manifest

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ManifestError
        From :func:`read_manifest` or :func:`validate_files`; if files are missing and the
        manifest declares no generator (every missing file listed); if the generator is not
        registered; or if it left files missing.
    """
    manifest = read_manifest(path)
    missing = _missing_files(manifest)
    reason = "file does not exist (and the manifest declares no generator)"
    if missing and manifest.generator is not None:
        _generator(manifest)(manifest)
        missing = _missing_files(manifest)
        reason = f"generator {manifest.generator['name']!r} did not create this file"
    if missing:
        raise _error(manifest, [f"{p}: {reason}" for p in missing])
    if validate:
        validate_files(manifest)
    return manifest


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write a manifest as YAML (atomically) so that :func:`read_manifest` reads it back equal.

    Parameters
    ----------
    manifest : Manifest
    path : str or PathLike
        Destination ``.yaml`` file; its folder must exist.

    Notes
    -----
    Relative paths of ``manifest`` (root, case files) are taken relative to the current folder.
    ``root`` is written as ``{cache}/...`` when it lies inside :func:`cache_dir` (and the file
    does not), else relative to the file's folder when it lies inside it (the folder
    :func:`read_manifest` resolves it against), else absolute. Case files are written relative
    to ``root`` when they lie inside it.

    Raises
    ------
    ValueError
        If ``manifest.schema`` is not the schema registered under its name (a manifest can only
        name registered schemas).
    """
    path = Path(path)
    if SCHEMAS.get(manifest.schema.name) != manifest.schema:
        raise ValueError(
            f"Cannot write manifest {manifest.name!r} to {path}: its schema {manifest.schema.name!r} is not "
            f"registered in workbench.labels.SCHEMAS (known: {sorted(SCHEMAS)})."
        )
    root = Path(os.path.abspath(manifest.root))
    document: dict[str, Any] = {
        "name": manifest.name,
        "schema": manifest.schema.name,
        "modalities": list(manifest.modalities),
        "root": _root_spec(root, Path(os.path.abspath(path)).parent),
    }
    if manifest.generator is not None:
        document["generator"] = _plain(manifest.generator)
    document["cases"] = [_case_document(case, root) for case in manifest.cases]
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_case(manifest: Manifest, case: str | CaseEntry) -> CaseData:
    """Load the image and label map of one case.

    Parameters
    ----------
    manifest : Manifest
    case : str or CaseEntry
        A case id of ``manifest``, or an entry with an image for every modality.

    Returns
    -------
    data : CaseData
        ``image`` (C, *S) float32 in the manifest's modality order, ``label`` (*S) int or None.

    Raises
    ------
    KeyError
        If ``case`` is an id the manifest lacks.
    ValueError
        If an entry lacks a modality, files are unreadable, or the label's grid differs from
        the images' (both files named).
    LabelValueError
        If the label map holds values outside the manifest's schema (file and values named).
    """
    entry = manifest.case(case) if isinstance(case, str) else case
    missing = [m for m in manifest.modalities if m not in entry.images]
    if missing:
        raise ValueError(
            f"Case {entry.id!r} has no image for modalities {missing} of manifest {manifest.name!r}."
        )
    paths = [entry.images[m] for m in manifest.modalities]
    image, affine, spacing = load_image(paths)
    label = None
    if entry.label is not None:
        label, label_affine, label_spacing = load_label(entry.label)
        problem = grid_mismatch(
            NiftiHeader(paths[0], image.shape[1:], affine, spacing),
            NiftiHeader(entry.label, label.shape, label_affine, label_spacing),
        )
        if problem:
            raise ValueError(f"Case {entry.id!r}: label and images do not share one voxel grid: {problem}.")
        try:
            manifest.schema.validate(label)
        except LabelValueError as exc:
            raise LabelValueError(f"{entry.label} (case {entry.id!r}): {exc}") from exc
    return CaseData(
        id=entry.id, image=image, label=label, affine=affine, spacing=spacing, modalities=manifest.modalities
    )


def _field(
    mapping: dict[str, Any],
    key: str,
    types: type | tuple[type, ...],
    expected: str,
    where: str,
    problems: list[str],
    *,
    required: bool = False,
) -> Any:
    """``mapping[key]`` if it has the right type, else None (a problem is recorded)."""
    value = mapping.get(key)
    label = f"{where}, field {key!r}" if where else f"field {key!r}"
    if value is None:
        if required:
            problems.append(f"{label}: missing")
        return None
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        problems.append(f"{label} must be {expected}, got the boolean {value!r}")
        return None
    if not isinstance(value, types):
        problems.append(f"{label} must be {expected}, got {type(value).__name__} {value!r}")
        return None
    return value


def _parse_case(item: Any, index: int, root: Path, problems: list[str]) -> CaseEntry | None:
    if not isinstance(item, dict):
        problems.append(f"case #{index}: must be a mapping with keys {list(_CASE_KEYS)}, got {item!r}")
        return None
    n_problems = len(problems)
    expected_id = "a string (quote ids that look like numbers)"
    case_id = _field(item, "id", str, expected_id, f"case #{index}", problems, required=True)
    where = f"case {case_id!r}" if case_id is not None else f"case #{index}"
    if case_id is not None:
        problems.extend(_id_problems(case_id, f"case #{index}"))
    unknown = [k for k in item if k not in _CASE_KEYS]
    if unknown:
        problems.append(f"{where}: unknown fields {unknown}; allowed: {list(_CASE_KEYS)}")
    images = _field(item, "images", dict, "a mapping modality -> file", where, problems, required=True)
    if images is not None and not all(isinstance(m, str) and isinstance(p, str) for m, p in images.items()):
        problems.append(f"{where}, field 'images' must map modality names to file paths, got {images!r}")
    label = _field(item, "label", str, "a file path", where, problems)
    split = _field(item, "split", (str, int), "a split name or fold id", where, problems)
    if len(problems) > n_problems:
        return None
    return CaseEntry(
        id=case_id,
        images={m: _resolve(root, p) for m, p in images.items()},
        label=None if label is None else _resolve(root, label),
        split=None if split is None else str(split),
    )


def _id_problems(case_id: str, where: str) -> list[str]:
    """``[]`` if ``case_id`` can name a file, else the reason, as one problem of a listing."""
    try:
        check_case_id(case_id)
    except ValueError as exc:
        return [f"{where}, field 'id': {str(exc).rstrip('.')}"]
    return []


def _resolve_root(spec: str | None, folder: Path, problems: list[str]) -> Path:
    if spec is None:
        return folder
    unknown = sorted(set(re.findall(r"\{[^}]*\}", spec)) - {"{cache}"})
    if unknown:
        problems.append(
            f"field 'root': unknown placeholders {unknown} in {spec!r}; only '{{cache}}' is expanded"
        )
    expanded = Path(spec.replace("{cache}", str(cache_dir()))).expanduser()
    return Path(os.path.abspath(folder / expanded))


def _resolve(root: Path, file: str) -> Path:
    return Path(os.path.abspath(root / Path(file).expanduser()))


def _root_spec(root: Path, folder: Path) -> str:
    """Relative to the manifest's folder, else ``{cache}/...``, else absolute; data in the cache
    is written as ``{cache}/...`` unless the manifest itself lives in the cache."""
    cache = cache_dir()
    in_cache = root.is_relative_to(cache)
    if root.is_relative_to(folder) and (not in_cache or folder.is_relative_to(cache)):
        return root.relative_to(folder).as_posix()
    if in_cache:
        return "/".join(("{cache}", *root.relative_to(cache).parts))
    return root.as_posix()


def _case_document(case: CaseEntry, root: Path) -> dict[str, Any]:
    """A case as written to a manifest; ``root`` is absolute, relative case files are taken from the current folder."""

    def relative(file: Path) -> str:
        file = Path(os.path.abspath(file))
        return file.relative_to(root).as_posix() if file.is_relative_to(root) else file.as_posix()

    document: dict[str, Any] = {"id": case.id, "images": {m: relative(p) for m, p in case.images.items()}}
    if case.label is not None:
        document["label"] = relative(case.label)
    if case.split is not None:
        document["split"] = case.split
    return document


def _plain(value: Any) -> Any:
    """Mappings -> dicts and sequences -> lists, recursively, for ``yaml.safe_dump``."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _missing_files(manifest: Manifest) -> list[Path]:
    files = [p for case in manifest.cases for p in (*case.images.values(), case.label) if p is not None]
    return [p for p in files if not p.is_file()]


def _generator(manifest: Manifest) -> Callable[[Manifest], None]:
    name = manifest.generator["name"]
    if name not in GENERATORS and name in _GENERATOR_MODULES:
        importlib.import_module(_GENERATOR_MODULES[name])
    if name not in GENERATORS:
        raise _error(
            manifest,
            [
                f"field 'generator': unknown generator {name!r}; registered: {sorted(GENERATORS)}. A generator "
                "registers itself in workbench.data.manifest.GENERATORS when its module is imported"
            ],
        )
    return GENERATORS[name]


def _case_problems(manifest: Manifest, case: CaseEntry, check_labels: bool) -> list[str]:
    problems: list[str] = []
    files = [(m, case.images[m]) for m in manifest.modalities]
    if case.label is not None:
        files.append(("label", case.label))
    headers: list[tuple[str, NiftiHeader]] = []
    for role, file in files:
        where = f"(case {case.id!r}, {role})"
        if not file.is_file():
            problems.append(f"{file}: file does not exist {where}")
            continue
        try:
            headers.append((role, read_header(file)))
        except ValueError as exc:
            problems.append(f"{exc} {where}")
    for role, header in headers[1:]:
        problem = grid_mismatch(headers[0][1], header)
        if problem:
            problems.append(f"{problem} (case {case.id!r}, {role} vs {headers[0][0]})")
    if check_labels and headers and headers[-1][0] == "label":
        label_file = headers[-1][1].path
        try:
            label = load_label(label_file)[0]
        except ValueError as exc:  # the message names the file
            problems.append(f"{exc} (case {case.id!r}, label)")
        else:
            try:
                manifest.schema.validate(label)
            except LabelValueError as exc:
                problems.append(f"{label_file}: {exc} (case {case.id!r}, label)")
    return problems


def _error(where: Manifest | Path, problems: list[str]) -> ManifestError:
    if isinstance(where, Manifest):
        where = where.source if where.source is not None else where.name
    head = f"manifest {where}" if isinstance(where, Path) else f"manifest {where!r}"
    if len(problems) == 1:
        return ManifestError(f"{head}: {problems[0]}.")
    listing = "\n".join(f"  - {p}" for p in problems)
    return ManifestError(f"{head}: {len(problems)} problems:\n{listing}")
