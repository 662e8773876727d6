"""A writer killed by SIGKILL leaves its temporary file; the next write into the folder removes it, and only it."""

from __future__ import annotations

import os
import subprocess
import sys

from workbench._io import _HOST, atomic_write, remove_stale_temporaries

_KILLED_WRITER = """
import os, signal, sys
from workbench._io import atomic_write
with atomic_write(sys.argv[1]) as tmp:
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "case.nii.gz")], check=False)
    assert done.returncode == -9
    (stale,) = tmp_path.iterdir()
    assert stale.name.startswith(f".case.nii.gz.tmp-{_HOST}-") and stale.name.endswith(".nii.gz")
    with atomic_write(tmp_path / "other.txt") as tmp:
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_only_temporaries_of_gone_writers_on_this_host_are_removed(tmp_path):
    live = tmp_path / f".a.csv.tmp-{_HOST}-{os.getpid()}-0123456789ab.csv"  # this process: alive
    elsewhere = tmp_path / ".b.csv.tmp-00000000-999999999-0123456789ab.csv"  # another host (unless the hash collides)
    old_style = tmp_path / ".c.csv.tmp-0123456789ab.csv"  # no pid in the name: cannot tell, kept
    gone = tmp_path / f".d.csv.tmp-{_HOST}-999999999-0123456789ab.csv"
    mine = tmp_path / "d.csv.tmp-1"
    for path in (live, elsewhere, old_style, gone, mine):
        path.write_text("x")
    assert remove_stale_temporaries(tmp_path) == [gone]
    assert sorted(tmp_path.iterdir()) == sorted([live, elsewhere, old_style, mine])
