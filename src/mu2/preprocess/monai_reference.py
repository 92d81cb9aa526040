"""The same preparation written as a MONAI ``Compose``: the reference ``prepare`` must match.

Used by the equivalence test and by benchmarks/bench_preprocess.py (which also times both).
MONAI is imported inside the function: importing it costs seconds, and nothing else in
``mu2.preprocess`` needs it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mu2.io.volume import CTVolume
from mu2.preprocess.config import PrepConfig


def monai_prepare(volume: CTVolume, cfg: PrepConfig) -> torch.Tensor:
    """Frames (T, K, H, W) from MONAI transforms performing mu2's preparation steps.

    MONAI has no "resize the longer in-plane side, keep or cap the depth" mode, so the
    chain runs in two ``Compose`` parts. The Resize target between them is computed here,
    independently of mu2's ``plan`` (a reference must not reuse the code it checks): the
    in-plane size by MONAI's own "longest" rule on a blank slice, the depth written out.
    """
    from monai.transforms import (
        Compose,
        CropForeground,
        Flip,
        Resize,
        ScaleIntensityRange,
        ScaleIntensityRangePercentiles,
        SpatialPad,
        Transpose,
    )

    if cfg.scaling == "percentile":
        lower, upper = cfg.percentiles
        scale: Any = ScaleIntensityRangePercentiles(lower, upper, b_min=0.0, b_max=1.0, clip=True)
    else:
        lo, hi = cfg.window_hu if cfg.scaling == "window" else cfg.clip_hu
        scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)
    first: list[Any] = [scale]
    if cfg.crop_foreground:
        first.append(CropForeground(margin=0))  # select_fn: value > 0 after scaling
    # (X, Y, Z) -> (1, X, Y, Z) channel first
    cropped = Compose(first)(torch.from_numpy(volume.array)[None])
    xc, yc, zc = (int(s) for s in cropped.shape[1:])
    # MONAI's size_mode="longest" on a blank (1, Xc, Yc) slice -> its (W', H')
    w, h = Resize(cfg.size, size_mode="longest")(torch.zeros(1, xc, yc)).shape[1:]
    d = min(zc, cfg.max_frames * cfg.frame_slices)  # keep the depth, or cap it
    frames = math.ceil(d / cfg.frame_slices)
    second = Compose(
        [
            Resize((w, h, d), mode="trilinear", align_corners=False),  # on (1, X, Y, Z)
            Flip(spatial_axis=(0, 1)),  # patient's right and anterior first
            Transpose((0, 3, 2, 1)),  # (1, X, Y, Z) -> (1, Z, Y, X) = (1, D, H, W)
            SpatialPad((frames * cfg.frame_slices, cfg.size, cfg.size), method="symmetric"),
        ]
    )
    out = torch.as_tensor(second(cropped))  # (1, T*K, H, W)
    # (1, T*K, H, W) -> (T, K, H, W)
    return out.reshape(frames, cfg.frame_slices, cfg.size, cfg.size).float()
