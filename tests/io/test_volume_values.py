"""CTVolume, load_label_mask and save_like on real files, checked against nibabel directly.

The label map is the real TotalSegmentator sample (tests/data/real-ct/example_seg.nii.gz);
the expected masks and headers are computed here with nibabel (as_closest_canonical,
the header's qform/sform codes), never with mu2's own orientation helpers.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations as ornt_lib

from mu2.errors import Mu2Error
from mu2.io import CTVolume, load_ct, save_like
from mu2.io.volume import canonical_volume, load_label_mask

SPLEEN, KIDNEY_RIGHT, LIVER = 1, 2, 5


@pytest.fixture(scope="module")
def seg(data_dir):
    return data_dir / "real-ct" / "example_seg.nii.gz"


def _stored_as(img: nib.Nifti1Image, codes: str, path) -> None:
    """Write the same anatomy with its axes stored in another orientation (nibabel maths)."""
    data = np.asanyarray(img.dataobj)
    change = ornt_lib.ornt_transform(
        ornt_lib.io_orientation(img.affine), ornt_lib.axcodes2ornt(tuple(codes))
    )
    moved = ornt_lib.apply_orientation(data, change)
    affine = img.affine @ ornt_lib.inv_ornt_aff(change, data.shape)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(moved), affine), str(path))


def test_label_mask_is_the_labels_on_the_canonical_grid(seg):
    mask = load_label_mask(seg, [SPLEEN, LIVER])
    canon = nib.as_closest_canonical(nib.load(str(seg)))
    labels = np.asanyarray(canon.dataobj)
    assert mask.dtype == bool and mask.shape == labels.shape
    np.testing.assert_array_equal(mask, np.isin(labels, [SPLEEN, LIVER]))
    assert mask.sum() == np.isin(labels, [SPLEEN]).sum() + np.isin(labels, [LIVER]).sum() > 0


def test_label_mask_of_a_reoriented_file_lines_up_with_its_scan(tmp_path, seg, data_dir):
    """A mask stored PIR lands on the same canonical voxels as the RAS original and the CT
    it was segmented from (example_ct_sm), also stored PIR."""
    _stored_as(nib.load(str(seg)), "PIR", tmp_path / "seg_pir.nii.gz")
    _stored_as(nib.load(str(data_dir / "real-ct" / "example_ct_sm.nii.gz")), "PIR", tmp_path / "ct.nii.gz")
    moved = load_label_mask(tmp_path / "seg_pir.nii.gz", [KIDNEY_RIGHT])
    canon = np.asanyarray(nib.as_closest_canonical(nib.load(str(seg))).dataobj)
    np.testing.assert_array_equal(moved, canon == KIDNEY_RIGHT)
    ct = load_ct(tmp_path / "ct.nii.gz")
    assert moved.shape == ct.shape
    # the kidney voxels hold soft tissue on the scan (the grids line up)
    assert 0 < np.median(ct.array[moved]) < 100


def test_label_mask_of_an_absent_label_is_empty(seg):
    assert not load_label_mask(seg, [999]).any()


def test_from_array_meta_affine_and_float32():
    arr = np.full((5, 6, 7), -1000, np.int16)
    vol = CTVolume.from_array(arr, (0.5, 0.75, 2.0))
    np.testing.assert_array_equal(vol.affine, np.diag([0.5, 0.75, 2.0, 1.0]))
    assert vol.array.dtype == np.float32 and vol.array.flags.c_contiguous
    assert vol.meta == {
        "path": None,
        "format": "array",
        "orientation": "RAS",
        "original_shape": [5, 6, 7],
        "canonical_orientation": "RAS",
        "warnings": [],
    }
    # caller's meta wins over the defaults
    assert CTVolume.from_array(arr, meta={"format": "phantom"}).meta["format"] == "phantom"


def test_canonical_volume_of_an_integer_affine_keeps_float64_source(tmp_path):
    """Both affines are float64 even when a caller hands integers (the header keeps mm)."""
    data = np.zeros((4, 3, 2), np.float32)
    affine = np.array([[-2, 0, 0, 5], [0, -2, 0, 6], [0, 0, 3, 7], [0, 0, 0, 1]])
    vol = canonical_volume(data, affine, {})
    assert vol.source_affine.dtype == np.float64 and vol.affine.dtype == np.float64
    np.testing.assert_array_equal(vol.source_affine, affine)
    direct = CTVolume(data, (1.0, 1.0, 1.0), np.diag([1, 1, 1, 1]))
    assert direct.source_affine.dtype == np.float64


def test_meta_keeps_the_source_layout(tmp_path, data_dir):
    """original_shape is the stored (source) shape; the MR sample's warning is kept."""
    src = nib.load(str(data_dir / "real-ct" / "example_ct_sm.nii.gz"))
    _stored_as(src, "PIR", tmp_path / "pir.nii.gz")
    stored = nib.load(str(tmp_path / "pir.nii.gz")).shape
    vol = load_ct(tmp_path / "pir.nii.gz")
    assert vol.meta["original_shape"] == list(stored) != list(vol.shape)
    assert vol.meta["canonical_orientation"] == "RAS"
    assert vol.meta["warnings"] == []
    assert vol.meta["path"] == str(tmp_path / "pir.nii.gz") and vol.meta["modality"] is None


