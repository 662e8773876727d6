"""The install paths stay in step: pyproject.toml, environment.yml, README and .ci/run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _requirement(spec: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+(?:\[[A-Za-z0-9_,\-]+\])?)\s*(.*?)\s*", spec)
    assert match, spec
    return match.group(1).lower(), match.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_specs = project["dependencies"] + project["optional-dependencies"]["test"]
    expected = {CONDA_NAMES.get(name, name): version for name, version in map(_requirement, pip_specs)}
    expected["python"] = project["requires-python"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_only = [spec for entry in conda if isinstance(entry, dict) for spec in entry.get("pip", [])]
    specs = [spec for spec in conda if isinstance(spec, str) and spec != "pip"] + pip_only
    listed = dict(map(_requirement, specs))
    assert listed == expected


def _fenced_commands(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = _fenced_commands(setup)
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "workbench demo" in demo and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci
    assert ci.index(tests) < ci.index("\npip install nox && nox\n")  # then the sessions of noxfile.py


def test_the_tests_run_on_the_main_install_plus_test_tools_only():
    """The test command installs what the demo command installs (the same torch first), plus the
    ``test`` extra, which holds tools and no library the package's code could come to depend on;
    the nox sessions pin the same torch."""
    readme = (ROOT / "README.md").read_text()
    demo, tests = _fenced_commands(readme.split("## Set up", 1)[1].split("\n## ", 1)[0])
    demo_install = demo.removesuffix(" && workbench demo")
    assert tests == demo_install.replace("pip install -e .", 'pip install -e ".[test]"') + " && pytest"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {_requirement(spec)[0] for spec in extras["test"]} == {"pytest", "hypothesis", "pytest-benchmark", "playwright"}
    torch_pin = re.search(r"pip install (torch==\S+)", demo).group(1)
    assert f'TORCH = "{torch_pin}"' in (ROOT / "noxfile.py").read_text()
