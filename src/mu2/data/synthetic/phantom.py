"""Procedural abdominal anatomy: a body of fat and muscle with organs embedded in it.

A learnability probe of a small ViT3D showed why the layout matters: organs
surrounded by muscle-like tissue are invisible to a small model, organs embedded in fat
(-100 HU) are not. So the body is fat inside a muscle wall, and every organ sits in
visceral fat at its realistic attenuation. Random body size, organ sizes and positions,
slice count and spacing, contrast phase.

Findings that change the anatomy itself are drawn here (enlarged liver or spleen,
aneurysm, hydronephrosis, pleural effusion, ascites); steatosis and focal lesions are
added afterwards by :mod:`mu2.data.synthetic.lesions`, the same way for the real anatomy.

Layout (mm, array axes (x, y, z) = (R, A, S)): body centred at x = y = 0; anatomical z
is 0 at the kidneys' centre, the diaphragm domes at ~150, the aortic bifurcation at
~-110, the bladder at ~-260. Shapes are rasterised per bounding box (:mod:`shapes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from mu2.data.synthetic.anatomy import LABELS, Anatomy, DrawnFinding, regions_shown
from mu2.data.synthetic.canvas import Canvas
from mu2.data.synthetic.organ_findings import fluid_finding, merge_sides, organ_findings
from mu2.data.synthetic.plan import Planned
from mu2.data.synthetic.shapes import BoxMask, Grid, ellipsoid, mask_to_box, tube_z
from mu2.data.synthetic.synth_config import SynthConfig, TissueHU

# Reference anatomy (mm), before the per-case random variation.
BODY_HALF_WIDTH_MM = (140.0, 175.0)
BODY_DEPTH_RATIO = (0.70, 0.82)  # antero-posterior / lateral half-axis
SUBCUTANEOUS_FAT_MM = (12.0, 35.0)
MUSCLE_WALL_MM = (8.0, 14.0)
DOME_TOP_MM = (140.0, 160.0)  # right hemidiaphragm; the left is 5-20 mm lower
RECESS_DEPTH_MM = (80.0, 100.0)  # costophrenic recess below the dome top
AORTIC_BIFURCATION_MM = -110.0
PERIRENAL_FAT_MM = 8.0

Vec3 = tuple[float, float, float]


def _tissue(t: TissueHU, contrast: bool, rng: np.random.Generator) -> dict[str, float]:
    """Per-case attenuation of every tissue (phase chosen, jittered)."""
    out: dict[str, float] = {}
    for name, v in vars(t).items():
        if name == "jitter":
            continue
        base = v[1 if contrast else 0] if isinstance(v, (tuple, list)) else v
        fixed = name in ("air", "bone")
        out[name] = float(base) + (0.0 if fixed else float(rng.uniform(-t.jitter, t.jitter)))
    return out


def _make_grid(cfg: SynthConfig, half_width: float, rng: np.random.Generator) -> tuple[Grid, bool]:
    n = int(rng.choice(cfg.in_plane))
    s_xy = 2.0 * half_width * float(rng.uniform(*cfg.fov_margin)) / n
    pelvis = bool(rng.random() < cfg.pelvis_prob)
    z_top = float(rng.uniform(*cfg.z_top_mm))
    z_bot = float(rng.uniform(*(cfg.pelvis_bottom_mm if pelvis else cfg.z_bottom_mm)))
    nz = int(rng.integers(cfg.slices[0], cfg.slices[1] + 1))
    s_z = (z_top - z_bot) / nz
    origin = (-(n - 1) / 2 * s_xy, -(n - 1) / 2 * s_xy, z_bot + s_z / 2)
    return Grid((n, n, nz), (s_xy, s_xy, s_z), origin), pelvis


@dataclass
class _Body:
    """What every drawing step of one phantom shares: the grid, the tissue attenuations,
    the body and cavity half-axes, the canvas and the findings drawn so far.

    Steps run in a fixed order and draw from one generator, so the order of the steps (and
    of the draws inside each) is part of the output: the same seed gives the same phantom.
    """

    cfg: SynthConfig
    rng: np.random.Generator
    planned: dict[str, Planned]
    hu_of: dict[str, float]  # tissue name -> attenuation of this case (HU)
    half_w: float  # body half-width (mm, x)
    half_d: float  # body half-depth (mm, y)
    grid: Grid
    pelvis: bool
    x2: np.ndarray  # (X, 1) mm
    y2: np.ndarray  # (1, Y) mm
    z1: np.ndarray  # (Z,) mm
    cav_w: float = 0.0  # abdominal cavity half-width (mm)
    cav_d: float = 0.0  # abdominal cavity half-depth (mm)
    wall2d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    cavity2d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    dome2d: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    top_r: float = 0.0  # right diaphragm dome top (mm, z)
    top_l: float = 0.0
    cv: Canvas | None = None
    spine_r: float = 0.0  # vertebral body radius (mm)
    spine_y: float = 0.0  # vertebral body centre (mm, y)
    drawn: list[DrawnFinding] = field(default_factory=list)

    @property
    def canvas(self) -> Canvas:
        assert self.cv is not None, "the body wall is drawn first"
        return self.cv

    @property
    def labels(self) -> np.ndarray:
        return self.canvas.labels

    @property
    def hu(self) -> np.ndarray:
        return self.canvas.hu


# Paint keywords of the abdominal organs: inside the cavity, below the diaphragm.
_ABDOMEN = {"cavity": True, "below_dome": True}


def _draw_body_wall(b: _Body) -> None:
    """Skin-fat-muscle rings, the cavity filled with visceral fat, the diaphragm domes."""
    rng, grid, T, x2, y2 = b.rng, b.grid, b.hu_of, b.x2, b.y2
    nx, ny, nz = grid.shape
    t_sc, t_m = float(rng.uniform(*SUBCUTANEOUS_FAT_MM)), float(rng.uniform(*MUSCLE_WALL_MM))
    b.cav_w, b.cav_d = b.half_w - t_sc - t_m, b.half_d - t_sc - t_m

    def ellipse(a: float, c: float) -> np.ndarray:
        return (x2 / a) ** 2 + (y2 / c) ** 2 <= 1.0  # (X, Y)

    body2d = ellipse(b.half_w, b.half_d)
    b.wall2d = ellipse(b.half_w - t_sc, b.half_d - t_sc)
    b.cavity2d = ellipse(b.cav_w, b.cav_d)
    lab2d = np.full((nx, ny), LABELS["background"], np.uint8)
    hu2d = np.full((nx, ny), T["air"], np.float32)
    for m, name in ((body2d, "fat"), (b.wall2d, "muscle"), (b.cavity2d, "fat")):
        lab2d[m], hu2d[m] = LABELS[name], T[name]
    labels = np.repeat(lab2d[:, :, None], nz, axis=2)  # (X, Y) -> (X, Y, Z)
    hu = np.repeat(hu2d[:, :, None], nz, axis=2)

    # Diaphragm: one dome per side; lungs above it, abdominal organs below.
    b.top_r = float(rng.uniform(*DOME_TOP_MM))
    b.top_l = b.top_r - float(rng.uniform(5.0, 20.0))
    recess = float(rng.uniform(*RECESS_DEPTH_MM))
    half_cav = b.cav_w / 2
    q_r = ((x2 - half_cav) / half_cav) ** 2 + (y2 / b.cav_d) ** 2
    q_l = ((x2 + half_cav) / half_cav) ** 2 + (y2 / b.cav_d) ** 2
    b.dome2d = np.where(
        x2 >= 0, b.top_r - recess * np.minimum(q_r, 1.3), b.top_l - recess * np.minimum(q_l, 1.3)
    ).astype(np.float32)
    b.cv = Canvas(grid, hu, labels, b.cavity2d, b.dome2d)


def _draw_bowel_and_stomach(b: _Body) -> None:
    rng, grid, T, cv = b.rng, b.grid, b.hu_of, b.canvas
    cw, cd = b.cav_w, b.cav_d
    z_low = max(grid.origin[2], -150.0 if not b.pelvis else grid.origin[2] + 60.0)
    for _ in range(int(rng.integers(6, 13))):
        c = (rng.uniform(-0.65, 0.65) * cw, rng.uniform(-0.1, 0.7) * cd, rng.uniform(z_low, 30.0))
        r = tuple(rng.uniform(10.0, 20.0, size=3))
        cv.paint(ellipsoid(grid, c, r), "bowel", T["bowel"], only=("fat",), **_ABDOMEN)
        if rng.random() < 0.35:
            cv.paint(
                ellipsoid(grid, c, tuple(max(ri - 4.0, 2.0) for ri in r)),
                "bowel",
                T["air"],
                only=("bowel",),
                **_ABDOMEN,
            )
    for cx, cy, ztop in ((0.7 * cw, 0.05 * cd, 40.0), (-0.72 * cw, -0.05 * cd, 70.0)):
        rc = float(rng.uniform(16.0, 22.0))
        colon = tube_z(grid, cx, cy, rc, (AORTIC_BIFURCATION_MM, ztop))
        cv.paint(colon, "bowel", T["bowel"], **_ABDOMEN)
        if rng.random() < 0.6:
            lumen = tube_z(grid, cx, cy, rc - 4.0, (AORTIC_BIFURCATION_MM, ztop))
            cv.paint(lumen, "bowel", T["air"], **_ABDOMEN)
    st_c = (-0.32 * cw, 0.25 * cd, b.top_l - 55.0)
    st_r = (45.0, 38.0, 45.0)
    cv.paint(ellipsoid(grid, st_c, st_r), "stomach", T["stomach"], **_ABDOMEN)
    gas = ellipsoid(grid, st_c, st_r)
    if gas is not None:
        gas.mask &= grid.coords(gas.box)[1] > st_c[1] + 0.45 * st_r[1]
        cv.paint(gas, "stomach", T["air"], only=("stomach",))


def _draw_liver_and_spleen(b: _Body) -> None:
    """Liver and spleen, scaled by a planned hepatomegaly / splenomegaly."""
    rng, grid, T, cv, cfg, planned = b.rng, b.grid, b.hu_of, b.canvas, b.cfg, b.planned
    cw, cd = b.cav_w, b.cav_d
    s_liv = (
        planned["hepatomegaly"].values[0]
        if "hepatomegaly" in planned
        else float(rng.uniform(*cfg.liver_scale))
    )
    s_spl = (
        planned["splenomegaly"].values[0]
        if "splenomegaly" in planned
        else float(rng.uniform(*cfg.spleen_scale))
    )
    rz = 80.0 * s_liv
    lobes = (
        (
            (0.45 * cw, 0.0, b.top_r + 10.0 - rz),
            (0.55 * cw * s_liv**0.5, 0.8 * cd * s_liv**0.5, rz),
        ),
        ((-0.1 * cw, 0.45 * cd, b.top_r - 30.0), (0.42 * cw * s_liv**0.5, 0.3 * cd, 45.0 * s_liv)),
    )
    for c, r in lobes:
        cv.paint(ellipsoid(grid, c, r), "liver", T["liver"], **_ABDOMEN)
    sr = (22.0 * s_spl**0.5, 45.0 * s_spl**0.5, 52.0 * s_spl)
    spleen = ellipsoid(grid, (-0.66 * cw, -0.3 * cd, b.top_l - 10.0 - sr[2]), sr, angle=-0.6)
    cv.paint(spleen, "spleen", T["spleen"], **_ABDOMEN)


def _draw_kidney(b: _Body, side: str, sgn: float) -> tuple[Vec3, Vec3, float]:
    """One kidney in its perirenal fat (cortex, medulla, sinus), with hydronephrosis if
    planned; returns its centre, radii and angle."""
    rng, grid, T, cv = b.rng, b.grid, b.hu_of, b.canvas
    kr = (float(rng.uniform(24, 28)), float(rng.uniform(20, 25)), float(rng.uniform(50, 58)))
    kc = (
        sgn * (b.spine_r + 38.0 + kr[0]),
        b.spine_y + 6.0,
        float(rng.uniform(-25, -5) if side == "right" else rng.uniform(-10, 10)),
    )
    ang = sgn * 0.5
    name = f"kidney_{side}"
    # Perirenal fat carves the renal fossa into the posterior wall, then the kidney.
    pad = tuple(r + PERIRENAL_FAT_MM for r in kr)
    cv.paint(ellipsoid(grid, kc, pad, ang), "fat", T["fat"], only=("muscle", "fat", "bowel"))
    cv.paint(ellipsoid(grid, kc, kr, ang), name, T["kidney_cortex"])
    inner = tuple(r - 6.0 for r in kr)
    cv.paint(ellipsoid(grid, kc, inner, ang), name, T["kidney_medulla"], only=(name,))
    sc = (kc[0] - sgn * 0.35 * kr[0], kc[1] + 0.1 * kr[1], kc[2])
    sinus = ellipsoid(grid, sc, (0.35 * kr[0], 0.35 * kr[1], 0.5 * kr[2]), ang)
    cv.paint(sinus, "renal_sinus", T["fat"] + 20.0, only=(name,))
    hydro = b.planned.get("hydronephrosis")
    if hydro is not None and side in hydro.sides:
        apd = min(hydro.values[hydro.sides.index(side)], 2.0 * (kr[1] - 6.0) - 2.0)
        fr = (0.6 * apd, apd / 2.0, min(0.6 * kr[2], 1.2 * apd))
        pelvis_fluid, medulla = ellipsoid(grid, sc, fr, ang), ellipsoid(grid, kc, inner, ang)
        got = None
        if pelvis_fluid is not None and medulla is not None:
            got = cv.paint(
                pelvis_fluid.intersect(medulla), "fluid", T["urine"], only=(name, "renal_sinus")
            )
        if got is not None:
            b.drawn.append(
                fluid_finding(
                    "hydronephrosis", "kidney", side, got, (name,), apd, b.cfg,
                    {"apd_mm": round(apd, 1)},
                )
            )  # fmt: skip
    return kc, kr, ang


def _draw_retroperitoneum(b: _Body) -> dict[str, tuple[Vec3, Vec3, float]]:
    """Spine geometry (the bone is drawn last), kidneys, pancreas and gallbladder."""
    rng, grid, T, cv = b.rng, b.grid, b.hu_of, b.canvas
    b.spine_r = float(rng.uniform(16.0, 21.0))
    b.spine_y = -b.cav_d + 0.6 * b.spine_r
    kidneys = {side: _draw_kidney(b, side, sgn) for side, sgn in (("right", 1.0), ("left", -1.0))}
    pc = (-0.05 * b.cav_w, b.spine_y + b.spine_r + 30.0, float(rng.uniform(10.0, 30.0)))
    pancreas = ellipsoid(grid, pc, (0.32 * b.cav_w, 11.0, 14.0), angle=0.25)
    cv.paint(pancreas, "pancreas", T["pancreas"], only=("fat", "bowel"), **_ABDOMEN)
    gr = (float(rng.uniform(15, 20)), float(rng.uniform(15, 20)), float(rng.uniform(30, 40)))
    gb = ellipsoid(grid, (0.28 * b.cav_w, 0.3 * b.cav_d, b.top_r - 105.0), gr)
    cv.paint(gb, "gallbladder", T["bile"], **_ABDOMEN)
    return kidneys


def _draw_thorax(b: _Body) -> np.ndarray:
    """Lungs, heart and a planned pleural effusion; returns the above-dome mask (X, Y, Z)."""
    grid, T, cv, x2, y2 = b.grid, b.hu_of, b.canvas, b.x2, b.y2
    labels, hu = b.labels, b.hu
    above = b.z1[None, None, :] >= b.dome2d[:, :, None]  # (X, Y, Z)
    for side, sel in (("right", x2 > 15.0), ("left", x2 < -15.0)):
        lung = above & (b.cavity2d & sel)[:, :, None]
        labels[lung], hu[lung] = LABELS[f"lung_{side}"], T["lung"]
    heart = ellipsoid(
        grid,
        (-0.15 * b.cav_w, 0.3 * b.cav_d, b.top_r + 55.0),
        (0.4 * b.cav_w, 0.55 * b.cav_d, 60.0),
    )
    cv.paint(heart, "heart", T["heart"], above_dome=True, cavity=True)
    p = b.planned.get("pleural_effusion")
    if p is not None:
        # (X, 1): the posterior wall of the cavity at each x
        y_back = -b.cav_d * np.sqrt(np.clip(1.0 - (x2 / b.cav_w) ** 2, 0.0, 1.0))
        for side, depth in zip(p.sides, p.values, strict=True):
            fluid = (labels == LABELS[f"lung_{side}"]) & ((y2 - y_back) < depth)[:, :, None]
            got = mask_to_box(fluid)
            if got is not None:
                got = cv.paint(got, "fluid", T["fluid"])
                b.drawn.append(
                    fluid_finding(
                        "pleural_effusion", "pleura", side, got, (f"lung_{side}",), depth, b.cfg,
                        {"depth_mm": round(depth, 1)}, ring_mm=15.0,
                    )
                )  # fmt: skip
    return above


def _draw_vessels(b: _Body) -> float:
    """Aorta (an aneurysm is a fusiform bump of its radius) and IVC; returns the aortic
    radius (mm) before any aneurysm."""
    rng, grid, T, cv, z1 = b.rng, b.grid, b.hu_of, b.canvas, b.z1
    r_a = float(rng.uniform(*b.cfg.aorta_mm)) / 2.0
    ya = b.spine_y + b.spine_r + r_a + 2.0
    radius = np.full(grid.shape[2], r_a, np.float32)  # (Z,)
    if "aortic_aneurysm" in b.planned:
        r_max = b.planned["aortic_aneurysm"].values[0] / 2.0
        half = float(rng.uniform(25.0, 40.0))
        lo = min(max(grid.origin[2] + 0.6 * half, AORTIC_BIFURCATION_MM + half), -20.0)
        zc = float(rng.uniform(lo, -20.0))
        bump = np.cos(np.clip((z1 - zc) / half, -1.0, 1.0) * np.pi / 2) ** 2
        radius = (r_a + (r_max - r_a) * bump).astype(np.float32)
    aorta = tube_z(
        grid, -0.6 * b.spine_r, ya + (radius - r_a), radius, (AORTIC_BIFURCATION_MM, 1e4)
    )
    cv.paint(aorta, "aorta", T["aorta"])
    ivc_y = b.spine_y + b.spine_r + 13.0
    cv.paint(
        tube_z(grid, 1.1 * b.spine_r, ivc_y, float(rng.uniform(9, 12)), (-100.0, 170.0)),
        "ivc",
        T["ivc"],
    )
    return r_a


def _draw_spine_muscles_ribs(b: _Body) -> None:
    rng, grid, T, cv, z1 = b.rng, b.grid, b.hu_of, b.canvas, b.z1
    r_vb, yv = b.spine_r, b.spine_y
    psoas = np.clip(8.0 + (20.0 - z1) * 0.12, 0.0, 22.0) * (z1 < 20.0)  # (Z,) radius
    for sgn in (1.0, -1.0):
        cv.paint(
            tube_z(grid, sgn * (r_vb + 16.0), yv + 2.0, psoas, (-1e4, 20.0)),
            "muscle", T["muscle"], only=("fat", "bowel"),
        )  # fmt: skip
        cv.paint(
            tube_z(grid, sgn * (r_vb + 14.0), yv - r_vb - 22.0, 24.0, (-1e4, 1e4)),
            "muscle", T["muscle"], only=("fat", "muscle"),
        )  # fmt: skip
    disc = ((z1 % 34.0) < 7.0).astype(np.float32)  # (Z,) intervertebral discs
    vb = tube_z(grid, 0.0, yv, r_vb, (-1e4, 1e4))
    cv.paint(vb, "bone", T["bone"])
    if vb is not None:
        soft = vb.mask & (disc[vb.box[2]] > 0)[None, None, :]
        cv.paint(BoxMask(vb.box, soft), "bone", T["muscle"] + 30.0)
    cv.paint(tube_z(grid, 0.0, yv - r_vb - 9.0, 13.0, (-1e4, 1e4)), "bone", T["bone"])
    cv.paint(tube_z(grid, 0.0, yv - r_vb - 9.0, 7.0, (-1e4, 1e4)), "spinal_canal", T["csf"])
    ribs = (z1 > 30.0) & (((z1 - float(rng.uniform(0, 30))) % 30.0) < 10.0)  # (Z,)
    ring = b.wall2d & ~b.cavity2d & (b.y2 < 0.3 * b.half_d) & (np.abs(b.x2) > r_vb + 30.0)
    ring3 = ring[:, :, None] & ribs[None, None, :]  # (X, Y, 1) & (1, 1, Z) -> (X, Y, Z)
    b.labels[ring3], b.hu[ring3] = LABELS["bone"], T["bone"]


def _draw_pelvis(b: _Body) -> None:
    """Bladder and iliac wings, when the field of view reaches the pelvis."""
    rng, grid, T, cv = b.rng, b.grid, b.hu_of, b.canvas
    zb = grid.origin[2] + float(rng.uniform(35.0, 55.0))
    br = tuple(np.array([45.0, 35.0, 35.0]) * rng.uniform(0.8, 1.2))
    cv.paint(ellipsoid(grid, (0.0, 0.3 * b.cav_d, zb), br), "bladder", T["urine"], cavity=True)
    for sgn in (1.0, -1.0):
        wing = ellipsoid(
            grid, (sgn * 0.6 * b.cav_w, -0.3 * b.cav_d, -185.0), (12.0, 50.0, 55.0), angle=sgn * 0.6
        )
        cv.paint(wing, "bone", T["bone"])


def _draw_ascites(b: _Body, above: np.ndarray) -> None:
    """Fluid replaces the fat along the peritoneal lining, below the diaphragm."""
    depth = b.planned["ascites"].values[0]
    wall_dist = ndimage.distance_transform_edt(b.cavity2d, sampling=b.grid.spacing[:2])
    rim2d = b.cavity2d & (wall_dist < depth) & (b.y2 > b.spine_y + b.spine_r)  # (X, Y)
    fluid = (rim2d[:, :, None] & ~above) & (b.labels == LABELS["fat"])  # (X, Y, Z)
    got = mask_to_box(fluid)
    if got is not None:
        got = b.canvas.paint(got, "fluid", b.hu_of["fluid"])
        b.drawn.append(
            fluid_finding(
                "ascites", "peritoneum", None, got, ("fat",), depth, b.cfg,
                {"depth_mm": round(depth, 1)},
            )
        )  # fmt: skip


def build_phantom(
    cfg: SynthConfig, plan: list[Planned], rng: np.random.Generator
) -> tuple[Anatomy, list[DrawnFinding]]:
    """Draw one procedural anatomy with the organ-level findings of ``plan``.

    The steps run in this order (each draws from ``rng``): body wall and diaphragm, bowel
    and stomach, liver and spleen, kidneys / pancreas / gallbladder, thorax, vessels,
    spine / muscles / ribs, pelvis, ascites.
    """
    contrast = bool(rng.random() < cfg.contrast_prob)
    hu_of = _tissue(cfg.tissue, contrast, rng)
    half_w = float(rng.uniform(*BODY_HALF_WIDTH_MM))
    half_d = half_w * float(rng.uniform(*BODY_DEPTH_RATIO))
    grid, pelvis = _make_grid(cfg, half_w, rng)
    b = _Body(
        cfg, rng, {p.kind: p for p in plan}, hu_of, half_w, half_d, grid, pelvis,
        x2=grid.axis(0)[:, None], y2=grid.axis(1)[None, :], z1=grid.axis(2),
    )  # fmt: skip
    _draw_body_wall(b)
    _draw_bowel_and_stomach(b)
    _draw_liver_and_spleen(b)
    kidneys = _draw_retroperitoneum(b)
    above = _draw_thorax(b)
    r_a = _draw_vessels(b)
    _draw_spine_muscles_ribs(b)
    if pelvis:
        _draw_pelvis(b)
    if "ascites" in b.planned:
        _draw_ascites(b, above)

    drawn = merge_sides(b.drawn) + organ_findings(b.planned, b.labels, grid, cfg, r_a)
    regions = regions_shown(b.labels, grid, cfg.region_min_ml)
    info = {
        "body_mm": [round(2 * half_w, 1), round(2 * half_d, 1)],
        "pelvis": pelvis,
        "kidneys": {s: [round(v, 1) for v in k[0]] for s, k in kidneys.items()},
    }
    noise = float(rng.uniform(*cfg.noise_sd_hu))
    anatomy = Anatomy(grid, b.hu, b.labels, regions, contrast, "procedural", noise, info)
    return anatomy, drawn
