"""How visible each drawn finding is: contrast-to-noise ratio and size in voxels.

CNR = |mean(abnormal voxels) - mean(background voxels)| / noise SD, measured on the
final (blurred, noisy, integer) volume that is written to disk. The background is the
tissue the finding is judged against: the organ around a lesion (a ring of
:data:`~mu2.data.synthetic.lesions.RING_MM`), the spleen for a steatotic liver, the fat around an
enlarged organ or an aneurysm, the lung above a pleural effusion. Small lesions lose
contrast to partial-volume blur, so their CNR is lower than their drawn attenuation
difference suggests: that is the point of measuring it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mu2.data.synthetic.anatomy import LABELS, Anatomy, DrawnFinding, label_ids
from mu2.data.synthetic.shapes import BoxMask
from mu2.findings.catalogue import Finding

MIN_RING_VOXELS = 2  # a background ring is at least this many voxels thick


def _union_box(masks: list[BoxMask], shape: tuple[int, ...], pad: tuple[int, int, int]):
    lo = [max(min(m.box[d].start for m in masks) - pad[d], 0) for d in range(3)]
    hi = [min(max(m.box[d].stop for m in masks) + pad[d], shape[d]) for d in range(3)]
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def _interior(mask: np.ndarray) -> np.ndarray:
    """The tissue minus its one-voxel rim (partial volume with the neighbours), if any is left."""
    inner = ndimage.binary_erosion(mask)
    return inner if inner.any() else mask


def measure(volume: np.ndarray, anat: Anatomy, d: DrawnFinding, noise_sd: float) -> Finding | None:
    """The finding with ``extra`` = {cnr, size_voxels, contrast_hu, ...}; None if nothing is left.

    ``volume``: the final image (X, Y, Z); ``anat.labels`` must be the final label map.
    """
    g = anat.grid
    if not d.masks:
        return None
    ring = d.ring_mm
    pad = (0, 0, 0)
    if ring is not None:
        ring = max(ring, MIN_RING_VOXELS * max(g.spacing))
        pad = tuple(int(math.ceil(ring / s)) + 1 for s in g.spacing)  # type: ignore[assignment]
    box = _union_box(d.masks, volume.shape, pad)  # type: ignore[arg-type]
    lesion = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    for m in d.masks:
        local = tuple(
            slice(mb.start - b.start, mb.stop - b.start) for mb, b in zip(m.box, box, strict=True)
        )
        lesion[local] |= m.mask
    lab = anat.labels[box]
    lesion &= lab == LABELS[d.details.get("label", "lesion")]
    n = int(lesion.sum())
    if n == 0:
        return None
    if ring is None:
        ref_full = _interior(np.isin(anat.labels, label_ids(*d.reference)))
        ref_full[box] &= ~lesion
        ref_values = volume[ref_full]
    else:
        dist = ndimage.distance_transform_edt(~lesion, sampling=g.spacing)
        tissue = _interior(np.isin(lab, label_ids(*d.reference)))
        ref = (dist > 0) & (dist <= ring) & tissue
        ref_values = volume[box][ref]
    lesion_mean = float(volume[box][lesion].mean())
    f = d.finding
    extra = {k: v for k, v in d.details.items() if k != "label"}
    extra["size_voxels"] = n
    if ref_values.size:
        contrast = lesion_mean - float(ref_values.mean())
        extra["contrast_hu"] = round(contrast, 1)
        extra["cnr"] = round(abs(contrast) / max(noise_sd, 1e-6), 2)
    else:
        extra["contrast_hu"] = None
        extra["cnr"] = None
    return Finding(f.organ, f.finding, f.side, f.size_mm, f.severity, f.count, extra)


def robust_sd(values: np.ndarray) -> float:
    """Noise SD of a homogeneous region from the median absolute deviation (outlier-proof)."""
    if values.size == 0:
        return 0.0
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def tissue_noise_sd(anat: Anatomy, volume: np.ndarray, organ: str = "liver") -> float:
    """Noise SD measured inside an organ, away from its edges (for real CTs)."""
    m = anat.labels == LABELS[organ]
    m = ndimage.binary_erosion(m, iterations=2)
    return robust_sd(volume[m])
