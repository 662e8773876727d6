"""Issue 21, instance-map cache: a damaged entry is recomputed with a warning naming it, then rewritten."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from workbench.instances import cached_instance_maps, instance_maps


def _target() -> np.ndarray:
    target = np.zeros((1, 1, 8, 8, 8), dtype=np.int64)
    target[0, 0, 1:3, 1:3, 1:3] = 1
    target[0, 0, 5:7, 5:7, 5:7] = 1
    return target


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _foreign_maps(path):
    """A readable entry whose arrays belong to another target (a 4³ volume)."""
    other = np.zeros((1, 1, 4, 4, 4), dtype=np.int64)
    other[0, 0, 0, 0, 0] = 1
    path.unlink()
    written = cached_instance_maps(other, path.parent)
    next(p for p in path.parent.glob("*.npz") if p != path).rename(path)
    assert written.components.shape == (1, 1, 4, 4, 4)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, r"not a readable \.npz of instance maps"),
        (lambda path: path.write_bytes(b""), r"not a readable \.npz of instance maps"),
        (lambda path: path.write_text("garbage"), r"not a readable \.npz of instance maps"),
        (lambda path: np.save(path.with_suffix(".npy"), np.zeros(3)) or path.with_suffix(".npy").rename(path),
         r"not a readable \.npz of instance maps"),
        (_foreign_maps, r"maps of shape \(1, 1, 4, 4, 4\) do not fit the target of shape \(1, 1, 8, 8, 8\)"),
    ],
)
def test_a_damaged_entry_is_recomputed_with_a_warning_and_rewritten(tmp_path, damage, reason):
    target = _target()
    cached_instance_maps(target, tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    damage(entry)
    with pytest.warns(UserWarning, match=rf"Instance-map cache entry .*{entry.name} is damaged \({reason}.*\); recomputing it"):
        maps = cached_instance_maps(target, tmp_path)
    expected = instance_maps(target, voronoi=True)
    np.testing.assert_array_equal(maps.components, expected.components)
    np.testing.assert_array_equal(maps.cells, expected.cells)
    assert maps.counts.tolist() == [[2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is read without a warning
        again = cached_instance_maps(target, tmp_path)
    np.testing.assert_array_equal(again.components, expected.components)
    assert sorted(p.name for p in tmp_path.iterdir()) == [entry.name]
