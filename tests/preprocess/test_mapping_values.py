"""Values of the preparation geometry, each worked out by hand (no call into the plan).

Edges the other preprocessing tests never reach: a volume with no foreground, a voxel
exactly at the threshold, an odd centred padding, a constant volume under percentile
scaling (span 0) and a narrow percentile window (span below 1 HU).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mu2.io import CTVolume
from mu2.preprocess import prep_config, prepare
from mu2.preprocess.mapping import resize_clipped, trilinear_z_chunks
from mu2.preprocess.prepare import foreground_box, plan, prep_mapping

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


# --- the optional target spacing, thin slabs, label maps and the nearest way back ---------


def test_plan_with_a_target_spacing_sizes_the_crop_in_mm():
    cfg = dataclasses.replace(TINY, target_spacing=(2.0, 2.0, 1.5))
    # crop 30 x 20 x 26 voxels of 1 x 1 x 3 mm = 30 x 20 x 78 mm -> 15 x 10 x 52 voxels at
    # the target; in-plane 64 / 15: H' = round(10 * 64 / 15) = 43, W' = 64; 52 slices -> T=4
    assert plan((30, 20, 26), cfg, (1.0, 1.0, 3.0)) == ((52, 43, 64), 4)
    # per axis: 30 x 4 mm -> 60 voxels, 20 x 1 mm -> 10, 26 x 1.5 mm -> 26; 64 / 60
    assert plan((30, 20, 26), cfg, (4.0, 1.0, 1.5)) == ((26, 11, 64), 2)
    # a single 1 mm slice at 3 mm rounds to 0 voxels: kept as one
    thin = dataclasses.replace(TINY, target_spacing=(1.0, 1.0, 3.0))
    assert plan((30, 20, 1), thin, (1.0, 1.0, 1.0)) == ((1, 43, 64), 1)
    # without a spacing the voxel grid is kept
    assert plan((30, 20, 26), cfg) == ((26, 43, 64), 2)
    with pytest.raises(ValueError):  # a spacing that is not 3 values is refused, not cut
        plan((30, 20, 26), cfg, (1.0, 1.0, 1.0, 1.0))


def test_prepare_and_prep_mapping_resample_to_the_target_spacing():
    arr = np.full((30, 20, 26), 40.0, np.float32)
    vol = CTVolume.from_array(arr, (1.0, 1.0, 3.0))
    cfg = dataclasses.replace(TINY, target_spacing=(2.0, 2.0, 1.5), crop_foreground=False)
    mapping, _ = prep_mapping(vol, cfg)
    assert mapping.resized == (52, 43, 64) and mapping.frames == 4
    assert prepare(vol, cfg).mapping == mapping


def test_slabs_thinner_than_one_output_pixel_keep_one_pixel():
    # 300 x 2 voxels in-plane: 2 * 64 / 300 rounds to 0 rows -> 1
    assert plan((300, 2, 20), TINY) == ((20, 1, 64), 2)
    assert plan((2, 300, 20), TINY) == ((20, 64, 1), 2)


def test_prep_mapping_agrees_with_prepare_on_a_float64_array():
    # a CTVolume built directly from nibabel's get_fdata() holds float64; both convert to
    # float32 first, so a voxel 1e-9 HU above the window's lower end is background in both
    arr = np.full((12, 12, 12), -1000.0, np.float64)
    arr[3:9, 3:9, 3:9] = 40.0
    arr[0, 0, 0] = -160.0 + 1e-9  # window_hu lower end -160, == -160 in float32
    vol = CTVolume(array=arr, spacing=(1.0, 1.0, 1.0), affine=np.eye(4))
    mapping, _ = prep_mapping(vol, TINY)
    assert mapping.crop == ((3, 9), (3, 9), (3, 9))
    assert prepare(vol, TINY).mapping == mapping


def _frames_reference(arr: np.ndarray, mapping, mode: str) -> np.ndarray:
    """Crop -> F.interpolate -> (D, H', W') with rows anterior-first and columns
    right-first -> centred zero padding, written out with torch / NumPy."""
    (x0, x1), (y0, y1), (z0, z1) = mapping.crop
    d, h, w = mapping.resized
    t = torch.as_tensor(arr[x0:x1, y0:y1, z0:z1].astype(np.float32))[None, None]
    kw = {"align_corners": False} if mode == "trilinear" else {}
    block = F.interpolate(t, size=(w, h, d), mode=mode, **kw)[0, 0].numpy()  # (W', H', D)
    block = block.transpose(2, 1, 0)[:, ::-1, ::-1]  # (D, H', W')
    out = np.zeros((mapping.frames * mapping.frame_slices, mapping.size, mapping.size), np.float32)
    od, oh, ow = mapping.offset
    out[od : od + d, oh : oh + h, ow : ow + w] = block
    return out.reshape(mapping.frames_shape)


def test_to_frames_of_a_label_map_against_f_interpolate():
    rng = np.random.default_rng(3)
    arr = np.full((30, 50, 20), -1000.0, np.float32)
    arr[5:25, 0:40, 0:20] = 40.0
    mapping, _ = prep_mapping(CTVolume.from_array(arr), TINY)  # crop 20 x 40 x 20 -> 64 x 32
    labels = rng.integers(0, 3, size=arr.shape).astype(np.uint8)  # an organ label map
    smooth = mapping.to_frames(labels)  # default trilinear, uint8 taken as float
    np.testing.assert_allclose(
        smooth.numpy(), _frames_reference(labels, mapping, "trilinear"), rtol=0, atol=1e-6
    )
    near = mapping.to_frames(labels, mode="nearest")
    np.testing.assert_array_equal(near.numpy(), _frames_reference(labels, mapping, "nearest"))
    assert smooth.dtype == near.dtype == torch.float32
    assert mapping.to_frames(labels.astype(bool)).equal(mapping.to_frames(labels > 0))


def test_to_input_nearest_and_an_integer_map_against_f_interpolate():
    arr = np.full((30, 50, 20), -1000.0, np.float32)
    arr[5:25, 0:40, 0:20] = 40.0
    mapping, _ = prep_mapping(CTVolume.from_array(arr), TINY)
    rng = np.random.default_rng(4)
    heat = rng.integers(0, 5, size=mapping.frames_shape).astype(np.int64)  # a label map
    d, h, w = mapping.resized
    od, oh, ow = mapping.offset
    inner = heat.reshape(-1, 64, 64)[od : od + d, oh : oh + h, ow : ow + w]  # (D, H', W')
    xyz = np.ascontiguousarray(inner[:, ::-1, ::-1].transpose(2, 1, 0)).astype(np.float32)
    (x0, x1), (y0, y1), (z0, z1) = mapping.crop
    for mode in ("nearest", "trilinear"):
        kw = {"align_corners": False} if mode == "trilinear" else {}
        ref = np.zeros(arr.shape, np.float32)
        ref[x0:x1, y0:y1, z0:z1] = F.interpolate(
            torch.from_numpy(xyz)[None, None], size=(x1 - x0, y1 - y0, z1 - z0), mode=mode, **kw
        )[0, 0].numpy()
        back = mapping.to_input(heat, mode=mode)
        assert back.dtype == np.float32
        np.testing.assert_allclose(back, ref, rtol=0, atol=2e-6)


def test_a_long_axis_is_resampled_in_float64_index_precision():
    # 3000 -> 4001 slices: the source index (z + 0.5) * 3000 / 4001 - 0.5 in float32 is off
    # by up to ~1e-4 slice, i.e. ~0.1 HU between slices 1000 HU apart
    zs, zo = 3000, 4001
    vals = np.where(np.arange(zs) % 2 == 0, 0.0, 1000.0)
    block = torch.tensor(vals, dtype=torch.float32).view(1, 1, zs)
    src = np.maximum((np.arange(zo, dtype=np.float64) + 0.5) * zs / zo - 0.5, 0.0)
    ref = np.interp(src, np.arange(zs), vals)  # linear, edge-clamped: align_corners=False
    got = torch.cat([c for _, c in trilinear_z_chunks(block, (1, 1, zo), 512)], dim=2)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy()[0, 0], ref, rtol=0, atol=2e-3)
    one = list(trilinear_z_chunks(block[..., :5], (1, 1, 7), 1))  # one slice per chunk
    assert [s.start for s, _ in one] == list(range(7)) and all(c.shape[2] == 1 for _, c in one)


def test_resize_clipped_is_float32_whatever_the_default_dtype():
    block = torch.linspace(-2000, 2000, 4 * 5 * 6, dtype=torch.float32).view(4, 5, 6)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = resize_clipped(block, (3, 3, 9), (-1000.0, 1000.0))
    finally:
        torch.set_default_dtype(old)
    ref = F.interpolate(
        block.clamp(-1000, 1000)[None, None], size=(3, 3, 9), mode="trilinear", align_corners=False
    )[0, 0]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-3)
