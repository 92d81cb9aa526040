"""Volume preparation settings: paper defaults, named as such, and the tiny test size.

The paper views a CT as T frames of K slices of H x W pixels: (T=8, K=32, 256, 256).
Intensities are clipped to an HU range and min-max scaled to [0, 1]; the range comes
from one of three ``scaling`` modes: a fixed HU window (default: soft tissue, which keeps
organ contrast), the paper's wide clip range, or the reference code's percentiles.

A preparation is named ``SIZE`` or ``SIZE:SCALING`` (``paper:percentile``): the name is
saved with a model, so inference prepares volumes exactly as its training did. The paper
configs use ``paper:percentile``: the M3D-CLIP tower was pretrained on M3D-Cap arrays that
are min-max scaled per volume (display images / 255, then minus min, over max), and the
reference code's per-volume percentile scaling is that input distribution's HU analogue;
the soft-tissue window stays available as ``paper:window``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mu2.errors import Mu2Error

PAPER_FRAME_SLICES = 32  # K: slices per frame (one ViT3D input)
PAPER_SIZE = 256  # H = W: in-plane size
PAPER_MAX_FRAMES = 8  # T: at most 8 frames -> 256 slices
PAPER_CLIP_HU = (-1000.0, 1000.0)  # paper: clip HU, then min-max to [0, 1]
REF_CODE_PERCENTILES = (0.5, 99.5)  # reference code: percentile scaling
SOFT_TISSUE_WINDOW_HU = (-160.0, 240.0)  # window level 40, width 400

TINY_FRAME_SLICES = 16
TINY_SIZE = 64
TINY_MAX_FRAMES = 4

Scaling = Literal["window", "minmax", "percentile"]


@dataclass
class PrepConfig:
    """How a CTVolume becomes model input frames (T, K, H, W) in [0, 1]."""

    frame_slices: int = PAPER_FRAME_SLICES
    """K, slices per frame."""
    size: int = PAPER_SIZE
    """H = W, in-plane size after aspect-preserving resize and zero padding."""
    max_frames: int = PAPER_MAX_FRAMES
    """Largest T; deeper volumes are resized to max_frames * frame_slices slices."""
    scaling: Scaling = "window"
    """HU range to clip and scale to [0, 1]: 'window' (window_hu), 'minmax' (clip_hu,
    the paper) or 'percentile' (percentiles of each volume, the reference code)."""
    window_hu: tuple[float, float] = SOFT_TISSUE_WINDOW_HU
    clip_hu: tuple[float, float] = PAPER_CLIP_HU
    percentiles: tuple[float, float] = REF_CODE_PERCENTILES
    crop_foreground: bool = True
    """Crop to the bounding box of voxels above the lower end of the HU range."""
    target_spacing: tuple[float, float, float] | None = None
    """Optional aid, not in the paper (None there and by default: the voxel grid is kept, as
    in M3D). (sx, sy, sz) mm: the one resize step then targets the crop's physical extent
    at this spacing (before fitting H x W and the depth cap), so scans of mixed slice
    thickness (CT-RATE) get the same number of slices per mm."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("frame_slices", "size", "max_frames"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.scaling not in ("window", "minmax", "percentile"):
            problems.append(f"scaling is {self.scaling!r}; choose window, minmax or percentile")
        for name in ("window_hu", "clip_hu", "percentiles"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                problems.append(f"{name} must be (low, high) with low < high, got {(lo, hi)}")
        if self.target_spacing is not None and (
            len(self.target_spacing) != 3 or min(float(s) for s in self.target_spacing) <= 0
        ):
            problems.append(
                f"target_spacing must be 3 positive mm values, got {self.target_spacing}"
            )
        if not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            problems.append(f"percentiles must lie in [0, 100], got {self.percentiles}")
        if problems:
            raise Mu2Error("invalid preprocessing config: " + "; ".join(problems))

    @property
    def max_slices(self) -> int:
        return self.max_frames * self.frame_slices


def prep_config(name: str, **overrides) -> PrepConfig:
    """Builder: ``SIZE[:SCALING]``; SIZE 'paper' (T<=8, K=32, 256 x 256) or 'tiny' (T<=4,
    K=16, 64 x 64, fast); SCALING window (default) | minmax | percentile. ``overrides`` set
    other fields (e.g. ``target_spacing=(1.0, 1.0, 3.0)``)."""
    size, _, scaling = str(name).partition(":")
    if scaling and scaling not in ("window", "minmax", "percentile"):
        raise Mu2Error(
            f"unknown intensity scaling '{scaling}' in preprocessing '{name}'",
            fix="use SIZE, SIZE:window, SIZE:minmax or SIZE:percentile (e.g. paper:percentile)",
        )
    if size == "paper":
        cfg = PrepConfig(**overrides)
    elif size == "tiny":
        cfg = PrepConfig(
            frame_slices=TINY_FRAME_SLICES, size=TINY_SIZE, max_frames=TINY_MAX_FRAMES,
            **overrides,
        )
    else:
        raise Mu2Error(
            f"unknown preprocessing size '{size}'", fix="choose 'paper' or 'tiny' (SIZE[:SCALING])"
        )
    if scaling:
        cfg.scaling = scaling  # type: ignore[assignment]
    return cfg


def prep_size(name: str) -> str:
    """The SIZE part of a preparation name ('paper:percentile' -> 'paper')."""
    return str(name).partition(":")[0]