def test_a_volume_built_directly_writes_back_its_own_affine(tmp_path):
    """CTVolume(array, spacing, affine) without a source: the canonical layout is the source."""
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    affine[:3, 3] = (-10.0, 20.0, 30.0)
    vol = CTVolume(arr, (0.8, 0.9, 2.5), affine)
    assert vol.source_shape == (4, 5, 6)
    out = save_like(vol, arr, tmp_path / "direct.nii.gz")
    written = nib.load(str(out))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), arr)
    np.testing.assert_allclose(written.affine, affine)


def test_save_like_header_codes_and_new_folders(tmp_path, data_dir):
    """qform and sform both hold the source affine with code 1 (scanner), as viewers expect;
    the output's missing parent folders are created."""
    path = data_dir / "real-ct" / "example_ct_sm.nii.gz"
    vol = load_ct(path)
    raw = nib.load(str(path))
    out = save_like(vol, np.ones(vol.shape, np.float32), tmp_path / "a" / "b" / "heat.nii.gz")
    assert out == tmp_path / "a" / "b" / "heat.nii.gz"
    header = nib.load(str(out)).header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(header.get_qform(), raw.affine, atol=1e-5)
    np.testing.assert_allclose(header.get_sform(), raw.affine, atol=1e-5)


def test_to_source_and_save_like_keep_trailing_channels(tmp_path, data_dir):
    """A (X, Y, Z, C) map goes back to the source layout with its channels intact."""
    path = data_dir / "real-ct" / "example_mr_sm.nii.gz"  # stored LPS
    with pytest.warns(UserWarning):
        vol = load_ct(path)
    maps = np.stack([vol.array, -vol.array], axis=-1)  # (X, Y, Z, 2)
    raw = np.asanyarray(nib.load(str(path)).dataobj).astype(np.float32)
    back = vol.to_source(maps)
    np.testing.assert_array_equal(back, np.stack([raw, -raw], axis=-1))
    written = nib.load(str(save_like(vol, maps, tmp_path / "two.nii.gz")))
    assert written.shape == (*raw.shape, 2)


def test_to_source_wrong_shape_says_which_and_how():
    vol = CTVolume.from_array(np.zeros((4, 5, 6), np.float32))
    with pytest.raises(Mu2Error) as info:
        vol.to_source(np.zeros((4, 5, 7)))
    assert str(info.value) == (
        "array shape (4, 5, 7) does not match the canonical volume (4, 5, 6) -- "
        "fix: pass an array on the canonical grid of this volume"
    )


def test_save_like_refuses_a_volume_whose_source_shape_disagrees(tmp_path):
    arr = np.zeros((4, 5, 6), np.float32)
    vol = CTVolume(arr, (1.0, 1.0, 1.0), np.eye(4), source_shape=(4, 5, 9))
    out = tmp_path / "heat.nii.gz"
    with pytest.raises(Mu2Error) as info:
        save_like(vol, arr, out)
    assert str(info.value) == (
        f"{out}: array maps to shape (4, 5, 6), but the source has (4, 5, 9)"
    )
    assert not out.exists()
