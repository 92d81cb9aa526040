"""The anatomy a synthetic case is drawn on, and the record of each drawn finding.

Both anatomy sources (the procedural phantom and a real CT with its organ label map)
produce the same :class:`Anatomy`: a noiseless (or real) HU volume, an organ label map
in one shared vocabulary, the grid and the regions the field of view shows. Lesions are
then drawn into it the same way for both, and every drawn finding keeps its voxel mask
so its contrast-to-noise ratio can be measured on the final image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mu2.data.synthetic.shapes import BoxMask, Grid
from mu2.findings.catalogue import Finding

# Organ label vocabulary shared by both anatomy sources (uint8 label map).
LABELS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        (
            "background",
            "fat",
            "muscle",
            "bone",
            "spinal_canal",
            "liver",
            "spleen",
            "kidney_right",
            "kidney_left",
            "renal_sinus",
            "gallbladder",
            "pancreas",
            "aorta",
            "ivc",
            "stomach",
            "bowel",
            "lung_right",
            "lung_left",
            "heart",
            "bladder",
            "fluid",  # ascites, pleural fluid, hydronephrotic pelvis
            "lesion",  # any focal lesion
            "other",  # real anatomy: structures this vocabulary does not name
        )
    )
}
LABEL_NAMES: dict[int, str] = {v: k for k, v in LABELS.items()}

# Which labels count as each organ of the findings catalogue (for lesion placement).
ORGAN_LABELS: dict[str, tuple[str, ...]] = {
    "liver": ("liver",),
    "spleen": ("spleen",),
    "gallbladder": ("gallbladder",),
    "pancreas": ("pancreas",),
    "kidney_right": ("kidney_right",),
    "kidney_left": ("kidney_left",),
    "lung_right": ("lung_right",),
    "lung_left": ("lung_left",),
    "aorta": ("aorta",),
    "bladder": ("bladder",),
}


def label_ids(*names: str) -> np.ndarray:
    return np.array([LABELS[n] for n in names], dtype=np.uint8)


# Organs whose presence (at least ``min_ml``) puts a report region in the field of view.
REGION_ORGANS: dict[str, tuple[str, ...]] = {
    "chest": ("lung_right", "lung_left"),
    "abdomen": ("liver", "spleen", "kidney_right", "kidney_left"),
    "pelvis": ("bladder",),
}


def regions_shown(labels: np.ndarray, grid: Grid, min_ml: float) -> tuple[str, ...]:
    """Report regions whose organs fill at least ``min_ml`` of the field."""
    shown = []
    for region, organs in REGION_ORGANS.items():
        voxels = sum(int(np.count_nonzero(labels == LABELS[o])) for o in organs)
        if voxels * grid.voxel_ml >= min_ml:
            shown.append(region)
    return tuple(shown)


@dataclass
class Anatomy:
    """A case's anatomy before noise.

    ``hu``: float32 (X, Y, Z) in canonical RAS order; ``labels``: uint8 (X, Y, Z) in the
    :data:`LABELS` vocabulary; ``regions``: report regions the field shows, in order.
    """

    grid: Grid
    hu: np.ndarray
    labels: np.ndarray
    regions: tuple[str, ...]
    contrast: bool
    source: str  # "procedural" or "real"
    noise_sd: float  # noise to add (HU)
    info: dict[str, Any] = field(default_factory=dict)

    def mask(self, *names: str) -> np.ndarray:
        return np.isin(self.labels, label_ids(*names))

    def volume_ml(self, *names: str) -> float:
        return float(self.mask(*names).sum()) * self.grid.voxel_ml


@dataclass
class DrawnFinding:
    """A finding as drawn: its ground truth and where it is, for measuring.

    ``masks``: voxels of the abnormality (lesions, fluid, or the whole enlarged organ).
    ``reference``: labels of the tissue it is compared with; ``ring_mm``: compare with
    that tissue within this distance of the abnormality (None: the whole tissue).
    """

    finding: Finding
    masks: list[BoxMask]
    reference: tuple[str, ...]
    ring_mm: float | None = 10.0
    details: dict[str, Any] = field(default_factory=dict)  # e.g. {"depth_mm": 32.0}
