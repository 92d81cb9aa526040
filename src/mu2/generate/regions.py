"""Which body regions (chest / abdomen / pelvis) a CT covers, for the default question.

A deliberately simple rule on HU and z-extent, not a segmentation model:

1. Body: voxels above -500 HU, holes filled slice by slice (so the lungs count as body).
2. Lung slices: axial slices where aerated lung (-950..-650 HU, inside the eroded body)
   fills at least ``lung_fraction`` of the body area. Chest is present when lung slices
   span at least ``chest_min_mm``.
3. Below the lowest lung slice (or over the whole body, when there is no lung): the
   abdomen is present when at least ``abdomen_min_mm`` of body lies there; the pelvis when
   at least ``pelvis_below_lung_mm`` lies below the lung base (lung base to pubic
   symphysis is about 30 cm in adults) or, with no lung in the scan, when the body spans
   at least ``pelvis_no_lung_mm``.

A scan that covers none of these by the rule (e.g. a few slices) falls back to all
regions; users who know better pass ``--region``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from mu2.findings.catalogue import REGIONS

# Default question for one region: the first phrasing the report writer trains on.
DEFAULT_QUESTION = "Describe the findings of the {region} in this CT."


@dataclass(frozen=True)
class RegionRule:
    """Thresholds of the region rule (HU and millimetres)."""

    body_hu: float = -500.0
    lung_hu: tuple[float, float] = (-950.0, -650.0)
    lung_fraction: float = 0.05
    chest_min_mm: float = 20.0
    abdomen_min_mm: float = 50.0
    pelvis_below_lung_mm: float = 220.0
    pelvis_no_lung_mm: float = 150.0
    body_area_fraction: float = 0.05  # a slice is "body" above this share of the largest


REGION_CHUNK_SLICES = 32  # axial slices per step: the masks of a chunk, not of the scan


def _slice_areas(array: np.ndarray, rule: RegionRule) -> tuple[np.ndarray, np.ndarray]:
    """Body and lung voxel counts per axial slice, (X, Y, Z) -> (Z,), (Z,).

    Every operation works inside one axial slice (3 x 3 x 1 structure), so the scan is
    processed a chunk of slices at a time (a few boolean masks of a chunk instead of
    the whole scan). One exception is kept exact: ``binary_fill_holes`` of the whole
    array does not fill the first and last slice (they lie on the array's border), so
    each chunk carries one neighbour slice on either side, dropped afterwards.
    """
    per_slice = np.ones((3, 3, 1), dtype=bool)  # 2-D neighbourhood inside each axial slice
    lo, hi = rule.lung_hu
    depth = array.shape[2]
    body_area = np.zeros(depth, dtype=np.float64)
    lung_area = np.zeros(depth, dtype=np.float64)
    for z0 in range(0, depth, REGION_CHUNK_SLICES):
        z1 = min(depth, z0 + REGION_CHUNK_SLICES)
        a0, a1 = max(0, z0 - 1), min(depth, z1 + 1)  # with one neighbour on each side
        part = array[:, :, a0:a1]
        body = ndi.binary_fill_holes(part > rule.body_hu, structure=per_slice)
        inner = ndi.binary_erosion(body, structure=per_slice, iterations=2)
        lung = (part > lo) & (part < hi) & inner
        keep = slice(z0 - a0, z0 - a0 + (z1 - z0))
        body_area[z0:z1] = body[:, :, keep].sum(axis=(0, 1))
        lung_area[z0:z1] = lung[:, :, keep].sum(axis=(0, 1))
    return body_area, lung_area


def detect_regions(
    array: np.ndarray, spacing: tuple[float, float, float], rule: RegionRule | None = None
) -> list[str]:
    """Regions covered by a canonical RAS CT (X, Y, Z in HU), in report order."""
    rule = rule or RegionRule()
    sz = float(spacing[2])
    body_area, lung_area = _slice_areas(array, rule)  # (Z,) each
    lung_frac = lung_area / np.maximum(body_area, 1.0)
    body_z = np.flatnonzero(body_area > rule.body_area_fraction * max(body_area.max(), 1.0))
    if body_z.size == 0:
        return list(REGIONS)
    lung_z = np.flatnonzero(lung_frac >= rule.lung_fraction)
    regions = []
    if lung_z.size and (lung_z.max() - lung_z.min() + 1) * sz >= rule.chest_min_mm:
        regions.append("chest")
    body_lo, body_hi = int(body_z.min()), int(body_z.max())
    if lung_z.size:
        below_mm = max(0, int(lung_z.min()) - body_lo) * sz
        pelvis = below_mm >= rule.pelvis_below_lung_mm
    else:
        below_mm = (body_hi - body_lo + 1) * sz
        pelvis = below_mm >= rule.pelvis_no_lung_mm
    if below_mm >= rule.abdomen_min_mm:
        regions.append("abdomen")
    if pelvis:
        regions.append("pelvis")
    return regions or list(REGIONS)


def default_question(region: str) -> str:
    return DEFAULT_QUESTION.format(region=region)
