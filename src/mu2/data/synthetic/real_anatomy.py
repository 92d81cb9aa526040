"""A real CT and its organ label map as the anatomy of synthetic cases.

The default is the TotalSegmentator sample shipped with the tests (Apache-2.0): a
122 x 101 x 30 abdominal CT at 3 mm with a ``total``-task label map. Its labels are
mapped by NAME (from the JSON beside the map) onto :data:`~mu2.data.synthetic.anatomy.LABELS`,
lesions are drawn inside its organ masks by :mod:`mu2.data.synthetic.lesions`, and a little extra
noise makes every case a different image. The base is assumed normal: organs it shows
without a drawn finding are reported normal.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from mu2.data.synthetic.anatomy import LABELS, Anatomy, regions_shown
from mu2.data.synthetic.measure import robust_sd
from mu2.data.synthetic.shapes import Grid
from mu2.data.synthetic.synth_config import SynthConfig
from mu2.errors import Mu2Error

# Finding kinds that can be drawn on a real CT (inside organ masks, or a whole organ's HU).
REAL_KINDS: tuple[str, ...] = (
    "liver_cyst",
    "liver_metastasis",
    "fatty_liver",
    "gallstone",
    "renal_cyst",
    "renal_stone",
    "lung_nodule",
)
# Organ(s) each kind needs in the field, with at least ``SynthConfig.region_min_ml``/5.
NEEDS: dict[str, tuple[str, ...]] = {
    "liver_cyst": ("liver",),
    "liver_metastasis": ("liver",),
    "fatty_liver": ("liver",),
    "gallstone": ("gallbladder",),
    "renal_cyst": ("kidney_right", "kidney_left"),
    "renal_stone": ("kidney_right", "kidney_left"),
    "lung_nodule": ("lung_right", "lung_left"),
}
SAMPLE_DIR = Path(__file__).resolve().parents[4] / "tests" / "data" / "real-ct"
SAMPLE_CT = "example_ct_sm.nii.gz"
SAMPLE_SEG = "example_seg.nii.gz"
FAT_HU = (-200.0, -30.0)  # unlabelled voxels in this range count as fat


def map_name(name: str) -> str:
    """A TotalSegmentator structure name in mu2's label vocabulary."""
    direct = {
        "spleen": "spleen",
        "kidney_right": "kidney_right",
        "kidney_left": "kidney_left",
        "gallbladder": "gallbladder",
        "liver": "liver",
        "stomach": "stomach",
        "pancreas": "pancreas",
        "aorta": "aorta",
        "inferior_vena_cava": "ivc",
        "urinary_bladder": "bladder",
        "heart": "heart",
        "spinal_cord": "spinal_canal",
    }
    if name in direct:
        return direct[name]
    if name.startswith("lung_"):
        return "lung_left" if "left" in name else "lung_right"
    if name in ("small_bowel", "duodenum", "colon", "esophagus"):
        return "bowel"
    bone = (
        "vertebrae_",
        "rib_",
        "sacrum",
        "hip_",
        "femur_",
        "sternum",
        "costal_cartilages",
        "scapula_",
        "clavicula_",
        "humerus_",
        "skull",
    )
    if name.startswith(bone):
        return "bone"
    if name.startswith(("autochthon_", "iliopsoas_", "gluteus_")):
        return "muscle"
    return "other"


@dataclass(frozen=True)
class RealBase:
    """The real CT resampled for the grid size, with labels in mu2's vocabulary."""

    hu: np.ndarray  # float32 (X, Y, Z)
    labels: np.ndarray  # uint8 (X, Y, Z)
    grid: Grid
    noise_sd: float  # the CT's own noise, measured in the liver
    source: str


def default_paths(cfg: SynthConfig) -> tuple[Path, Path, Path]:
    ct = Path(cfg.real_ct) if cfg.real_ct else SAMPLE_DIR / SAMPLE_CT
    seg = Path(cfg.real_seg) if cfg.real_seg else SAMPLE_DIR / SAMPLE_SEG
    labels = (
        Path(cfg.real_labels)
        if cfg.real_labels
        else seg.with_name(seg.name.split(".")[0] + "_labels.json")
    )
    for p, key in ((ct, "real_ct"), (seg, "real_seg"), (labels, "real_labels")):
        if not p.is_file():
            raise Mu2Error(
                f"real anatomy file not found ({key})",
                path=str(p),
                fix=f"pass --set {key}=PATH (a CT, its organ label map and the label-name JSON)",
            )
    return ct, seg, labels


