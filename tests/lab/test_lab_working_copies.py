"""`workbench lab` works on copies of the notebooks in ``runs/lab/``, never on the committed ones (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.lab import default_notebooks_dir, start_lab, working_copies

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_the_originals_are_the_checkouts_notebooks():
    assert default_notebooks_dir() == NOTEBOOKS


def test_working_copies_are_made_in_runs_lab_without_the_jupytext_pairing(tmp_path):
    before = snapshot(NOTEBOOKS)
    folder, copied = working_copies(tmp_path)
    assert folder == tmp_path / "runs" / "lab"
    names = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert list(copied) == names and sorted(path.name for path in folder.iterdir()) == names  # no .py, no README
    for name in names:
        original, copy = (json.loads((root / name).read_text()) for root in (NOTEBOOKS, folder))
        assert "jupytext" in original["metadata"] and "jupytext" not in copy["metadata"]  # a save writes no .py
        assert copy["metadata"]["kernelspec"]["name"] == "python3"
        assert copy["cells"] == original["cells"]
    assert snapshot(NOTEBOOKS) == before


def test_a_working_copy_already_there_is_kept_and_a_missing_one_is_made_again(tmp_path):
    folder, _ = working_copies(tmp_path)
    edited = folder / "01_loss_explorer.ipynb"
    edited.write_text('{"edited": "by the user"}')
    (folder / "03_compare.ipynb").unlink()
    _, copied = working_copies(tmp_path)
    assert copied == ("03_compare.ipynb",)
    assert edited.read_text() == '{"edited": "by the user"}'
    assert json.loads((folder / "03_compare.ipynb").read_text())["cells"] == \
        json.loads((NOTEBOOKS / "03_compare.ipynb").read_text())["cells"]


def test_working_copies_need_notebooks_to_copy(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No notebooks \(\*\.ipynb\) in .*empty"):
        working_copies(tmp_path / "project", tmp_path / "empty")
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize("folder", [NOTEBOOKS, NOTEBOOKS / ".." / "notebooks"])
def test_the_lab_refuses_to_serve_the_committed_notebooks(folder, tmp_path):
    with pytest.raises(ValueError, match=r"committed notebooks .*notebooks: saving there would change the checkout. "
                                         r"Leave out --dir to work on copies in runs/lab/"):
        start_lab(folder, project_dir=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_start_lab_serves_the_working_copies_and_says_so(tmp_path):
    from workbench.lab import running_lab

    names = tuple(sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
    with open(tmp_path / "lab.log", "w") as log, running_lab(project_dir=tmp_path, log=log) as lab:
        assert lab.root_dir == tmp_path / "runs" / "lab" and lab.originals == NOTEBOOKS and lab.copied == names
        assert lab.describe() == (
            f"JupyterLab is serving working copies of the workbench notebooks in {tmp_path / 'runs' / 'lab'} "
            f"(copied now: {', '.join(names)}). Saves go there; the originals in {NOTEBOOKS} are never changed. "
            f"Delete a working copy to get a fresh one on the next start.\nKernels start in {tmp_path}."
        )
    with open(tmp_path / "lab.log", "a") as log, running_lab(project_dir=tmp_path, log=log) as lab:
        assert lab.copied == () and "copied now" not in lab.describe()


def test_a_folder_of_ones_own_is_served_as_it_is(tmp_path):
    from workbench.lab import running_lab

    with open(tmp_path / "lab.log", "w") as log, running_lab(tmp_path, project_dir=tmp_path, log=log) as lab:
        assert lab.root_dir == tmp_path and lab.originals is None
        assert lab.describe() == f"JupyterLab is serving {tmp_path} as it is.\nKernels start in {tmp_path}."
    assert not (tmp_path / "runs").exists()
