"""Configuration of the synthetic CT benchmark and its named presets.

Two independent choices (plus the anatomy source):

* ``--preset`` says WHAT is drawn: ``tiny`` = a subset of large, high-contrast findings a
  tiny model can learn in minutes on a CPU (lesions several voxels wide at 64 x 64
  in-plane, contrast-to-noise ratio well above 3, contrast-enhanced phase, low noise);
  ``hard`` = all 13 kinds with realistic, often small and faint lesions.
* ``--size`` says on WHICH GRID: ``tiny`` = 64 x 64 in-plane, 24-48 slices, the body
  filling the field; ``paper`` = 256-512 in-plane, 20-300 slices.

Distances are in mm, attenuations in HU. Anatomical z is measured in mm from the centre
of the kidneys (about L1/L2), positive toward the head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mu2.config import apply_overrides, from_dict, to_dict
from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS
from mu2.findings.questions import PRESENCE, check_qtypes

Range = tuple[float, float]

# Diffuse and organ-size kinds a tiny model can see on a 64 x 64 grid within the demo
# budget (organs in fat, CNR >= 3). Focal lesions
# (liver / renal cysts, aneurysm; 5-10 voxels wide here) stayed at chance for a stage-0
# findings head trained 600 steps (docs/experiments/2026-11-28-research-log.md#stage0-learnability): they are in `hard`.
TINY_KINDS: tuple[str, ...] = (
    "fatty_liver",
    "hepatomegaly",
    "splenomegaly",
    "ascites",
    "pleural_effusion",
)
ALL_KINDS: tuple[str, ...] = tuple(FINDING_KINDS)


@dataclass
class TissueHU:
    """Attenuation of each tissue. Organ pairs are (non-contrast, portal-venous phase)."""

    air: float = -1000.0
    lung: float = -850.0
    fat: float = -100.0
    muscle: float = 50.0
    bone: float = 700.0
    csf: float = 10.0
    fluid: float = 8.0
    """Ascites, pleural fluid, urine in a dilated renal pelvis."""
    bile: float = 10.0
    urine: float = 5.0
    liver: Range = (58.0, 105.0)
    spleen: Range = (48.0, 140.0)
    """Portal-venous 140 HU, 35 HU above the liver: at the top of the reported range (the
    spleen enhances more than the liver in that phase), so a tiny tower can tell the two
    organs apart by attenuation; with 10 HU between them its stage-0 probe read
    splenomegaly at chance (docs/experiments/2026-11-28-research-log.md). The hard preset keeps 115."""
    kidney_cortex: Range = (35.0, 175.0)
    kidney_medulla: Range = (30.0, 120.0)
    pancreas: Range = (42.0, 95.0)
    aorta: Range = (42.0, 170.0)
    ivc: Range = (40.0, 130.0)
    bowel: Range = (35.0, 70.0)
    heart: Range = (42.0, 150.0)
    stomach: Range = (20.0, 30.0)
    jitter: float = 5.0
    """Per-case random shift of every tissue, +- HU (scanner and patient variation)."""


@dataclass
class SynthConfig:
    """Everything that decides a synthetic case. Defaults are the ``tiny`` preset and size."""

    # --- which findings, how often ----------------------------------------------------
    kinds: tuple[str, ...] = TINY_KINDS
    """Finding kinds that may occur."""
    prevalence: float = 0.5
    """Probability that a case has a given kind (independently per kind). The tiny preset
    draws each kind in half of the cases, so a model that writes the prior scores 0.5
    per-finding accuracy, never more."""
    prevalence_by_kind: dict[str, float] = field(default_factory=dict)
    """Per-kind override of ``prevalence``, e.g. {splenomegaly: 0.5}."""
    max_findings: int = 4
    """At most this many findings per case (a random subset is kept)."""
    multiple_prob: float = 0.0
    """Probability that a countable finding is multiple (2..max_count lesions)."""
    max_count: int = 3
    bilateral_prob: float = 0.2
    """Lateral kinds: share drawn on both sides; the rest is left or right evenly."""

    # --- grid --------------------------------------------------------------------------
    in_plane: tuple[int, ...] = (64,)
    """In-plane matrix sizes to choose from (square)."""
    slices: tuple[int, int] = (24, 48)
    """Range of slice counts (inclusive)."""
    fov_margin: Range = (1.04, 1.12)
    """Field of view / body width: how tightly the body fills the field."""
    z_top_mm: Range = (185.0, 215.0)
    """Top of the field (anatomical z); above ~150 mm the lung bases show."""
    z_bottom_mm: Range = (-80.0, -60.0)
    """Bottom of the field when the pelvis is not included (below the kidneys)."""
    pelvis_prob: float = 0.0
    """Probability that the field extends down through the pelvis (bladder)."""
    pelvis_bottom_mm: Range = (-320.0, -285.0)

    # --- scanner -----------------------------------------------------------------------
    noise_sd_hu: Range = (5.0, 9.0)
    """Standard deviation of the image noise."""
    noise_corr_voxels: float = 0.7
    """In-plane Gaussian correlation of the noise (reconstruction kernel), in voxels."""
    blur_voxels: float = 0.5
    """Partial-volume blur of the noiseless image, in voxels."""
    contrast_prob: float = 1.0
    """Probability of a portal-venous (contrast-enhanced) phase."""
    tissue: TissueHU = field(default_factory=TissueHU)

    # --- anatomy source ------------------------------------------------------------------
    anatomy: str = "procedural"
    """procedural (drawn) or real (a CT with an organ label map, lesions drawn inside)."""
    real_ct: str = ""
    """Real anatomy: the CT (.nii.gz); empty = the TotalSegmentator sample of this repo."""
    real_seg: str = ""
    """Real anatomy: its organ label map; empty = the sample's example_seg.nii.gz."""
    real_labels: str = ""
    """Real anatomy: label id -> name JSON; empty = <seg>_labels.json beside the map."""
    real_noise_sd_hu: Range = (3.0, 6.0)
    """Real anatomy: extra noise so that no two cases are identical."""
    region_min_ml: float = 50.0
    """Real anatomy: a region is reported when its organs fill at least this volume."""

    # --- finding geometry and attenuation (sizes are diameters) -------------------------
    liver_cyst_mm: Range = (32.0, 50.0)
    liver_cyst_hu: Range = (0.0, 12.0)
    liver_metastasis_mm: Range = (32.0, 50.0)
    liver_metastasis_delta_hu: Range = (45.0, 65.0)
    """How much darker than the liver a metastasis is."""
    fatty_liver_drop_hu: Range = (30.0, 60.0)
    """How much the steatotic liver's attenuation drops."""
    fatty_liver_grades_hu: Range = (25.0, 50.0)
    """Drop below the first value: mild; below the second: moderate; else severe."""
    liver_scale: Range = (0.92, 1.05)
    """Normal liver size relative to the reference liver."""
    hepatomegaly_scale: Range = (1.3, 1.45)
    spleen_scale: Range = (0.9, 1.05)
    splenomegaly_scale: Range = (1.8, 2.2)
    """Massive splenomegaly (length 19-23 cm): at (1.55, 1.85) the tiny tower's probe read it at
    0.73 within the demo budget, at (1.8, 2.2) 0.85 (docs/experiments/2026-11-28-research-log.md)."""
    gallstone_mm: Range = (12.0, 22.0)
    gallstone_hu: Range = (300.0, 900.0)
    renal_cyst_mm: Range = (28.0, 40.0)
    renal_cyst_hu: Range = (0.0, 12.0)
    renal_stone_mm: Range = (8.0, 14.0)
    renal_stone_hu: Range = (400.0, 1200.0)
    hydronephrosis_apd_mm: Range = (18.0, 40.0)
    """Antero-posterior diameter of the dilated renal pelvis."""
    hydronephrosis_grades_mm: Range = (15.0, 25.0)
    pleural_effusion_depth_mm: Range = (30.0, 70.0)
    """Thickness of the dependent fluid layer."""
    pleural_effusion_grades_mm: Range = (20.0, 45.0)
    lung_nodule_mm: Range = (18.0, 30.0)
    lung_nodule_hu: Range = (20.0, 60.0)
    ascites_depth_mm: Range = (15.0, 40.0)
    """Thickness of the fluid rim along the peritoneal lining."""
    ascites_grades_mm: Range = (10.0, 25.0)
    aorta_mm: Range = (18.0, 24.0)
    """Normal aortic diameter."""
    aortic_aneurysm_mm: Range = (42.0, 62.0)

    # --- rows and splits -----------------------------------------------------------------
    vqa_per_case: int = 2
    """Short-answer (VQA) rows kept per case (0 = none)."""
    vqa_types: tuple[str, ...] = ("presence",)
    """Question types of the VQA rows (mu2.findings.questions.QTYPES): presence (yes/no),
    side, location, severity. With more than presence the rows record their ``qtype``
    and the types take turns for the ``vqa_per_case`` places."""
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """train / val / test shares of the cases."""
    holdout_combos: tuple[str, ...] = ()
    """Finding pairs "a+b" seen only in test_generalisation.jsonl, never in train."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        for k in self.kinds:
            if k not in FINDING_KINDS:
                problems.append(f"kinds: unknown kind '{k}' (known: {', '.join(FINDING_KINDS)})")
        for k, p in self.prevalence_by_kind.items():
            if k not in FINDING_KINDS:
                problems.append(f"prevalence_by_kind: unknown kind '{k}'")
            if not 0.0 <= float(p) <= 1.0:
                problems.append(f"prevalence_by_kind.{k} must be in [0, 1], got {p}")
        for name in (
            "prevalence",
            "multiple_prob",
            "bilateral_prob",
            "pelvis_prob",
            "contrast_prob",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {v}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("Range", Range) and (len(v) != 2 or v[0] > v[1]):
                problems.append(f"{f.name} must be (low, high) with low <= high, got {v}")
        if not self.in_plane or min(self.in_plane) < 16:
            problems.append(f"in_plane sizes must be >= 16, got {self.in_plane}")
        if len(self.slices) != 2 or not 4 <= self.slices[0] <= self.slices[1]:
            problems.append(f"slices must be (low, high) with 4 <= low <= high, got {self.slices}")
        if self.max_findings < 0 or self.max_count < 2 or self.vqa_per_case < 0:
            problems.append("max_findings and vqa_per_case must be >= 0, max_count >= 2")
        if not self.vqa_types or len(set(self.vqa_types)) != len(self.vqa_types):
            problems.append(f"vqa_types must be distinct question types, got {self.vqa_types}")
        problems += [f"vqa_types: {p}" for p in check_qtypes(self.vqa_types)]
        if self.anatomy not in ("procedural", "real"):
            problems.append(f"anatomy is '{self.anatomy}', use procedural or real")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-6:
            problems.append(f"split must be three shares >= 0 that sum to 1, got {self.split}")
        for combo in self.holdout_combos:
            parts = combo.split("+")
            if len(parts) != 2 or any(p not in self.kinds for p in parts):
                problems.append(
                    f"holdout combo '{combo}' must be two kinds of `kinds` joined by '+', "
                    "e.g. splenomegaly+renal_cyst"
                )
        if problems:
            raise Mu2Error("invalid synthetic data config: " + "; ".join(problems))

    def prevalence_of(self, kind: str) -> float:
        return float(self.prevalence_by_kind.get(kind, self.prevalence))

    def combos(self) -> list[frozenset[str]]:
        return [frozenset(c.split("+")) for c in self.holdout_combos]


# Field values of each preset on top of the defaults (which are the tiny preset).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    "hard": {
        "kinds": list(ALL_KINDS),
        "prevalence": 0.15,
        "max_findings": 5,
        "multiple_prob": 0.3,
        "noise_sd_hu": [12.0, 25.0],
        "contrast_prob": 0.5,
        "tissue": {"spleen": [48.0, 115.0]},
        "liver_cyst_mm": [5.0, 30.0],
        "liver_metastasis_mm": [6.0, 30.0],
        "liver_metastasis_delta_hu": [15.0, 40.0],
        "fatty_liver_drop_hu": [12.0, 60.0],
        "liver_scale": [0.9, 1.1],
        "hepatomegaly_scale": [1.15, 1.35],
        "spleen_scale": [0.85, 1.1],
        "splenomegaly_scale": [1.25, 1.6],
        "gallstone_mm": [4.0, 20.0],
        "renal_cyst_mm": [5.0, 30.0],
        "renal_stone_mm": [2.0, 9.0],
        "hydronephrosis_apd_mm": [10.0, 40.0],
        "pleural_effusion_depth_mm": [6.0, 60.0],
        "lung_nodule_mm": [4.0, 15.0],
        "ascites_depth_mm": [4.0, 35.0],
        "aortic_aneurysm_mm": [30.0, 55.0],
    },
}

# Grid of each --size on top of the defaults (which are the tiny size).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "paper": {
        "in_plane": [256, 384, 512],
        "slices": [20, 300],
        "fov_margin": [1.08, 1.3],
        "z_top_mm": [170.0, 230.0],
        "pelvis_prob": 0.5,
    },
}


def make_config(
    preset: str = "tiny",
    size: str = "tiny",
    anatomy: str = "procedural",
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> SynthConfig:
    """Defaults <- preset <- size <- ``base`` (e.g. a YAML file) <- ``key=value`` overrides."""
    if preset not in PRESETS:
        raise Mu2Error(f"unknown preset '{preset}'", fix=f"use one of {', '.join(PRESETS)}")
    if size not in SIZES:
        raise Mu2Error(f"unknown size '{size}'", fix=f"use one of {', '.join(SIZES)}")
    data: dict[str, Any] = {**PRESETS[preset], **SIZES[size], "anatomy": anatomy, **(base or {})}
    data = apply_overrides(data, overrides or [])
    return from_dict(SynthConfig, data)


DEFAULT_VQA_TYPES: tuple[str, ...] = (PRESENCE,)


def config_dict(cfg: SynthConfig) -> dict[str, Any]:
    """The config as plain data (manifest.json, the demo's stage hash).

    ``vqa_types`` is left out at its default, so the manifests and stage hashes of data
    sets written before the field existed stay what they were (reading one back gives
    the default again)."""
    out = to_dict(cfg)
    if tuple(cfg.vqa_types) == DEFAULT_VQA_TYPES:
        del out["vqa_types"]
    return out
