"""Focal lesions drawn inside organ masks: cysts, metastases, stones, nodules.

Works on any :class:`~mu2.data.synthetic.anatomy.Anatomy` (procedural or a real CT's label map):
a lesion's centre is drawn among the organ voxels deep enough for the ball to fit
(Euclidean distance transform in mm), multiple lesions do not overlap, and a lesion that
cannot fit at its planned size is shrunk (down to half) or left out, so the ground truth
always describes what is in the image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mu2.data.synthetic.anatomy import LABELS, Anatomy, DrawnFinding, label_ids
from mu2.data.synthetic.plan import Planned
from mu2.data.synthetic.shapes import ball, mask_to_box
from mu2.findings.catalogue import FINDING_KINDS, Finding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FocalSpec:
    """Where a focal lesion goes. ``{side}`` in a label is replaced by right / left."""

    organ_labels: tuple[str, ...]
    fit: float  # share of the radius that must lie inside the organ (1 = fully inside)
    paints_over: tuple[str, ...]  # labels the lesion may replace
    margin_voxels: float = 0.0  # organ tissue kept around the lesion (its visible background)


FOCAL: dict[str, FocalSpec] = {
    "liver_cyst": FocalSpec(("liver",), 1.0, ("liver",), margin_voxels=1.0),
    "liver_metastasis": FocalSpec(("liver",), 1.0, ("liver",), margin_voxels=1.0),
    "gallstone": FocalSpec(("gallbladder",), 1.0, ("gallbladder",)),
    # Renal cysts may bulge out of the kidney into the perirenal fat (exophytic).
    "renal_cyst": FocalSpec(("kidney_{side}",), 0.6, ("kidney_{side}", "renal_sinus", "fat")),
    "renal_stone": FocalSpec(("kidney_{side}",), 1.0, ("kidney_{side}", "renal_sinus")),
    "lung_nodule": FocalSpec(("lung_{side}",), 1.0, ("lung_{side}",), margin_voxels=1.0),
}
# Finding kinds drawn with the label-map label "fluid"; focal kinds (FOCAL) use "lesion".
FLUID_KINDS = ("pleural_effusion", "ascites", "hydronephrosis")
FLUID_LABEL = "fluid"
LESION_LABEL = "lesion"


def voxel_label(kind: str) -> str | None:
    """The label-map label whose voxels are the finding ``kind`` (None: organ-level kinds)."""
    if kind in FLUID_KINDS:
        return FLUID_LABEL
    return LESION_LABEL if kind in FOCAL else None


MIN_SHRINK = 0.5  # a lesion may be drawn down to this share of its planned diameter
RING_MM = 10.0  # surrounding tissue within this distance is the lesion's background


def _place(
    anat: Anatomy,
    organ: tuple[str, ...],
    radii: list[float],
    fit: float,
    rng: np.random.Generator,
    margin_mm: float = 0.0,
) -> list[tuple[tuple[float, float, float], float]]:
    """Centres (mm) and radii of non-overlapping balls inside the organ (largest first)."""
    bm = mask_to_box(anat.mask(*organ))
    if bm is None:
        return []
    g = anat.grid
    dist = ndimage.distance_transform_edt(np.pad(bm.mask, 1), sampling=g.spacing)[1:-1, 1:-1, 1:-1]
    free = bm.mask.copy()
    x, y, z = g.coords(bm.box)
    out = []
    for r in sorted(radii, reverse=True):
        ok = free & (dist >= fit * r + margin_mm)
        if not ok.any():
            room = (float(dist[free].max()) - margin_mm) / fit if free.any() else 0.0
            if room < MIN_SHRINK * r:
                continue
            r = room * 0.95
            ok = free & (dist >= fit * r + margin_mm)
            if not ok.any():
                continue
        idx = np.flatnonzero(ok)
        i, j, k = np.unravel_index(idx[int(rng.integers(len(idx)))], ok.shape)
        c = (float(x[i, 0, 0]), float(y[0, j, 0]), float(z[0, 0, k]))
        out.append((c, r))
        far = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 > (r + max(radii) + 2.0) ** 2
        free &= far
    return out


def draw_focal(anat: Anatomy, p: Planned, rng: np.random.Generator) -> DrawnFinding | None:
    """Draw planned focal lesions into ``anat`` (in place); None if none could be drawn."""
    spec = FOCAL[p.kind]
    kind = FINDING_KINDS[p.kind]
    masks, diameters, placed_sides, per_side = [], [], [], []
    for s_i, side in enumerate(p.sides):
        organ = tuple(lbl.format(side=side) for lbl in spec.organ_labels)
        over = label_ids(*(lbl.format(side=side) for lbl in spec.paints_over))
        diam = p.values[s_i * p.count : (s_i + 1) * p.count]
        hus = p.hus[s_i * p.count : (s_i + 1) * p.count]
        if p.kind == "liver_metastasis":
            liver = anat.hu[anat.labels == LABELS["liver"]]
            hus = [float(liver.mean()) - delta for delta in hus]
        margin = spec.margin_voxels * max(anat.grid.spacing[:2])
        spots = _place(anat, organ, [d / 2.0 for d in diam], spec.fit, rng, margin)
        for (c, r), hu in zip(spots, hus, strict=False):
            b = ball(anat.grid, c, r)
            b.mask &= np.isin(anat.labels[b.box], over)
            if not b.mask.any():
                continue
            b.paint(anat.hu, hu)
            b.paint(anat.labels, LABELS["lesion"])
            masks.append(b)
            diameters.append(2.0 * r)
        n = len(spots)
        if n:
            placed_sides.append(side)
            per_side.append(n)
    if not masks:
        log.debug("no room for %s: left out", p.kind)
        return None
    side = None
    if kind.lateral:
        side = placed_sides[0] if len(placed_sides) == 1 else "bilateral"
    organ_refs = tuple(
        dict.fromkeys(lbl.format(side=s) for s in placed_sides for lbl in spec.organ_labels)
    )
    f = Finding(
        organ=kind.organ,
        finding=p.kind,
        side=side,
        size_mm=float(round(max(diameters))),
        count=max(per_side),
    )
    details = {"label": "lesion", "diameters_mm": [round(d, 1) for d in diameters]}
    return DrawnFinding(f, masks, organ_refs, RING_MM, details)


def fatty_liver(anat: Anatomy, drop: float, severity: str) -> DrawnFinding | None:
    """Steatosis on any anatomy: lower the attenuation of the whole liver by ``drop`` HU."""
    liver = anat.labels == LABELS["liver"]
    bm = mask_to_box(liver)
    if bm is None:
        return None
    anat.hu[liver] -= drop
    f = Finding(organ="liver", finding="fatty_liver", severity=severity)
    return DrawnFinding(f, [bm], ("spleen",), None, {"label": "liver", "drop_hu": round(drop, 1)})
