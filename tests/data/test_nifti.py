"""NIfTI I/O (workbench.data.nifti) and atomic writes (workbench._io)."""

from __future__ import annotations

import os
import re

import nibabel as nib
import numpy as np
import pytest

from workbench._io import atomic_write
from workbench.data.nifti import load_image, load_label, read_header, save_nifti


def _oblique_affine() -> np.ndarray:
    """Rotated about two axes, anisotropic, with an offset; entries exactly float32 (as NIfTI stores them)."""
    a, b = np.deg2rad(20.0), np.deg2rad(-35.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag([0.9, 1.2, 3.0])
    affine[:3, 3] = [-91.5, 12.25, 40.0]
    return affine.astype(np.float32).astype(np.float64)


def _write_raw(path, data, affine=None) -> None:
    """Write with nibabel directly, bypassing save_nifti."""
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)


def test_image_round_trip_keeps_array_spacing_and_affine(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(5, 6, 7)).astype(np.float32)
    affine = np.diag([0.9, 1.1, 2.5, 1.0])
    affine[:3, 3] = [-10.5, 20.0, 3.25]
    save_nifti(tmp_path / "t1.nii.gz", array, affine, spacing=(0.9, 1.1, 2.5))

    image, loaded_affine, spacing = load_image([tmp_path / "t1.nii.gz"])

    assert image.shape == (1, 5, 6, 7) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0], array)
    np.testing.assert_array_equal(loaded_affine, affine.astype(np.float32).astype(np.float64))
    assert loaded_affine.dtype == np.float64
    assert spacing == (0.9, 1.1, 2.5)


def test_label_round_trip_with_oblique_affine(tmp_path):
    rng = np.random.default_rng(1)
    label = rng.integers(0, 5, size=(6, 5, 4))
    affine = _oblique_affine()
    save_nifti(tmp_path / "seg.nii.gz", label, affine)

    loaded, loaded_affine, spacing = load_label(tmp_path / "seg.nii.gz")

    np.testing.assert_array_equal(loaded, label)
    np.testing.assert_array_equal(loaded_affine, affine)
    np.testing.assert_allclose(spacing, [0.9, 1.2, 3.0], rtol=1e-6)
    header = nib.load(tmp_path / "seg.nii.gz").header
    assert header.get_data_dtype() == np.uint8
    assert header.get_slope_inter() == (None, None)
    np.testing.assert_allclose(header.get_zooms(), np.linalg.norm(affine[:3, :3], axis=0), rtol=1e-6)


@pytest.mark.parametrize(
    ("values", "on_disk", "loaded"),
    [((0, 4), np.uint8, np.uint8), ((0, 300), np.int16, np.uint16), ((-3, 2), np.int16, np.int8)],
)
def test_integer_labels_are_stored_unscaled_and_loaded_in_smallest_dtype(tmp_path, values, on_disk, loaded):
    label = np.zeros((3, 3, 3), dtype=np.int64)
    label[0, 0, 0], label[1, 1, 1] = values
    save_nifti(tmp_path / "seg.nii", label)
    assert nib.load(tmp_path / "seg.nii").header.get_data_dtype() == on_disk
    result = load_label(tmp_path / "seg.nii")[0]
    assert result.dtype == loaded
    np.testing.assert_array_equal(result, label)


def test_2d_round_trip(tmp_path):
    label = np.arange(12).reshape(3, 4) % 3
    save_nifti(tmp_path / "slice.nii.gz", label, spacing=(0.5, 0.75))
    loaded, _, spacing = load_label(tmp_path / "slice.nii.gz")
    np.testing.assert_array_equal(loaded, label)
    assert spacing == (0.5, 0.75)


def test_float_label_with_integral_values_loads_as_int(tmp_path):
    data = np.array([0.0, 1.0, 2.0, 4.0], dtype=np.float32).reshape(1, 2, 2)
    _write_raw(tmp_path / "seg.nii.gz", data)
    label = load_label(tmp_path / "seg.nii.gz")[0]
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, data.astype(int))


def test_non_integral_float_label_names_file_and_value(tmp_path):
    data = np.zeros((2, 2, 2), dtype=np.float32)
    data[1, 0, 1] = 1.5
    _write_raw(tmp_path / "seg.nii.gz", data)
    with pytest.raises(ValueError, match=r"seg\.nii\.gz.*non-integer values, e\.g\. 1\.5 at voxel \(1, 0, 1\)"):
        load_label(tmp_path / "seg.nii.gz")


