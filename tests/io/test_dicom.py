"""DICOM series: slice order, rescale applied once, series choice, modality, geometry."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mu2.errors import Mu2Error
from mu2.io import load_ct
from mu2.io.testing import write_dicom_series


@pytest.fixture(scope="module")
def real_dicom(data_dir):
    return data_dir / "real-ct" / "example_ct_dicom"


@pytest.fixture(scope="module")
def real_volume(real_dicom):
    return load_ct(real_dicom)


def _even_hu(shape, seed=0):
    """Even HU values: exact through a slope-2 rescale."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-500, 500, shape) * 2).astype(np.float32)


def test_real_series_shape_spacing_orientation(real_volume):
    vol = real_volume
    assert vol.shape == (512, 512, 20)
    assert vol.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert vol.meta["orientation"] == "LPS"
    assert vol.meta["modality"] == "CT"
    assert vol.meta["series"]["n_slices"] == 20


def test_real_series_intercept_applied_once(real_dicom, real_volume):
    vol = real_volume
    # air and the scanner's padding read about -1000 / -1024 HU, never -2048 or 0
    assert vol.array.min() == -1024.0
    assert np.percentile(vol.array, 1) < -950
    # one slice against pydicom's own decoding plus RescaleSlope/Intercept
    files = sorted(real_dicom.iterdir())
    ds = pydicom.dcmread(files[0])
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )  # (row, column)
    src = vol.to_source(vol.array)  # (column, row, slice) in the file's LPS order
    positions = sorted(float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files)
    z = positions.index(float(ds.ImagePositionPatient[2]))
    np.testing.assert_array_equal(src[:, :, z].T, expected)


def test_real_series_matches_simpleitk_gdcm_reader(real_dicom, real_volume):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(real_dicom)))
    image = reader.Execute()
    ref = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)  # (X, Y, Z)
    np.testing.assert_array_equal(real_volume.to_source(real_volume.array), ref)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    origin_ras = lps[:3, :3] @ np.asarray(image.GetOrigin())
    np.testing.assert_allclose(real_volume.source_affine[:3, 3], origin_ras, atol=1e-4)
    np.testing.assert_allclose(
        np.abs(np.diag(real_volume.source_affine)[:3]), image.GetSpacing(), atol=1e-5
    )


def test_single_file_reads_its_series(real_dicom, real_volume):
    one = sorted(real_dicom.iterdir())[3]
    vol = load_ct(one)
    np.testing.assert_array_equal(vol.array, real_volume.array)
    assert "belongs to" in vol.meta["series"]["chosen_because"]


def test_single_slice_alone_is_2d_error(tmp_path, real_dicom):
    one = sorted(real_dicom.iterdir())[0]
    shutil.copy(one, tmp_path / "only.dcm")
    with pytest.raises(Mu2Error, match="2-D"):
        load_ct(tmp_path / "only.dcm")


def test_slices_sorted_by_position_not_name(tmp_path):
    hu = _even_hu((12, 10, 7))
    names = [f"{c}.dcm" for c in "gdaefcb"]  # name order unrelated to position
    write_dicom_series(tmp_path / "s", hu, (0.7, 0.8, 2.5), slope=2.0, names=names)
    vol = load_ct(tmp_path / "s")
    assert vol.spacing == pytest.approx((0.7, 0.8, 2.5))
    # written in DICOM LPS axes; canonical RAS flips x and y
    np.testing.assert_array_equal(vol.array, hu[::-1, ::-1, :])
    np.testing.assert_array_equal(vol.to_source(vol.array), hu)


def test_rescale_applied_exactly_once(tmp_path):
    hu = np.full((8, 8, 4), -1000.0, np.float32)
    hu[2:6, 2:6, :] = 40.0
    write_dicom_series(tmp_path / "s", hu, (1.0, 1.0, 1.0), slope=1.0, intercept=-1024.0)
    vol = load_ct(tmp_path / "s")
    assert set(np.unique(vol.array)) == {-1000.0, 40.0}


def test_mixed_folder_reads_largest_series_and_reports_it(tmp_path):
    big = _even_hu((10, 10, 6), seed=1)
    small = _even_hu((10, 10, 3), seed=2)
    write_dicom_series(tmp_path / "mix", big, (1, 1, 2), description="axial 2mm")
    write_dicom_series(
        tmp_path / "mix",
        small,
        (1, 1, 5),
        description="scout",
        names=[f"z_{i}.dcm" for i in range(3)],
    )
    vol = load_ct(tmp_path / "mix")
    assert vol.shape == (10, 10, 6)
    np.testing.assert_array_equal(vol.to_source(vol.array), big)
    series = vol.meta["series"]
    assert series["description"] == "axial 2mm"
    assert series["chosen_because"] == "largest series in the folder"
    assert [o["description"] for o in series["others"]] == ["scout"]
    assert series["others"][0]["n_files"] == 3


def test_non_ct_modality_refused_unless_allowed(tmp_path):
    hu = _even_hu((8, 8, 4))
    write_dicom_series(tmp_path / "mr", hu, (1, 1, 1), modality="MR")
    with pytest.raises(Mu2Error, match="Modality is 'MR'.*--allow-non-ct"):
        load_ct(tmp_path / "mr")
    vol = load_ct(tmp_path / "mr", allow_non_ct=True)
    assert vol.meta["modality"] == "MR" and vol.shape == (8, 8, 4)


def test_memory_cap_checked_from_headers(tmp_path):
    write_dicom_series(tmp_path / "s", _even_hu((8, 8, 4)), (1, 1, 1))
    with pytest.raises(Mu2Error, match="memory cap"):
        load_ct(tmp_path / "s", max_voxels=8 * 8 * 3)


def test_uneven_gaps_are_reported(tmp_path):
    hu = _even_hu((8, 8, 5))
    write_dicom_series(tmp_path / "s", hu, (1, 1, 2))
    (tmp_path / "s" / "slice_0002.dcm").unlink()  # a missing slice
    vol = load_ct(tmp_path / "s")
    assert vol.shape == (8, 8, 4)
    assert any("uneven slice gaps" in w for w in vol.meta["warnings"])


def test_multi_frame_file(tmp_path):
    stored = (np.arange(4 * 5 * 6).reshape(4, 5, 6) * 10).astype(np.uint16)  # (Z, Y, X)
    image = sitk.GetImageFromArray(stored)
    image.SetSpacing((0.5, 0.6, 2.0))
    sitk.WriteImage(image, str(tmp_path / "mf.dcm"))  # one multi-frame file, Modality OT
    with pytest.raises(Mu2Error, match="not CT"):
        load_ct(tmp_path / "mf.dcm")
    vol = load_ct(tmp_path / "mf.dcm", allow_non_ct=True)
    assert vol.meta["series"]["multi_frame"] is True
    assert vol.spacing == pytest.approx((0.5, 0.6, 2.0))
    np.testing.assert_array_equal(vol.to_source(vol.array), stored.transpose(2, 1, 0))
