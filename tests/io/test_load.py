"""load_ct on NIfTI and NumPy files: canonical orientation, spacing, values, write-back."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations as ornt_lib

from mu2.errors import Mu2Error
from mu2.io import CTVolume, NotCTWarning, load_ct, save_like


def _reoriented(img: nib.Nifti1Image, codes: str) -> nib.Nifti1Image:
    """The same anatomy stored with axes in another orientation (nibabel does the maths)."""
    data = np.asanyarray(img.dataobj)
    start = ornt_lib.io_orientation(img.affine)
    change = ornt_lib.ornt_transform(start, ornt_lib.axcodes2ornt(tuple(codes)))
    new_data = ornt_lib.apply_orientation(data, change)
    new_affine = img.affine @ ornt_lib.inv_ornt_aff(change, data.shape)
    return nib.Nifti1Image(np.ascontiguousarray(new_data), new_affine)


def test_real_ct_nifti(real_ct_path):
    vol = load_ct(real_ct_path)
    raw = nib.load(str(real_ct_path))
    assert vol.shape == (122, 101, 112)
    assert vol.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert vol.array.dtype == np.float32
    assert vol.meta["orientation"] == "RAS" and vol.meta["format"] == "nifti"
    # already RAS: values are the file's HU values, unchanged
    np.testing.assert_array_equal(vol.array, np.asanyarray(raw.dataobj).astype(np.float32))
    np.testing.assert_allclose(vol.affine, raw.affine)
    assert vol.array.min() == -1207 and vol.array.max() == 3382


@pytest.mark.parametrize("codes", ["LPS", "PIR", "SAL", "ASR"])
def test_same_anatomy_any_orientation_loads_identically(tmp_path, data_dir, codes):
    src = nib.load(str(data_dir / "real-ct" / "example_ct_sm.nii.gz"))
    moved = _reoriented(src, codes)
    assert "".join(nib.aff2axcodes(moved.affine)) == codes
    assert moved.shape != src.shape or codes == "LPS"
    nib.save(moved, str(tmp_path / f"ct_{codes}.nii.gz"))
    nib.save(src, str(tmp_path / "ct_ras.nii.gz"))
    a = load_ct(tmp_path / "ct_ras.nii.gz")
    b = load_ct(tmp_path / f"ct_{codes}.nii.gz")
    assert b.meta["orientation"] == codes
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)
    assert a.spacing == pytest.approx(b.spacing)


def test_mr_sample_in_lps_warns_and_is_reoriented(data_dir):
    path = data_dir / "real-ct" / "example_mr_sm.nii.gz"
    with pytest.warns(NotCTWarning, match="does not look like CT"):
        vol = load_ct(path)
    assert vol.meta["orientation"] == "LPS"
    assert vol.meta["warnings"] and str(path) in vol.meta["warnings"][0]
    raw = np.asanyarray(nib.load(str(path)).dataobj)
    # LPS -> RAS flips the first two axes
    np.testing.assert_array_equal(vol.array, raw[::-1, ::-1, :].astype(np.float32))


def test_ct_does_not_warn(real_ct_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotCTWarning)
        load_ct(real_ct_path)


@pytest.mark.parametrize("name", ["example_ct_sm.nii.gz", "example_mr_sm.nii.gz"])
def test_to_source_and_save_like_match_the_input(tmp_path, data_dir, name):
    path = data_dir / "real-ct" / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotCTWarning)
        vol = load_ct(path)
    raw = nib.load(str(path))
    np.testing.assert_array_equal(vol.to_source(vol.array), np.asanyarray(raw.dataobj))
    heat = np.zeros(vol.shape, np.float32)
    heat[10:14, 20:25, 5:8] = 1.0  # a box on the canonical grid
    out = save_like(vol, heat, tmp_path / "heat.nii.gz")
    written = nib.load(str(out))
    assert written.shape == raw.shape
    np.testing.assert_allclose(written.affine, raw.affine, atol=1e-5)
    # the box sits at the same world position in both grids
    world_canon = nib.affines.apply_affine(vol.affine, np.argwhere(heat > 0)).mean(0)
    src_idx = np.argwhere(np.asanyarray(written.dataobj) > 0)
    world_src = nib.affines.apply_affine(written.affine, src_idx).mean(0)
    np.testing.assert_allclose(world_canon, world_src, atol=1e-4)


def test_four_d_with_last_axis_one_is_squeezed(tmp_path, data_dir):
    src = nib.load(str(data_dir / "real-ct" / "example_ct_sm.nii.gz"))
    data = np.asanyarray(src.dataobj)[..., None]
    nib.save(nib.Nifti1Image(data, src.affine), str(tmp_path / "v4.nii.gz"))
    vol = load_ct(tmp_path / "v4.nii.gz")
    assert vol.shape == src.shape


def test_nifti_scaling_applied_once(tmp_path):
    stored = np.full((8, 8, 6), 24, dtype=np.int16)
    stored[2:6, 2:6, 1:5] = 1064
    img = nib.Nifti1Image(stored, np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(tmp_path / "scaled.nii.gz"))
    vol = load_ct(tmp_path / "scaled.nii.gz")
    assert set(np.unique(vol.array)) == {-1000.0, 40.0}


def test_npy_spacing_defaults_to_1mm(tmp_path):
    arr = np.full((20, 18, 12), -1000, dtype=np.int16)
    arr[5:15, 4:14, 2:10] = 40
    np.save(tmp_path / "v.npy", arr)
    vol = load_ct(tmp_path / "v.npy")
    assert vol.shape == (20, 18, 12)
    assert vol.spacing == (1.0, 1.0, 1.0)
    assert "assumed" in vol.meta["spacing_source"]
    np.testing.assert_array_equal(vol.array, arr.astype(np.float32))


def test_npz_with_spacing(tmp_path):
    arr = np.full((20, 18, 12), -1000.0, dtype=np.float32)
    np.savez_compressed(tmp_path / "v.npz", array=arr, spacing=np.array([0.7, 0.7, 2.5]))
    vol = load_ct(tmp_path / "v.npz")
    assert vol.spacing == pytest.approx((0.7, 0.7, 2.5))
    assert vol.meta["format"] == "npz"


def test_npz_ambiguous_entries_is_an_error(tmp_path):
    np.savez(tmp_path / "v.npz", a=np.zeros((4, 4, 4)), b=np.zeros((4, 4, 4)))
    with pytest.raises(Mu2Error, match="cannot tell which"):
        load_ct(tmp_path / "v.npz")


def test_memory_cap_is_configurable(real_ct_path):
    with pytest.raises(Mu2Error, match="memory cap"):
        load_ct(real_ct_path, max_voxels=1000)
    assert load_ct(real_ct_path, max_voxels=122 * 101 * 112).shape == (122, 101, 112)


def test_from_array_is_canonical():
    arr = np.zeros((5, 6, 7), np.float32) - 1000
    vol = CTVolume.from_array(arr, (0.5, 0.5, 2.0))
    assert vol.affine[0, 0] == 0.5 and vol.spacing == (0.5, 0.5, 2.0)
    np.testing.assert_array_equal(vol.to_source(vol.array), arr)


@pytest.mark.parametrize("suffix", [".nii", ".npy", ".npz"])
def test_truncated_uncompressed_files_give_one_line(tmp_path, suffix):
    arr = np.full((20, 20, 20), -1000, np.int16)
    good = tmp_path / f"good{suffix}"
    if suffix == ".nii":
        nib.save(nib.Nifti1Image(arr, np.eye(4)), str(good))
    elif suffix == ".npy":
        np.save(good, arr)
    else:
        np.savez(good, array=arr)
    blob = good.read_bytes()
    bad = tmp_path / f"cut{suffix}"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(Mu2Error) as info:
        load_ct(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
