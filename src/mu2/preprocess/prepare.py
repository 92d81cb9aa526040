"""``prepare``: a CTVolume -> model frames (T, K, H, W) in [0, 1], plus the way back.

Steps (the same operations as the MONAI chain ScaleIntensityRange(clip) ->
CropForeground -> Resize(trilinear) -> Flip/Transpose -> SpatialPad written out in
mu2.preprocess.monai_reference; the test and benchmarks/bench_preprocess.py compare them):
1. HU range [lo, hi] from the config (window, paper clip range or percentiles).
2. Foreground box: voxels with HU > lo (i.e. > 0 after scaling), over all three axes.
3. Crop, clip to [lo, hi].
4. Resize in-plane so the longer side is H (aspect kept); keep the depth when it fits
   in max_frames * K slices, else resize it to that; one trilinear interpolation.
5. Reorient to display axes (mu2.preprocess.mapping), zero-pad to (T*K, H, W).
6. Scale to [0, 1]: linear, so it commutes with the interpolation and runs on the
   smaller resized block instead of the whole input.
T = ceil(depth / K), capped at max_frames: a 40-slice CT gives T=2 at K=32.
With ``target_spacing`` (off by default) step 4 sizes the crop by its extent in mm at that
spacing instead of its voxel counts, so the same interpolation also resamples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mu2.io.volume import CTVolume
from mu2.preprocess.config import PrepConfig
from mu2.preprocess.mapping import Box, PrepMapping, resize_clipped


@dataclass
class Prepared:
    """Model input frames and the mapping back to the input scan."""

    frames: torch.Tensor
    """float32 (T, K, H, W) in [0, 1]; axes as documented in mu2.preprocess.mapping."""
    mapping: PrepMapping
    hu_range: tuple[float, float]
    """The HU values mapped to 0 and 1."""

    def to_input(self, heat: np.ndarray | torch.Tensor) -> np.ndarray:
        """(T, K, H, W) -> (X, Y, Z) shaped like the input volume's array."""
        return self.mapping.to_input(heat)


def hu_range(array: np.ndarray, cfg: PrepConfig) -> tuple[float, float]:
    """The [lo, hi] HU range that becomes [0, 1]."""
    if cfg.scaling == "window":
        return float(cfg.window_hu[0]), float(cfg.window_hu[1])
    if cfg.scaling == "minmax":
        return float(cfg.clip_hu[0]), float(cfg.clip_hu[1])
    lo, hi = np.percentile(array, cfg.percentiles)  # linear interpolation, as numpy/MONAI
    # rounded to float32, the precision the voxels are compared and scaled in
    return float(np.float32(lo)), float(np.float32(hi))


def foreground_box(array: np.ndarray, lo: float) -> Box:
    """Bounding box (end exclusive) of voxels > lo; the whole grid when there are none.

    Two max-projections instead of a full boolean mask: the (X, Y) projection gives the
    in-plane box, the Z profile is then taken over that box only.
    """
    xy = array.max(axis=2) > lo  # (X, Y, Z) -> (X, Y)
    if not xy.any():
        return tuple((0, int(n)) for n in array.shape)  # type: ignore[return-value]
    xs, ys = np.flatnonzero(xy.any(axis=1)), np.flatnonzero(xy.any(axis=0))
    x0, x1, y0, y1 = int(xs[0]), int(xs[-1]) + 1, int(ys[0]), int(ys[-1]) + 1
    zs = np.flatnonzero(array[x0:x1, y0:y1].max(axis=(0, 1)) > lo)  # (Z,)
    return (x0, x1), (y0, y1), (int(zs[0]), int(zs[-1]) + 1)


