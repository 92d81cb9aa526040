"""Training reads a row's image through the row reader: its ``meta`` is applied once.

One real CT, written three ways as the data sets ship it: plain HU (AMOS-MM style),
CT-RATE v1 raw stored values with the rescale slope/intercept in the row's ``meta``, and
an M3D-Cap array already scaled to [0, 1], saved as (1, D, H, W) ``.npy``. The training
dataset must give the same prepared frames for all three.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from mu2.train.config import DataOptions
from mu2.train.sft import make_dataset

SLOPE, INTERCEPT = 1.0, -1024.0  # CT-RATE v1 / typical DICOM rescale
WINDOW = (-160.0, 240.0)  # the tiny prep's HU window: the M3D-style array is scaled with it


@pytest.fixture()
def rows(tmp_path, data_dir):
    """train.jsonl with the same scan as an HU NIfTI, a raw-stored NIfTI and a unit npy."""
    src = nib.load(data_dir / "real-ct" / "example_ct_sm.nii.gz")
    assert nib.aff2axcodes(src.affine) == ("R", "A", "S")  # so array axes are (X, Y, Z)
    hu = np.asanyarray(src.dataobj).astype(np.float32)  # (X, Y, Z) HU, integer-valued

    nib.save(nib.Nifti1Image(hu.astype(np.int16), src.affine), tmp_path / "hu.nii.gz")
    # CT-RATE v1: raw stored values, no rescale in the header; the CSV holds slope/intercept
    raw = ((hu - INTERCEPT) / SLOPE).astype(np.int16)
    raw_img = nib.Nifti1Image(raw, src.affine)
    raw_img.header.set_slope_inter(1.0, 0.0)
    nib.save(raw_img, tmp_path / "raw.nii.gz")
    # M3D-Cap: (1, D, H, W) float32 in [0, 1]; D, H, W = Z, Y, X of the canonical grid
    unit = np.clip((hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0.0, 1.0)
    np.save(tmp_path / "Axial.npy", unit.transpose(2, 1, 0)[None].astype(np.float32))

    base = {"question": "Describe.", "answer": "Normal."}
    lines = [
        {"id": "hu", "image": "hu.nii.gz", **base},
        {
            "id": "v1",
            "image": "raw.nii.gz",
            "meta": {"rescale_slope": SLOPE, "rescale_intercept": INTERCEPT, "hu_already": False},
            **base,
        },
        {"id": "m3d", "image": "Axial.npy", "meta": {"intensity": "unit"}, **base},
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_meta_rows_give_the_frames_of_the_hu_volume(rows, tmp_path, cache):
    data = DataOptions(
        train=str(rows), prep="tiny", augment=False, cache=cache,
        cache_dir=str(tmp_path / "cache"), cache_dtype="float32",
    )  # fmt: skip
    ds = make_dataset(str(rows), data, seed=0, train=True, required=("image",))
    hu, v1, m3d = (ds[i]["frames"] for i in range(3))
    assert hu.shape == (2, 16, 64, 64)  # 30 slices -> T = 2 frames of 16
    assert hu.std() > 0.1  # real contrast, not a flat volume
    torch.testing.assert_close(v1, hu, rtol=0, atol=1e-6)
    torch.testing.assert_close(m3d, hu, rtol=0, atol=1e-5)
