"""prepare(): frame count from depth, aspect, scaling, axis convention and the way back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mu2.config import from_dict
from mu2.errors import Mu2Error
from mu2.io import CTVolume, load_ct
from mu2.preprocess import PrepConfig, prep_config, prepare


def _phantom(shape, spacing=(1.0, 1.0, 1.0), seed=0):
    """Air around a fat box with muscle inside: realistic HU, known foreground box."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, -1000.0, np.float32)
    x, y, z = shape
    vol[x // 8 : x - x // 8, y // 6 : y - y // 6, :] = -100.0
    vol[x // 4 : x - x // 4, y // 4 : y - y // 4, :] = 40.0
    vol += rng.normal(0, 5, shape).astype(np.float32)
    return CTVolume.from_array(vol, spacing)


@pytest.mark.parametrize(
    ("depth", "k", "max_t", "expected_t"),
    [
        (40, 32, 8, 2),
        (32, 32, 8, 1),
        (33, 32, 8, 2),
        (256, 32, 8, 8),
        (300, 32, 8, 8),
        (20, 16, 4, 2),
    ],
)
def test_frames_follow_depth(depth, k, max_t, expected_t):
    cfg = PrepConfig(frame_slices=k, size=32, max_frames=max_t)
    out = prepare(_phantom((40, 36, depth)), cfg)
    assert out.frames.shape == (expected_t, k, 32, 32)
    assert out.frames.dtype == torch.float32
    kept = min(depth, max_t * k)
    assert out.mapping.resized[0] == kept


def test_depth_kept_and_zero_padded_when_it_fits():
    vol = _phantom((40, 36, 40))
    out = prepare(vol, PrepConfig(frame_slices=32, size=32, max_frames=8))
    flat = out.frames.reshape(64, 32, 32)  # (T*K, H, W)
    filled = flat.amax(dim=(1, 2)) > 0
    assert int(filled.sum()) == 40  # the 40 slices, unresized
    assert not filled[:12].any() and not filled[52:].any()  # centred: 12 + 40 + 12


def test_aspect_kept_longest_side_fills_the_frame():
    vol = CTVolume.from_array(np.full((80, 40, 8), 40.0, np.float32))  # tissue everywhere
    out = prepare(vol, PrepConfig(frame_slices=8, size=32, max_frames=1))
    d, h, w = out.mapping.resized
    assert (d, h, w) == (8, 16, 32)  # 80 x 40 in-plane -> W 32, H 16
    rows = out.frames[0].amax(dim=(0, 2)) > 0  # (H,)
    assert int(rows.sum()) == 16 and rows[8:24].all()  # centred: 8 + 16 + 8


def test_values_in_unit_range_and_window_keeps_soft_tissue_contrast():
    vol = _phantom((48, 48, 16))
    for scaling in ("window", "minmax", "percentile"):
        cfg = dataclasses.replace(prep_config("tiny"), scaling=scaling)
        frames = prepare(vol, cfg).frames
        assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    window = prepare(vol, prep_config("tiny"))
    fat = (-100 + 160) / 400
    muscle = (40 + 160) / 400
    centre = window.frames[0, 8, 32, 32].item()
    assert centre == pytest.approx(muscle, abs=0.03)
    assert window.hu_range == (-160.0, 240.0)
    assert muscle - fat == pytest.approx(0.35)


def test_foreground_crop_drops_air():
    vol = _phantom((64, 64, 16))
    out = prepare(vol, PrepConfig(frame_slices=16, size=32, max_frames=1))
    (x0, x1), (y0, y1), (z0, z1) = out.mapping.crop
    assert (x0, x1) == (8, 56) and (y0, y1) == (10, 54) and (z0, z1) == (0, 16)


def test_axis_convention_radiological_display():
    """K inferior->superior, H anterior->posterior (anterior up), W patient right->left."""
    arr = np.full((32, 32, 32), -1000.0, np.float32)
    arr[2:30, 2:30, 2:30] = 0.0  # body
    arr[26:29, 26:29, 26:29] = 200.0  # far Right (x high), Anterior (y high), Superior (z high)
    out = prepare(CTVolume.from_array(arr), PrepConfig(frame_slices=32, size=32, max_frames=1))
    k, h, w = np.unravel_index(int(out.frames[0].argmax()), (32, 32, 32))
    assert k > 16  # superior slices come last
    assert h < 16  # anterior at the top
    assert w < 16  # patient's right on the image's left


def test_blob_maps_to_frames_and_back_to_the_same_place():
    arr = np.full((90, 70, 45), -1000.0, np.float32)
    arr[5:85, 5:65, :] = 0.0
    centre = (60, 20, 30)
    x, y, z = np.ogrid[:90, :70, :45]
    blob = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= 16
    arr[blob] = 200.0
    vol = CTVolume.from_array(arr)
    out = prepare(vol, PrepConfig(frame_slices=16, size=48, max_frames=2))  # depth 45 -> 32
    assert out.frames.shape == (2, 16, 48, 48)
    back = out.to_input(out.frames.numpy())
    assert back.shape == vol.shape
    peak = np.unravel_index(int(np.argmax(back * blob)), back.shape)
    assert np.abs(np.array(peak) - np.array(centre)).max() <= 2
    mass = np.argwhere(back > 0.9 * back.max()).mean(0)
    np.testing.assert_allclose(mass, centre, atol=1.5)
    assert back[:5].max() == 0.0  # outside the crop box


def test_to_frames_nearest_keeps_labels():
    vol = _phantom((40, 40, 20))
    out = prepare(vol, PrepConfig(frame_slices=16, size=32, max_frames=2))
    labels = np.zeros(vol.shape, np.float32)
    labels[15:25, 15:25, 5:15] = 3.0
    mapped = out.mapping.to_frames(labels, mode="nearest")
    assert mapped.shape == out.frames.shape
    assert set(torch.unique(mapped).tolist()) == {0.0, 3.0}


def test_prep_mapping_is_the_mapping_prepare_uses(data_dir):
    from mu2.preprocess.prepare import prep_mapping

    for vol, cfg in (
        (_phantom((40, 40, 20)), PrepConfig(frame_slices=16, size=32, max_frames=2)),
        (load_ct(data_dir / "real-ct" / "example_ct.nii.gz"), prep_config("tiny")),
    ):
        out = prepare(vol, cfg)
        assert prep_mapping(vol, cfg) == (out.mapping, out.hu_range)


def test_real_ct_tiny_is_fast_and_shaped(data_dir):
    vol = load_ct(data_dir / "real-ct" / "example_ct_sm.nii.gz")
    out = prepare(vol, prep_config("tiny"))
    assert out.frames.shape == (2, 16, 64, 64)  # 30 slices at K=16


def test_config_validation_and_yaml_loading():
    with pytest.raises(Mu2Error, match="frame_slices"):
        PrepConfig(frame_slices=0)
    with pytest.raises(Mu2Error, match="window_hu"):
        PrepConfig(window_hu=(240.0, -160.0))
    with pytest.raises(Mu2Error, match="paper"):
        prep_config("huge")
    cfg = from_dict(PrepConfig, {"scaling": "percentile", "percentiles": [1, 99], "size": 128})
    assert cfg.percentiles == (1.0, 99.0) and cfg.size == 128
    with pytest.raises(Mu2Error, match="choose one of"):
        from_dict(PrepConfig, {"scaling": "zscore"})
    paper = prep_config("paper")
    assert (paper.frame_slices, paper.size, paper.max_frames) == (32, 256, 8)
