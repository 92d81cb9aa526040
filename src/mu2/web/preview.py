"""The volume the page draws: the CT and its heat map, subsampled, as raw bytes.

The page renders axial / coronal / sagittal slices itself (canvas), so moving a slider or
changing the window costs no request. It gets the CT as int16 HU and the heat as uint8
(0..255 = 0..1), both C-ordered (X, Y, Z) on the canonical RAS grid, subsampled by a
whole step per axis so no side exceeds ``max_dim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# int16 holds every CT value that matters for display (air -1024 .. dense bone / metal).
HU_RANGE: tuple[int, int] = (-1024, 3071)
HEAT_LEVELS = 255


@dataclass
class VolumePreview:
    ct: bytes
    heat: bytes | None
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    step: tuple[int, int, int]

    @property
    def nbytes(self) -> int:
        return len(self.ct) + (len(self.heat) if self.heat is not None else 0)

    def describe(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "spacing_mm": [round(s, 4) for s in self.spacing],
            "step": list(self.step),
            "order": "C order of (x, y, z), canonical RAS",
            "ct_dtype": "int16 little-endian (HU)",
            "heat_dtype": "uint8 (255 = peak relevance)",
        }


def preview_steps(shape: tuple[int, ...], max_dim: int) -> tuple[int, int, int]:
    """Whole subsampling step per axis so that no side of the preview exceeds ``max_dim``."""
    return tuple(max(1, math.ceil(int(n) / max_dim)) for n in shape[:3])  # type: ignore[return-value]


def volume_preview(
    array: np.ndarray,
    spacing: tuple[float, float, float],
    heat: np.ndarray | None,
    max_dim: int,
) -> VolumePreview:
    """CT (X, Y, Z) HU and heat (X, Y, Z) in [0, 1] -> the page's subsampled bytes."""
    steps = preview_steps(array.shape, max_dim)
    view = (slice(None, None, steps[0]), slice(None, None, steps[1]), slice(None, None, steps[2]))
    # (X, Y, Z) -> (X/sx, Y/sy, Z/sz)
    ct = np.clip(np.rint(array[view]), *HU_RANGE).astype("<i2")
    heat_bytes = None
    if heat is not None:
        h = np.clip(np.nan_to_num(heat[view], nan=0.0), 0.0, 1.0)
        heat_bytes = np.rint(h * HEAT_LEVELS).astype(np.uint8).tobytes(order="C")
    return VolumePreview(
        ct=ct.tobytes(order="C"),
        heat=heat_bytes,
        shape=tuple(int(s) for s in ct.shape),  # type: ignore[arg-type]
        spacing=tuple(float(s) * k for s, k in zip(spacing, steps, strict=True)),  # type: ignore[arg-type]
        step=steps,
    )
