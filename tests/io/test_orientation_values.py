"""Anisotropic, permuted-axes files: the canonical spacing, affine and voxels, computed by hand.

Every real sample is 3 mm isotropic, so a spacing read from the source affine instead of the
canonical one cannot show there. Here the file is stored PIR (axes = A->P, S->I, L->R) with
three different voxel sizes; the expected canonical layout is written out by hand (which
source axis becomes X, Y, Z, which are flipped), never derived from mu2's helpers.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mu2.io import load_ct

# Source voxel sizes along the stored axes i, j, k (mm).
SI, SJ, SK = 0.7, 2.5, 1.3


def _pir_file(tmp_path):
    """A PIR-stored NIfTI: i runs anterior->posterior, j superior->inferior, k toward R."""
    shape = (5, 7, 9)  # (i, j, k)
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) - 1000.0
    affine = np.zeros((4, 4))
    affine[1, 0] = -SI  # i -> -A (posterior)
    affine[2, 1] = -SJ  # j -> -S (inferior)
    affine[0, 2] = SK  # k -> +R (world x grows toward the patient's Right)
    affine[:3, 3] = (10.0, -20.0, 30.0)
    affine[3, 3] = 1.0
    path = tmp_path / "pir.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path, data, affine


def test_anisotropic_permuted_file_gets_canonical_spacing_affine_and_voxels(tmp_path):
    path, data, affine = _pir_file(tmp_path)
    vol = load_ct(path)
    assert vol.meta["orientation"] == "PIR"
    # canonical X (R) = source k (already toward R), Y (A) = source i reversed,
    # Z (S) = source j reversed: shape (9, 5, 7), spacing (SK, SI, SJ)
    assert vol.shape == (9, 5, 7)
    assert vol.spacing == pytest.approx((SK, SI, SJ))
    expected = np.empty((9, 5, 7), np.float32)
    for x in range(9):
        for y in range(5):
            for z in range(7):
                expected[x, y, z] = data[4 - y, 6 - z, x]
    np.testing.assert_array_equal(vol.array, expected)
    # the canonical affine is diagonal (RAS) with the voxel sizes, and voxel (0,0,0) is the
    # world position of source voxel (i=4, j=6, k=0)
    np.testing.assert_allclose(np.diag(vol.affine)[:3], (SK, SI, SJ))
    corner = affine @ np.array([4, 6, 0, 1.0])
    np.testing.assert_allclose(vol.affine[:3, 3], corner[:3])
    # each canonical voxel sits where its source voxel sits in the world
    src = affine @ np.array([1, 2, 3, 1.0])  # source voxel (1, 2, 3) = canonical (3, 3, 4)
    np.testing.assert_allclose(vol.affine @ np.array([3, 3, 4, 1.0]), src)
    assert vol.array[3, 3, 4] == data[1, 2, 3]


def test_round_trip_to_source_restores_the_stored_layout(tmp_path):
    path, data, _ = _pir_file(tmp_path)
    vol = load_ct(path)
    np.testing.assert_array_equal(vol.to_source(vol.array), data)
    assert vol.source_shape == data.shape
