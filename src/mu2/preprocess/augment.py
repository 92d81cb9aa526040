"""Training augmentation of prepared frames; the caller applies it only when training.

The operations and probabilities follow the reference code's MONAI chain (M3D):
RandRotate90(prob 0.5, in-plane), RandFlip(prob 0.1) on each axis,
RandScaleIntensity(factor 0.1, prob 0.5), RandShiftIntensity(offset 0.1, prob 0.5);
plus the paper's random Gaussian noise. Every random number comes from the generator
passed in, drawn in a fixed order, so a seed reproduces the exact same output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mu2.errors import Mu2Error

REF_CODE_ROT90_PROB = 0.5
REF_CODE_FLIP_PROB = 0.1
REF_CODE_SCALE_FACTOR = 0.1
REF_CODE_SHIFT_OFFSET = 0.1
REF_CODE_INTENSITY_PROB = 0.5
# The paper adds "random noise" without a level; mu2's choice, 2% of the [0, 1] range.
NOISE_STD = 0.02
NOISE_PROB = 0.5


@dataclass
class AugmentConfig:
    """Probabilities and strengths of each random transform (0 switches one off)."""

    rot90_prob: float = REF_CODE_ROT90_PROB
    """In-plane rotation by k * 90 degrees, k in {1, 2, 3}."""
    flip_prob: float = REF_CODE_FLIP_PROB
    """Per axis: depth (all T*K slices), H and W."""
    scale_prob: float = REF_CODE_INTENSITY_PROB
    scale_factor: float = REF_CODE_SCALE_FACTOR
    """x * (1 + u), u ~ U(-scale_factor, scale_factor)."""
    shift_prob: float = REF_CODE_INTENSITY_PROB
    shift_offset: float = REF_CODE_SHIFT_OFFSET
    """x + u, u ~ U(-shift_offset, shift_offset)."""
    noise_prob: float = NOISE_PROB
    noise_std: float = NOISE_STD

    def __post_init__(self) -> None:
        probs = ("rot90_prob", "flip_prob", "scale_prob", "shift_prob", "noise_prob")
        bad = [f"{n}={getattr(self, n)}" for n in probs if not 0.0 <= getattr(self, n) <= 1.0]
        bad += [
            f"{n}={getattr(self, n)}"
            for n in ("scale_factor", "shift_offset", "noise_std")
            if getattr(self, n) < 0
        ]
        if bad:
            raise Mu2Error(
                f"invalid augmentation config: {', '.join(bad)}",
                fix="probabilities lie in [0, 1]; strengths are >= 0",
            )

    @classmethod
    def side_preserving(cls) -> AugmentConfig:
        """Intensity and noise only: flips and 90-degree rotations swap the patient's left
        and right, which would make the labels of lateral findings (renal cyst side,
        pleural effusion side) wrong. The default for report training."""
        return cls(rot90_prob=0.0, flip_prob=0.0)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def augment(frames: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Return an augmented copy of frames (T, K, H, W); the input is never modified."""
    if frames.ndim != 4 or frames.shape[-1] != frames.shape[-2]:
        raise ValueError(f"frames must be (T, K, H, W) with H == W, got {tuple(frames.shape)}")
    g = generator
    # Draw every decision first, in a fixed order, so outputs depend only on the seed.
    rot = float(torch.rand((), generator=g)) < cfg.rot90_prob
    k = int(torch.randint(1, 4, (), generator=g))
    flips = [float(torch.rand((), generator=g)) < cfg.flip_prob for _ in range(3)]
    scale = float(torch.rand((), generator=g)) < cfg.scale_prob
    factor = _uniform(g, -cfg.scale_factor, cfg.scale_factor)
    shift = float(torch.rand((), generator=g)) < cfg.shift_prob
    offset = _uniform(g, -cfg.shift_offset, cfg.shift_offset)
    noise = float(torch.rand((), generator=g)) < cfg.noise_prob

    t, kk, h, w = frames.shape
    out = frames.reshape(t * kk, h, w)  # (T, K, H, W) -> (T*K, H, W), a view
    if rot:
        out = torch.rot90(out, k, dims=(1, 2))
    dims = [d for d, f in zip((0, 1, 2), flips, strict=True) if f]
    if dims:
        out = torch.flip(out, dims)
    out = out.clone() if out.data_ptr() == frames.data_ptr() else out
    if scale:
        out = out * (1.0 + factor)
    if shift:
        out = out + offset
    if noise and cfg.noise_std > 0:
        out = out + cfg.noise_std * torch.randn(out.shape, generator=g, dtype=out.dtype)
    return out.reshape(t, kk, h, w)  # (T*K, H, W) -> (T, K, H, W)
