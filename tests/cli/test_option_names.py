"""One name per concept across the subcommands, old names as deprecated aliases, formats documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from workbench.cli import _parser, main
from workbench.data.cohort import make_cohort

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ROOT / "docs" / "formats.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every leaf subcommand's parser by its command line (``"manifest brats-mets"``)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not children:
            found[prefix.strip()] = parser
        for action in children:
            for name, child in action.choices.items():
                walk(f"{prefix} {name}", child)

    walk("", _parser())
    return found


def _visible_options(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    return {a.dest: tuple(a.option_strings) for a in parser._actions
            if a.option_strings and a.help is not argparse.SUPPRESS}


def test_a_manifest_is_called_manifest_in_every_command_that_reads_one():
    readers = {name for name, parser in _subcommands().items() if "manifest" in _visible_options(parser)}
    assert readers == {"summary", "evaluate", "perturb", "predict", "demo"}
    for name in readers:
        options = _visible_options(_subcommands()[name])
        assert options["manifest"] == ("--manifest",), name
        assert "--ref" not in {o for strings in options.values() for o in strings}, name


def test_every_output_option_has_the_same_two_spellings():
    for name, parser in _subcommands().items():
        options = _visible_options(parser)
        if "out" in options:
            assert options["out"] == ("-o", "--out"), name


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return make_cohort(2, 0, tmp_path_factory.mktemp("cohort"), shape=(24, 24, 24))


def test_the_old_name_still_works_and_says_what_replaces_it(cohort, tmp_path, recwarn):
    with pytest.warns(FutureWarning, match=r"^--ref is deprecated and will be removed in workbench 0\.3; use --manifest$"):
        assert main(["perturb", "--ref", str(cohort), "-o", str(tmp_path / "old")]) == 0
    recwarn.clear()
    assert main(["perturb", "--manifest", str(cohort), "-o", str(tmp_path / "new")]) == 0
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    old = sorted(p.name for p in (tmp_path / "old").iterdir())
    assert old == sorted(p.name for p in (tmp_path / "new").iterdir()) and old


def test_old_and_new_name_together_is_a_usage_error(cohort, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["perturb", "--ref", str(cohort), "--manifest", str(cohort), "-o", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_missing_manifest_names_only_the_current_option(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--pred", "p", "-o", "o"])
    err = capsys.readouterr().err
    assert "--manifest" in err and "--ref" not in err


def _help_texts() -> str:
    texts = []
    for parser in _subcommands().values():
        texts.append(parser.description or "")
        texts.extend(a.help for a in parser._actions if isinstance(a.help, str) and a.help is not argparse.SUPPRESS)
    return " ".join(texts)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_help_points_to_formats_that_the_formats_document_has():
    links = set(re.findall(r"docs/formats\.md#([\w-]+)", _help_texts()))
    assert {"dataset-manifest", "training-config", "sweep-file", "prediction-folder"} <= links
    missing = links - _anchors(FORMATS.read_text(encoding="utf-8"))
    assert not missing, f"help texts link to sections docs/formats.md lacks: {sorted(missing)}"


def test_help_never_sends_the_user_to_python_source():
    assert not re.search(r"see workbench\.|workbench/\w+/\w+\.py", _help_texts())