def test_modalities_with_different_shapes_are_both_named(tmp_path):
    _write_raw(tmp_path / "a.nii.gz", np.zeros((4, 4, 4), np.float32))
    _write_raw(tmp_path / "b.nii.gz", np.zeros((4, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"b\.nii\.gz has shape \(4, 4, 5\) but .*a\.nii\.gz has shape \(4, 4, 4\)"):
        load_image([tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"])


def test_modalities_with_different_affines_are_both_named(tmp_path):
    _write_raw(tmp_path / "a.nii.gz", np.zeros((4, 4, 4), np.float32))
    _write_raw(tmp_path / "b.nii.gz", np.zeros((4, 4, 4), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"b\.nii\.gz has affine .* but .*a\.nii\.gz has affine"):
        load_image([tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"])


def test_4d_file_is_rejected_with_its_name(tmp_path):
    _write_raw(tmp_path / "dwi.nii.gz", np.zeros((3, 3, 3, 2), np.float32))
    message = r"dwi\.nii\.gz: expected one 2D or 3D volume per file, got shape \(3, 3, 3, 2\)"
    with pytest.raises(ValueError, match=message):
        load_image([tmp_path / "dwi.nii.gz"])


def test_trailing_singleton_axis_is_dropped(tmp_path):
    _write_raw(tmp_path / "t1.nii.gz", np.ones((3, 3, 3, 1), np.float32))
    assert load_image([tmp_path / "t1.nii.gz"])[0].shape == (1, 3, 3, 3)


def test_non_finite_values_are_rejected_with_the_file_name(tmp_path):
    data = np.zeros((3, 3, 3), np.float32)
    data[0, 0, 0], data[1, 1, 1] = np.nan, np.inf
    _write_raw(tmp_path / "t1.nii.gz", data)
    with pytest.raises(ValueError, match=r"t1\.nii\.gz holds 2 non-finite voxel values"):
        load_image([tmp_path / "t1.nii.gz"])


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.nii\.gz does not exist"):
        load_label(tmp_path / "absent.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti file" * 8)
    with pytest.raises(ValueError, match=r"Cannot read NIfTI file .*junk\.nii\.gz"):
        load_image([tmp_path / "junk.nii.gz"])


def test_header_is_read_without_voxel_data(tmp_path):
    save_nifti(tmp_path / "t1.nii", np.ones((8, 8, 8), np.float32), spacing=(1.0, 2.0, 3.0))
    os.truncate(tmp_path / "t1.nii", 600)  # header intact, voxel data cut short
    header = read_header(tmp_path / "t1.nii")
    assert header.shape == (8, 8, 8) and header.spacing == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match=r"Cannot read the voxel data of .*t1\.nii"):
        load_image([tmp_path / "t1.nii"])


def test_load_image_rejects_a_single_path(tmp_path):
    with pytest.raises(TypeError, match=r"`paths` must be a sequence of files"):
        load_image(str(tmp_path / "t1.nii.gz"))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"path": "out.nrrd"}, ValueError, r"Expected `path` to end in '.nii' or '.nii.gz', but got '.*out.nrrd'"),
        ({"array": np.zeros((2, 3, 3, 3))}, ValueError, r"to be 2D or 3D \(\*S\), but got shape \(2, 3, 3, 3\)"),
        ({"array": np.full((3, 3, 3), np.nan)}, ValueError, r"holds 27 non-finite values"),
        ({"array": np.full((3, 3, 3), 2**40)}, ValueError, r"beyond the int32 range"),
        ({"array": np.zeros((3, 3, 3), complex)}, TypeError, r"but got dtype complex128"),
        ({"affine": np.eye(3)}, ValueError, r"Expected `affine` to be a finite 4x4 matrix .* got shape \(3, 3\)"),
        ({"spacing": (1.0, 1.0, 2.0)}, ValueError, r"`spacing` \(1.0, 1.0, 2.0\) .* disagrees with the voxel sizes"),
        ({"spacing": (1.0, -1.0, 1.0), "affine": None}, ValueError, r"Expected `spacing` to hold 3 positive"),
    ],
)
def test_save_nifti_rejects_bad_arguments(tmp_path, kwargs, error, message):
    arguments = {"path": "out.nii.gz", "array": np.zeros((3, 3, 3)), "affine": np.eye(4), **kwargs}
    arguments["path"] = tmp_path / arguments["path"]
    spacing = arguments.pop("spacing", None)
    with pytest.raises(error, match=message):
        save_nifti(arguments["path"], arguments["array"], arguments["affine"], spacing=spacing)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_double_suffix_and_replaces_on_success(tmp_path):
    target = tmp_path / "case.nii.gz"
    target.write_text("old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".case.nii.gz.tmp-") and tmp.name.endswith(".nii.gz")
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["case.nii.gz"]


def test_atomic_write_failure_leaves_no_partial_and_no_temp_file(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as tmp:
            tmp.write_text("half a ta")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []

    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash")
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"] and target.read_text() == "previous"


def test_save_nifti_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def failing_save(img, filename):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_nifti(tmp_path / "pred.nii.gz", np.zeros((3, 3, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_names_a_missing_folder(tmp_path):
    target = tmp_path / "nowhere" / "x.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"folder {target.parent} does not exist")):
        with atomic_write(target):
            pass
