"""prepare() performs the same operations as the MONAI chain: outputs equal within 1e-5."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mu2.io import CTVolume, load_ct
from mu2.preprocess import PrepConfig, prep_config, prepare
from mu2.preprocess.monai_reference import monai_prepare

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def volumes(data_dir):
    rng = np.random.default_rng(3)
    odd = np.full((75, 53, 41), -1000.0, np.float32)  # odd sizes: uneven padding
    odd[7:70, 9:44, 3:39] = rng.normal(20, 80, (63, 35, 36))
    return {
        "real_ct": load_ct(data_dir / "real-ct" / "example_ct.nii.gz"),
        "odd_phantom": CTVolume.from_array(odd, (0.8, 0.8, 2.0)),
    }


@pytest.mark.parametrize("scaling", ["window", "minmax", "percentile"])
@pytest.mark.parametrize("name", ["real_ct", "odd_phantom"])
def test_matches_monai(volumes, name, scaling):
    cfg = dataclasses.replace(prep_config("tiny"), scaling=scaling)
    ours = prepare(volumes[name], cfg).frames
    ref = monai_prepare(volumes[name], cfg)
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) <= TOLERANCE


def test_matches_monai_paper_size_without_crop(volumes):
    cfg = PrepConfig(crop_foreground=False)
    ours = prepare(volumes["real_ct"], cfg).frames
    ref = monai_prepare(volumes["real_ct"], cfg)
    assert ours.shape == ref.shape == (4, 32, 256, 256)
    assert float((ours - ref).abs().max()) <= TOLERANCE
