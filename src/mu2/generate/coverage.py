"""What a CT covers: body regions (chest / abdomen / pelvis) and catalogue organs in view.

Rules on Hounsfield units and millimetres (no segmentation model), made to hold on real
scans: tight fields of view, thin slabs, arms up or down, any stored orientation (the
volume is canonical RAS, so z grows toward the head).

1. Work on a coarse grid (about ``grid_mm``): coverage needs centimetres, not voxels.
2. Body: the largest 3-D component above ``body_hu`` (drops the table and separate arms);
   per axial slice its convex hull, so lungs count as inside the body even where the field
   of view cuts the chest wall and the lungs touch the image edge (hole filling fails there).
3. Lungs: ``lung_hu`` voxels inside the hull, opened once (bowel-gas rims are thin) and kept
   as 3-D components of at least ``lung_component_ml``. Pure air (bowel gas, outside air)
   lies below the range.
4. Pelvic bones: per slice, bone (``bone_hu``) components of at least ``pelvic_bone_mm2``
   lying ``pelvic_bone_offset_mm`` or more from the body's midline, below the lungs: iliac
   wings, acetabula, femoral heads. Ribs and vertebrae are smaller or central.
5. Regions: chest = lung slices over ``chest_min_mm`` with ``chest_min_ml`` of lung, and
   over ``chest_full_mm`` or ``chest_min_share`` of the scan (the few lung-base slices
   at the top of an abdominal CT belong to the abdomen's report, a chest slab does not);
   pelvis = pelvic-bone slices over ``pelvis_min_mm``; abdomen = slices above the pelvic
   bones (iliac crest) whose lung share of the body stays under ``abdomen_max_lung`` over
   ``abdomen_min_mm``.
6. Organs: each catalogue organ has a typical cranio-caudal range relative to the lung base
   and the iliac crest (:data:`ORGAN_ZONES`). A landmark that touches the scan's end is only
   a bound (the true lung base of a slab full of lung lies below it); an organ is out of view
   only when every landmark position the scan allows puts it outside the field of view.

Why hand-written: no library in the stack detects body-region coverage from HU alone; a
segmentation network (TotalSegmentator) would be a heavy optional dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from mu2.findings.catalogue import ORGANS, REGIONS

INF = math.inf

# Organ -> {landmark: (lo_mm, hi_mm)} typical z range relative to the landmark (+ = head).
# Generous adult ranges: an organ is dropped only when clearly outside the field of view.
ORGAN_ZONES: dict[str, dict[str, tuple[float, float]]] = {
    "liver": {"lung_base": (-170.0, 120.0), "iliac_crest": (40.0, INF)},
    "gallbladder": {"lung_base": (-150.0, 0.0), "iliac_crest": (40.0, INF)},
    "spleen": {"lung_base": (-130.0, 100.0), "iliac_crest": (60.0, INF)},
    "pancreas": {"lung_base": (-140.0, 0.0), "iliac_crest": (50.0, INF)},
    "kidney": {"lung_base": (-190.0, -5.0), "iliac_crest": (0.0, INF)},
    "aorta": {},  # the whole trunk
    "bladder": {"lung_base": (-INF, -250.0), "iliac_crest": (-INF, -40.0)},
}


@dataclass(frozen=True)
class CoverageRule:
    """Thresholds of the coverage rules (HU, mm, mL)."""

    grid_mm: float = 4.0
    body_hu: float = -500.0
    lung_hu: tuple[float, float] = (-950.0, -600.0)
    lung_component_ml: float = 10.0
    lung_slice_mm2: float = 200.0
    chest_min_mm: float = 20.0
    chest_min_ml: float = 40.0
    chest_full_mm: float = 60.0
    chest_min_share: float = 0.4
    bone_hu: float = 250.0
    pelvic_bone_mm2: float = 500.0
    pelvic_bone_offset_mm: float = 40.0
    pelvis_min_mm: float = 30.0
    abdomen_max_lung: float = 0.25
    abdomen_min_mm: float = 30.0
    organ_min_mm: float = 10.0
    body_slice_fraction: float = 0.05


@dataclass
class Coverage:
    """Regions and organs in the field of view, with the landmarks that decided them."""

    regions: list[str]
    organs: dict[str, bool]
    landmarks: dict[str, Any] = field(default_factory=dict)
    extent_mm: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "regions": list(self.regions),
            "region_extent_mm": {k: round(v, 1) for k, v in self.extent_mm.items()},
            "organs_in_view": sorted(o for o, v in self.organs.items() if v),
            "organs_out_of_view": sorted(o for o, v in self.organs.items() if not v),
            "landmarks": self.landmarks,
            "method": "HU rules (mu2.generate.coverage): lungs, pelvic bones, body outline",
        }


def _coarse(array: np.ndarray, spacing: tuple[float, ...], grid_mm: float) -> tuple:
    """(X, Y, Z) -> strided (x', y', z') near ``grid_mm``; returns it and its spacing."""
    steps = [max(1, int(round(grid_mm / float(s)))) for s in spacing]
    small = array[:: steps[0], :: steps[1], :: steps[2]]
    return small, tuple(float(s) * k for s, k in zip(spacing, steps, strict=True))


def _hull_fill(mask2d: np.ndarray) -> np.ndarray:
    """Convex hull of a 2-D mask as a mask (the body outline closed across image edges)."""
    edge = mask2d & ~ndi.binary_erosion(mask2d)  # the hull of the outline is the hull
    pts = np.argwhere(edge).astype(float)
    if len(pts) < 4:
        return mask2d.copy()
    try:
        hull = ConvexHull(pts)
    except QhullError:  # collinear points: a line is its own hull
        return mask2d.copy()
    # rasterise the hull polygon (vertices in order); PIL wants (col, row) = (y, x) here
    poly = [(float(p[1]), float(p[0])) for p in pts[hull.vertices]]
    img = Image.new("1", (mask2d.shape[1], mask2d.shape[0]), 0)
    ImageDraw.Draw(img).polygon(poly, fill=1, outline=1)
    return np.asarray(img, dtype=bool) | mask2d


def _z_range(idx: np.ndarray, sz: float) -> tuple[float, float] | None:
    return (float(idx.min()) * sz, float(idx.max()) * sz) if idx.size else None


def detect_coverage(
    array: np.ndarray, spacing: tuple[float, float, float], rule: CoverageRule | None = None
) -> Coverage:
    """Coverage of a canonical RAS CT (X, Y, Z in HU, Z toward the head)."""
    rule = rule or CoverageRule()
    a, (sx, sy, sz) = _coarse(np.asarray(array), spacing, rule.grid_mm)
    voxel_ml = sx * sy * sz / 1000.0
    nz = a.shape[2]
    labels, n = ndi.label(a > rule.body_hu)
    if n == 0:
        return Coverage([], {o: False for r in REGIONS for o in ORGANS[r]}, {"body": None})
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))  # (x', y', z')
    area = body.sum(axis=(0, 1)).astype(float)
    body_z = np.flatnonzero(area > rule.body_slice_fraction * area.max())
    hull = np.zeros_like(body)
    for z in body_z:
        hull[:, :, z] = _hull_fill(body[:, :, z])
    inner = ndi.binary_erosion(hull, structure=np.ones((3, 3, 1), bool))

    # lungs: aerated parenchyma inside the outline, big 3-D components only
    lo, hi = rule.lung_hu
    lung = (a > lo) & (a < hi) & inner
    lung = ndi.binary_opening(lung, structure=np.ones((3, 3, 1), bool))
    lab, _ = ndi.label(lung)
    counts = np.bincount(lab.ravel())
    keep = np.flatnonzero(counts * voxel_ml >= rule.lung_component_ml)
    lung = np.isin(lab, keep[keep > 0])
    lung_area = lung.sum(axis=(0, 1)) * sx * sy  # (z',) mm^2
    lung_z = np.flatnonzero(lung_area >= rule.lung_slice_mm2)
    lung_ml = float(lung.sum() * voxel_ml)
    lung_share = lung.sum(axis=(0, 1)) / np.maximum(hull.sum(axis=(0, 1)), 1)

    # pelvic bones: large bone sections well off the midline, below the lungs
    bone = (a > rule.bone_hu) & body
    pelvic = []
    below = lung_z.min() if lung_z.size else nz
    for z in body_z:
        if z >= below:
            continue
        xs = np.flatnonzero(body[:, :, z].any(axis=1))
        mid = (xs.min() + xs.max()) / 2.0
        lab2, m = ndi.label(bone[:, :, z])
        if m == 0:
            continue
        idx = np.arange(1, m + 1)
        areas = ndi.sum_labels(np.ones_like(lab2), lab2, idx) * sx * sy
        cx = np.array([c[0] for c in ndi.center_of_mass(np.ones_like(lab2), lab2, idx)])
        lateral = (areas >= rule.pelvic_bone_mm2) & (
            np.abs(cx - mid) * sx >= rule.pelvic_bone_offset_mm
        )
        if lateral.any():
            pelvic.append(z)
    pelvic_z = np.asarray(pelvic, dtype=int)

    z_bot, z_top = float(body_z.min()) * sz, float(body_z.max()) * sz
    extent: dict[str, float] = {}
    regions: list[str] = []
    if lung_z.size:
        extent["chest"] = (lung_z.max() - lung_z.min() + 1) * sz
        span = z_top - z_bot + sz
        enough = extent["chest"] >= rule.chest_full_mm or (
            extent["chest"] >= rule.chest_min_share * span  # a chest slab or tight crop
        )
        if extent["chest"] >= rule.chest_min_mm and lung_ml >= rule.chest_min_ml and enough:
            regions.append("chest")
    crest = float(pelvic_z.max()) * sz if pelvic_z.size else None
    abd = [
        z for z in body_z
        if lung_share[z] < rule.abdomen_max_lung and (crest is None or z * sz > crest)
    ]  # fmt: skip
    if abd:
        extent["abdomen"] = len(abd) * sz
        if extent["abdomen"] >= rule.abdomen_min_mm:
            regions.append("abdomen")
    if pelvic_z.size:
        extent["pelvis"] = (pelvic_z.max() - pelvic_z.min() + 1) * sz
        if extent["pelvis"] >= rule.pelvis_min_mm:
            regions.append("pelvis")

    # landmark positions the scan allows: exact inside it, a bound where it touches an end
    eps = sz * 1.5
    if lung_z.size:
        base = float(lung_z.min()) * sz
        lung_base = (-INF, base) if base <= z_bot + eps else (base, base)
    else:
        lung_base = (z_top, INF)  # a body CT without lungs lies below them
    if crest is not None:
        iliac = (crest, INF) if crest >= z_top - eps else (crest, crest)
    else:
        iliac = (-INF, z_bot)  # no pelvic bone: the crest lies below the scan
    marks = {"lung_base": lung_base, "iliac_crest": iliac}
    organs = _organs_in_view(regions, marks, (z_bot, z_top), rule, bool(lung_z.size))
    landmarks = {
        "scan_z_mm": [0.0, round(z_top - z_bot, 1)],
        "lungs_z_mm": _rounded(_z_range(lung_z, sz), z_bot),
        "lung_volume_ml": round(lung_ml, 1),
        "lung_base_mm": _bound(lung_base, z_bot),
        "pelvic_bones_z_mm": _rounded(_z_range(pelvic_z, sz), z_bot),
        "iliac_crest_mm": _bound(iliac, z_bot),
    }
    return Coverage(regions, organs, landmarks, extent)


