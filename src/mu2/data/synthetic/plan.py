"""Which findings a case gets and the parameters they are drawn with.

The plan is sampled before any voxel is drawn, because some findings change the anatomy
itself (an enlarged spleen, an aneurysmal aorta). Each planned finding carries its main
parameter (diameter, attenuation drop, scale, fluid depth) drawn from the config's range;
the ground truth is later read from what was actually drawn (after any clipping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mu2.data.synthetic.synth_config import SynthConfig
from mu2.findings.catalogue import FINDING_KINDS, SEVERITIES

# The config field holding each kind's main parameter range.
VALUE_FIELD: dict[str, str] = {
    "liver_cyst": "liver_cyst_mm",
    "liver_metastasis": "liver_metastasis_mm",
    "fatty_liver": "fatty_liver_drop_hu",
    "hepatomegaly": "hepatomegaly_scale",
    "splenomegaly": "splenomegaly_scale",
    "gallstone": "gallstone_mm",
    "renal_cyst": "renal_cyst_mm",
    "renal_stone": "renal_stone_mm",
    "hydronephrosis": "hydronephrosis_apd_mm",
    "pleural_effusion": "pleural_effusion_depth_mm",
    "lung_nodule": "lung_nodule_mm",
    "ascites": "ascites_depth_mm",
    "aortic_aneurysm": "aortic_aneurysm_mm",
}
# The config field holding a focal lesion's attenuation range (absolute HU, or the drop
# below the liver for metastases).
HU_FIELD: dict[str, str] = {
    "liver_cyst": "liver_cyst_hu",
    "liver_metastasis": "liver_metastasis_delta_hu",
    "gallstone": "gallstone_hu",
    "renal_cyst": "renal_cyst_hu",
    "renal_stone": "renal_stone_hu",
    "lung_nodule": "lung_nodule_hu",
}
# Graded kinds: the config field with the two thresholds between mild/moderate/severe.
GRADE_FIELD: dict[str, str] = {
    "fatty_liver": "fatty_liver_grades_hu",
    "hydronephrosis": "hydronephrosis_grades_mm",
    "pleural_effusion": "pleural_effusion_grades_mm",
    "ascites": "ascites_grades_mm",
}


@dataclass
class Planned:
    """One finding to draw: ``count`` lesions on each of its sides.

    ``values`` / ``hus``: main parameter and attenuation of each lesion, side by side in
    the order of :attr:`sides` (``count`` per side).
    """

    kind: str
    side: str | None
    count: int
    values: list[float]
    hus: list[float]

    @property
    def sides(self) -> tuple[str, ...]:
        if self.side is None:
            return ("",)
        return ("right", "left") if self.side == "bilateral" else (self.side,)


def grade(value: float, thresholds: tuple[float, float]) -> str:
    """Severity of a measured value: below the first threshold mild, below the second moderate."""
    if value < thresholds[0]:
        return SEVERITIES[0]
    return SEVERITIES[1] if value < thresholds[1] else SEVERITIES[2]


def plan_case(
    cfg: SynthConfig, rng: np.random.Generator, allowed: tuple[str, ...]
) -> list[Planned]:
    """Sample the findings of one case among ``allowed`` kinds (in catalogue order)."""
    chosen = [k for k in cfg.kinds if k in allowed and rng.random() < cfg.prevalence_of(k)]
    if len(chosen) > cfg.max_findings:
        keep = set(rng.choice(len(chosen), size=cfg.max_findings, replace=False).tolist())
        chosen = [k for i, k in enumerate(chosen) if i in keep]
    order = list(FINDING_KINDS)
    out: list[Planned] = []
    for k in sorted(chosen, key=order.index):
        spec = FINDING_KINDS[k]
        side = None
        if spec.lateral:
            if rng.random() < cfg.bilateral_prob:
                side = "bilateral"
            else:
                side = "left" if rng.random() < 0.5 else "right"
        n = 1
        if spec.countable and rng.random() < cfg.multiple_prob:
            n = int(rng.integers(2, cfg.max_count + 1))
        # ``n`` lesions (count is per side) on every side it is drawn on.
        n_draw = n * (2 if side == "bilateral" else 1)
        lo, hi = getattr(cfg, VALUE_FIELD[k])
        values = [float(rng.uniform(lo, hi)) for _ in range(n_draw)]
        hus: list[float] = []
        if k in HU_FIELD:
            hlo, hhi = getattr(cfg, HU_FIELD[k])
            hus = [float(rng.uniform(hlo, hhi)) for _ in range(n_draw)]
        out.append(Planned(kind=k, side=side, count=n, values=values, hus=hus))
    return out