@functools.lru_cache(maxsize=2)
def load_base(ct: str, seg: str, labels_json: str, max_in_plane: int) -> RealBase:
    """Read, reorient to RAS, map labels, shrink in-plane to ``max_in_plane`` (cached)."""
    ct_img = nib.as_closest_canonical(nib.load(ct))
    seg_img = nib.as_closest_canonical(nib.load(seg))
    hu = np.asarray(ct_img.dataobj, dtype=np.float32)
    lab = np.asarray(seg_img.dataobj).astype(np.int32)
    if hu.ndim != 3 or hu.shape != lab.shape:
        raise Mu2Error(
            f"CT shape {hu.shape} and label map shape {lab.shape} differ (or are not 3-D)",
            path=seg,
            fix="pass the label map that belongs to this CT",
        )
    try:
        names = {int(k): str(v) for k, v in json.loads(Path(labels_json).read_text()).items()}
    except (ValueError, AttributeError) as err:
        raise Mu2Error(
            f"label-name JSON unreadable ({err})",
            path=labels_json,
            fix='write {"1": "spleen", "2": "kidney_right", ...}',
        ) from None
    lut = np.full(max(int(lab.max()), max(names, default=0)) + 1, LABELS["other"], np.uint8)
    for i, name in names.items():
        lut[i] = LABELS[map_name(name)]
    labels = lut[lab]
    unl = lab == 0
    labels[unl & (hu < -500)] = LABELS["background"]
    labels[unl & (hu >= FAT_HU[0]) & (hu <= FAT_HU[1])] = LABELS["fat"]
    spacing = [float(v) for v in ct_img.header.get_zooms()[:3]]
    f = min(1.0, max_in_plane / max(hu.shape[0], hu.shape[1]))
    if f < 1.0:
        hu = ndimage.zoom(hu, (f, f, 1.0), order=1)  # (X, Y, Z) -> (fX, fY, Z)
        labels = ndimage.zoom(labels, (f, f, 1.0), order=0)
        spacing = [
            spacing[0] * lab.shape[0] / hu.shape[0],
            spacing[1] * lab.shape[1] / hu.shape[1],
            spacing[2],
        ]
    grid = Grid(tuple(hu.shape), tuple(spacing), tuple(float(v) for v in ct_img.affine[:3, 3]))  # type: ignore[arg-type]
    liver = ndimage.binary_erosion(labels == LABELS["liver"], iterations=2)
    sd = robust_sd(hu[liver]) if liver.any() else robust_sd(hu[labels == LABELS["fat"]])
    return RealBase(hu, labels, grid, sd, str(ct))


def allowed_kinds(base: RealBase, min_ml: float) -> tuple[str, ...]:
    counts = np.bincount(base.labels.ravel(), minlength=len(LABELS))
    ok = []
    for k in REAL_KINDS:
        need = NEEDS[k]
        if all(counts[LABELS[o]] * base.grid.voxel_ml >= min_ml / 5 for o in need):
            ok.append(k)
    return tuple(ok)


def real_anatomy(base: RealBase, cfg: SynthConfig, rng: np.random.Generator) -> Anatomy:
    """A fresh copy of the base; ``noise_sd`` is the extra noise to add to it."""
    extra = float(rng.uniform(*cfg.real_noise_sd_hu))
    info = {"source": base.source, "base_noise_sd": round(base.noise_sd, 2)}
    return Anatomy(
        grid=base.grid,
        hu=base.hu.copy(),
        labels=base.labels.copy(),
        regions=regions_shown(base.labels, base.grid, cfg.region_min_ml),
        contrast=False,
        source="real",
        noise_sd=extra,
        info=info,
    )


def total_noise_sd(base_sd: float, added_sd: float) -> float:
    """Independent noise adds in variance."""
    return math.sqrt(base_sd**2 + added_sd**2)