def plan(
    crop_shape: tuple[int, int, int],
    cfg: PrepConfig,
    spacing: tuple[float, float, float] | None = None,
) -> tuple[tuple[int, int, int], int]:
    """Resized (D, H', W') and frame count T for a cropped block of shape (X, Y, Z)
    (of voxel ``spacing`` mm, used only with ``cfg.target_spacing``)."""
    if cfg.target_spacing is not None and spacing is not None:
        # voxel counts of the crop resampled to the target spacing (at least one)
        crop_shape = tuple(  # type: ignore[assignment]
            max(1, int(round(n * s / t)))
            for n, s, t in zip(crop_shape, spacing, cfg.target_spacing, strict=True)
        )
    xc, yc, zc = crop_shape
    scale = cfg.size / max(xc, yc)  # longer in-plane side -> size (MONAI "longest" rounding)
    # at least one pixel: a slab thinner than one output pixel (300 x 2 x 20) must not ask
    # the resize for an empty axis
    h, w = max(1, int(round(yc * scale))), max(1, int(round(xc * scale)))
    depth = zc if zc <= cfg.max_slices else cfg.max_slices
    frames = min(math.ceil(depth / cfg.frame_slices), cfg.max_frames)
    return (depth, h, w), frames


def prep_mapping(volume: CTVolume, cfg: PrepConfig) -> tuple[PrepMapping, tuple[float, float]]:
    """Where ``prepare`` puts the volume, and its HU range, without making the frames (e.g.
    to take a label map of the same grid along: ``mapping.to_frames``)."""
    return _plan_mapping(np.asarray(volume.array, dtype=np.float32), cfg, volume.spacing)


def _plan_mapping(
    arr: np.ndarray, cfg: PrepConfig, spacing: tuple[float, float, float] | None = None
) -> tuple[PrepMapping, tuple[float, float]]:
    """(X, Y, Z) HU float32 array -> mapping and HU range (the array is converted once)."""
    lo, hi = hu_range(arr, cfg)
    box = foreground_box(arr, lo) if cfg.crop_foreground else tuple((0, n) for n in arr.shape)
    (z0, z1), (y0, y1), (x0, x1) = box
    resized, n_frames = plan((z1 - z0, y1 - y0, x1 - x0), cfg, spacing)
    d, h, w = resized
    total = n_frames * cfg.frame_slices
    offset = ((total - d) // 2, (cfg.size - h) // 2, (cfg.size - w) // 2)  # centred padding
    mapping = PrepMapping(
        input_shape=(int(arr.shape[0]), int(arr.shape[1]), int(arr.shape[2])),
        crop=box,  # type: ignore[arg-type]
        resized=resized,
        offset=offset,
        frames=n_frames,
        frame_slices=cfg.frame_slices,
        size=cfg.size,
    )
    return mapping, (lo, hi)


def prepare(volume: CTVolume, cfg: PrepConfig) -> Prepared:
    """Turn a canonical CT volume into frames (T, K, H, W) for the vision tower."""
    arr = np.asarray(volume.array, dtype=np.float32)  # (X, Y, Z) HU
    mapping, (lo, hi) = _plan_mapping(arr, cfg, volume.spacing)
    (x0, x1), (y0, y1), (z0, z1) = mapping.crop
    # (Xc, Yc, Zc): a view of the crop; clipped slab by slab while resizing, so neither the
    # input is modified nor a clipped copy of the whole crop made
    crop = torch.from_numpy(arr[x0:x1, y0:y1, z0:z1])
    d, h, w = mapping.resized
    total = mapping.frames * cfg.frame_slices
    od, oh, ow = mapping.offset
    block = resize_clipped(crop, (w, h, d), (lo, hi))  # (Xc, Yc, Zc) -> (W', H', D)
    frames = mapping.place(block)  # (T, K, H, W), HU inside the block, 0 in the padding
    inner = frames.view(total, cfg.size, cfg.size)[od : od + d, oh : oh + h, ow : ow + w]
    span = hi - lo
    if span > 0:
        # min-max to [0, 1] (linear, so it commutes with the interpolation); the clamp
        # only guards float rounding of interpolated values
        inner.sub_(lo).div_(span).clamp_(0.0, 1.0)
    else:
        inner.zero_()
    return Prepared(frames=frames, mapping=mapping, hu_range=(lo, hi))
