"""The same preparation written as a MONAI ``Compose``: the reference ``prepare`` must match.

Used by the equivalence test and by benchmarks/bench_preprocess.py (which also times both).
MONAI is imported inside the function: importing it costs seconds, and nothing else in
``mu2.preprocess`` needs it.
"""

from __future__ import annotations

import torch

from mu2.io.volume import CTVolume
from mu2.preprocess.config import PrepConfig
from mu2.preprocess.prepare import plan


def monai_prepare(volume: CTVolume, cfg: PrepConfig) -> torch.Tensor:
    """Frames (T, K, H, W) from MONAI transforms performing mu2's preparation steps.

    MONAI has no "resize the longer in-plane side, keep or cap the depth" mode, so the
    chain runs in two ``Compose`` parts and the Resize target between them is computed
    with mu2's own rule (``plan``), from the cropped shape.
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
        scale = ScaleIntensityRangePercentiles(lower, upper, b_min=0.0, b_max=1.0, clip=True)
    else:
        lo, hi = cfg.window_hu if cfg.scaling == "window" else cfg.clip_hu
        scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)
    first = [scale]
    if cfg.crop_foreground:
        first.append(CropForeground(margin=0))  # select_fn: value > 0 after scaling
    # (X, Y, Z) -> (1, X, Y, Z) channel first
    cropped = Compose(first)(torch.from_numpy(volume.array)[None])
    (d, h, w), frames = plan(tuple(int(s) for s in cropped.shape[1:]), cfg)
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
