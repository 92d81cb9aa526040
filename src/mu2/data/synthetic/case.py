"""One synthetic case end to end: plan, anatomy, findings, scanner, measurement.

Everything random in a case comes from one generator seeded by (seed, index), so a case
is the same whatever the number of worker processes or the order they run in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from mu2.data.synthetic.anatomy import Anatomy, DrawnFinding
from mu2.data.synthetic.lesions import FOCAL, draw_focal, fatty_liver
from mu2.data.synthetic.measure import measure
from mu2.data.synthetic.phantom import build_phantom
from mu2.data.synthetic.plan import grade, plan_case
from mu2.data.synthetic.real_anatomy import (
    allowed_kinds,
    default_paths,
    load_base,
    real_anatomy,
    total_noise_sd,
)
from mu2.data.synthetic.synth_config import ALL_KINDS, SynthConfig
from mu2.findings.catalogue import Finding

HU_RANGE = (-1024, 3071)  # what a 12-bit CT stores; written as int16


@dataclass
class Case:
    """A generated case: int16 HU volume (X, Y, Z) in RAS, its affine and ground truth."""

    case_id: str
    volume: np.ndarray
    affine: np.ndarray
    findings: list[Finding]
    regions: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None  # uint8 organ labels (X, Y, Z)


def case_id(seed: int, index: int) -> str:
    return f"s{seed}-{index:06d}"


def scanner_noise(
    shape: tuple[int, ...], corr_voxels: float, rng: np.random.Generator
) -> np.ndarray:
    """Unit-SD Gaussian noise, correlated in-plane like a CT reconstruction kernel."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if corr_voxels > 0:
        white = ndimage.gaussian_filter(white, sigma=(corr_voxels, corr_voxels, 0.0))
    return white / np.float32(white.std())


def make_case(cfg: SynthConfig, seed: int, index: int) -> Case:
    """Generate case ``index`` of the data set with ``seed`` (deterministic)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    drawn: list[DrawnFinding | None] = []
    base_sd = 0.0
    if cfg.anatomy == "procedural":
        plan = plan_case(cfg, rng, ALL_KINDS)
        anat, organ_level = build_phantom(cfg, plan, rng)
        drawn += organ_level
    else:
        ct, seg, names = default_paths(cfg)
        base = load_base(str(ct), str(seg), str(names), max(cfg.in_plane))
        anat = real_anatomy(base, cfg, rng)
        plan = plan_case(cfg, rng, allowed_kinds(base, cfg.region_min_ml))
        base_sd = base.noise_sd
    for p in plan:
        if p.kind == "fatty_liver":
            drawn.append(
                fatty_liver(anat, p.values[0], grade(p.values[0], cfg.fatty_liver_grades_hu))
            )
    for p in plan:
        if p.kind in FOCAL:
            drawn.append(draw_focal(anat, p, rng))

    volume, noise_sd = _scan(anat, cfg, rng)
    if cfg.anatomy == "real":
        noise_sd = total_noise_sd(base_sd, noise_sd)
    findings = []
    for d in drawn:
        f = measure(volume, anat, d, noise_sd) if d is not None else None
        if f is not None and f.region in anat.regions:
            findings.append(f)
    info = {
        "anatomy": anat.source,
        "shape": list(volume.shape),
        "spacing": [round(s, 4) for s in anat.grid.spacing],
        "contrast_phase": "portal_venous" if anat.contrast else "non_contrast",
        "noise_sd_hu": round(noise_sd, 2),
        **anat.info,
    }
    return Case(
        case_id(seed, index), volume, anat.grid.affine(), findings, anat.regions, info, anat.labels
    )


def _scan(anat: Anatomy, cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Partial-volume blur + correlated noise + 12-bit storage; returns (int16 volume, noise SD)."""
    img = anat.hu
    if cfg.blur_voxels > 0:
        img = ndimage.gaussian_filter(img, sigma=cfg.blur_voxels)
    noise = scanner_noise(img.shape, cfg.noise_corr_voxels, rng)
    img = img + np.float32(anat.noise_sd) * noise
    return np.clip(np.rint(img), *HU_RANGE).astype(np.int16), float(anat.noise_sd)