def _rounded(r: tuple[float, float] | None, z0: float) -> list[float] | None:
    """Scanner z -> mm above the lowest body slice, for the JSON."""
    return None if r is None else [round(r[0] - z0, 1), round(r[1] - z0, 1)]


def _bound(r: tuple[float, float], z0: float) -> dict[str, float | None]:
    lo, hi = r
    return {
        "at_least": None if lo == -INF else round(lo - z0, 1),
        "at_most": None if hi == INF else round(hi - z0, 1),
    }


def _organs_in_view(
    regions: list[str],
    marks: dict[str, tuple[float, float]],
    scan: tuple[float, float],
    rule: CoverageRule,
    lungs_seen: bool,
) -> dict[str, bool]:
    """Catalogue organ -> in view (True) or surely outside the field of view (False)."""
    out: dict[str, bool] = {"lung": lungs_seen, "pleura": lungs_seen}
    soft = any(r in regions for r in ("abdomen", "pelvis"))
    out["peritoneum"] = soft
    out["bowel"] = soft
    for organ, zones in ORGAN_ZONES.items():
        lo_z, hi_z = -INF, INF
        for mark, (lo, hi) in zones.items():
            m_lo, m_hi = marks[mark]
            lo_z, hi_z = max(lo_z, m_lo + lo), min(hi_z, m_hi + hi)  # where the organ may be
        overlap = min(hi_z, scan[1]) - max(lo_z, scan[0])
        out[organ] = overlap >= rule.organ_min_mm
    return {o: out[o] for r in REGIONS for o in ORGANS[r]}


def scan_coverage(volume: Any, rule: CoverageRule | None = None) -> Coverage:
    """:func:`detect_coverage` of a ``CTVolume``, computed once per volume object."""
    cached = getattr(volume, "_mu2_coverage", None)
    if cached is None or rule is not None:
        cached = detect_coverage(volume.array, volume.spacing, rule)
        volume._mu2_coverage = cached
    return cached


def heatmap_peaks(volume: Any, heat: np.ndarray) -> dict[str, list[int]]:
    """The hottest voxel on the stored grid (as in the heat-map NIfTI written beside the
    input) and on the canonical RAS grid (as ``heat`` itself)."""
    canonical = np.unravel_index(int(np.argmax(heat)), heat.shape)
    stored = volume.to_source(heat)  # (X, Y, Z) canonical -> the file's axis order
    peak = np.unravel_index(int(np.argmax(stored)), stored.shape)
    return {"stored": [int(i) for i in peak], "canonical": [int(i) for i in canonical]}
