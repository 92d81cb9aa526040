"""Mu2Prepared in a MONAI pipeline (LoadImaged -> Orientationd -> Mu2Prepared) equals
``prepare(load_ct(path))`` within 1e-6, for NIfTI and a DICOM series, in any orientation;
and the optional target-spacing resampling (off by default)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, LoadImaged, Orientationd

from mu2.errors import Mu2Error
from mu2.io import CTVolume, load_ct
from mu2.preprocess import PrepConfig, prep_config, prepare
from mu2.preprocess.monai_transform import Mu2Prepared

TOLERANCE = 1e-6


@pytest.mark.parametrize("axcodes", ["RAS", "LPS", None])
def test_pipeline_equals_prepare(real_ct_path, axcodes):
    cfg = prep_config("tiny")
    steps = [LoadImaged("image", ensure_channel_first=True)]
    if axcodes:
        steps.append(Orientationd("image", axcodes=axcodes))
    out = Compose([*steps, Mu2Prepared("image", prep=cfg)])({"image": str(real_ct_path)})
    expected = prepare(load_ct(real_ct_path), cfg)
    assert out["image"].shape == expected.frames.shape
    assert float((torch.as_tensor(out["image"]) - expected.frames).abs().max()) <= TOLERANCE
    assert out["image_prepared"].mapping == expected.mapping


def test_dicom_series_in_a_data_loader(data_dir):
    series = data_dir / "real-ct" / "example_ct_dicom"
    pipeline = Compose(
        [
            LoadImaged("image", ensure_channel_first=True, reader="PydicomReader"),
            Mu2Prepared("image", prep="tiny", keep_prepared=False),
        ]
    )
    loader = DataLoader(Dataset([{"image": str(series)}], transform=pipeline), batch_size=1)
    frames = next(iter(loader))["image"][0]  # (T, K, H, W)
    expected = prepare(load_ct(series), prep_config("tiny")).frames
    assert float((torch.as_tensor(frames) - expected).abs().max()) <= TOLERANCE


def test_plain_tensor_is_refused():
    with pytest.raises(Mu2Error, match="carries no affine"):
        Mu2Prepared("image", prep="tiny")({"image": torch.zeros(1, 8, 8, 8)})


def test_target_spacing_is_off_by_default_and_resamples_when_set():
    assert PrepConfig().target_spacing is None and prep_config("paper").target_spacing is None
    rng = np.random.default_rng(0)
    arr = np.full((40, 40, 30), -1000.0, np.float32)
    arr[5:35, 5:35, 2:28] = rng.normal(40, 20, (30, 30, 26))
    thin, thick = (
        CTVolume.from_array(arr, (1.0, 1.0, 1.0)),
        CTVolume.from_array(arr, (1.0, 1.0, 3.0)),
    )
    cfg = prep_config("tiny")
    assert prepare(thin, cfg).mapping.resized == prepare(thick, cfg).mapping.resized  # grid kept
    resample = dataclasses.replace(cfg, target_spacing=(1.0, 1.0, 1.5))
    # 26 slices of 1 mm -> 17 slices of 1.5 mm; of 3 mm -> 52 slices
    assert prepare(thin, resample).mapping.resized[0] == 17
    assert prepare(thick, resample).mapping.resized[0] == 52
    with pytest.raises(Mu2Error, match="target_spacing"):
        PrepConfig(target_spacing=(1.0, 0.0, 1.0))
