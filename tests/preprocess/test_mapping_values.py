"""Values of the preparation geometry, each worked out by hand (no call into the plan).

Edges the other preprocessing tests never reach: a volume with no foreground, a voxel
exactly at the threshold, an odd centred padding, a constant volume under percentile
scaling (span 0) and a narrow percentile window (span below 1 HU).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mu2.io import CTVolume
from mu2.preprocess import prep_config, prepare
from mu2.preprocess.prepare import foreground_box, prep_mapping

TINY = prep_config("tiny")  # K=16, 64 x 64


def test_no_voxel_above_the_threshold_keeps_the_whole_grid():
    air = np.full((5, 6, 7), -1000.0, np.float32)
    assert foreground_box(air, -900.0) == ((0, 5), (0, 6), (0, 7))


def test_a_voxel_exactly_at_the_threshold_is_background():
    arr = np.full((8, 9, 10), -1000.0, np.float32)
    arr[2:5, 3:6, 4:7] = 40.0  # the body
    arr[3, 4, 0] = -500.0  # == lo, inside the in-plane box, on slice 0
    assert foreground_box(arr, -500.0) == ((2, 5), (3, 6), (4, 7))


def test_centred_padding_offsets_on_a_tall_narrow_crop():
    arr = np.full((30, 50, 20), -1000.0, np.float32)
    arr[5:25, 0:40, 0:20] = 40.0  # crop 20 (X) x 40 (Y) x 20 (Z)
    mapping, _ = prep_mapping(CTVolume.from_array(arr), TINY)
    # scale 64 / 40: H' = 64, W' = 32; depth 20 -> 2 frames of 16 = 32 slices
    assert mapping.crop == ((5, 25), (0, 40), (0, 20))
    assert mapping.resized == (20, 64, 32) and mapping.frames == 2
    assert mapping.offset == (6, 0, 16)  # (32 - 20) // 2, (64 - 64) // 2, (64 - 32) // 2
    frames = prepare(CTVolume.from_array(arr), TINY).frames  # (2, 16, 64, 64)
    cols = np.flatnonzero(frames.reshape(32, 64, 64).amax(dim=(0, 1)).numpy() > 0)
    assert (cols[0], cols[-1]) == (16, 47)


def test_heat_map_back_to_the_input_grid_is_float32():
    arr = np.full((30, 50, 20), -1000.0, np.float32)
    arr[5:25, 0:40, 0:20] = 40.0
    mapping, _ = prep_mapping(CTVolume.from_array(arr), TINY)
    back = mapping.to_input(np.ones(mapping.frames_shape, np.float64))
    assert back.dtype == np.float32 and back.shape == (30, 50, 20)
    # resampled in chunks: a constant map comes back within float32 rounding of itself
    assert abs(back[5:25, 0:40].min() - 1.0) < 1e-6 and back[:5].max() == 0.0
    with pytest.raises(ValueError, match=r"heat map shape \(2, 16\) != frames \(2, 16, 64, 64\)"):
        mapping.to_input(np.ones((2, 16)))


def test_constant_volume_under_percentile_scaling_gives_zeros():
    cfg = dataclasses.replace(TINY, scaling="percentile", crop_foreground=False)
    frames = prepare(CTVolume.from_array(np.full((8, 8, 8), 40.0, np.float32)), cfg).frames
    assert np.isfinite(frames.numpy()).all() and float(frames.abs().max()) == 0.0


def test_a_window_narrower_than_one_hu_still_scales_to_zero_one():
    arr = np.zeros((8, 8, 8), np.float32)
    arr[:, :, 4:] = 0.5  # two tissues 0.5 HU apart: percentiles (0, 100) -> [0, 0.5]
    cfg = dataclasses.replace(
        TINY, scaling="percentile", percentiles=(0.0, 100.0), crop_foreground=False
    )
    out = prepare(CTVolume.from_array(arr), cfg)
    assert out.hu_range == (0.0, 0.5)
    assert float(out.frames.max()) == 1.0  # the 0.5 HU half becomes 1, not 0.5
