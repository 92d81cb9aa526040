"""Procedural abdominal anatomy: a body of fat and muscle with organs embedded in it.

A learnability probe of a small ViT3D showed why the layout matters: organs
surrounded by muscle-like tissue are invisible to a small model, organs embedded in fat
(-100 HU) are not. So the body is fat inside a muscle wall, and every organ sits in
visceral fat at its realistic attenuation. Random body size, organ sizes and positions,
slice count and spacing, contrast phase.

Findings that change the anatomy itself are drawn here (enlarged liver or spleen,
aneurysm, hydronephrosis, pleural effusion, ascites); steatosis and focal lesions are
added afterwards by :mod:`mu2.data.lesions`, the same way for the real anatomy.

Layout (mm, array axes (x, y, z) = (R, A, S)): body centred at x = y = 0; anatomical z
is 0 at the kidneys' centre, the diaphragm domes at ~150, the aortic bifurcation at
~-110, the bladder at ~-260. Shapes are rasterised per bounding box (:mod:`shapes`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mu2.data.anatomy import LABELS, Anatomy, DrawnFinding, regions_shown
from mu2.data.canvas import Canvas
from mu2.data.organ_findings import fluid_finding, merge_sides, organ_findings
from mu2.data.plan import Planned
from mu2.data.shapes import BoxMask, Grid, ellipsoid, mask_to_box, tube_z
from mu2.data.synth_config import SynthConfig, TissueHU

# Reference anatomy (mm), before the per-case random variation.
BODY_HALF_WIDTH_MM = (140.0, 175.0)
BODY_DEPTH_RATIO = (0.70, 0.82)  # antero-posterior / lateral half-axis
SUBCUTANEOUS_FAT_MM = (12.0, 35.0)
MUSCLE_WALL_MM = (8.0, 14.0)
DOME_TOP_MM = (140.0, 160.0)  # right hemidiaphragm; the left is 5-20 mm lower
RECESS_DEPTH_MM = (80.0, 100.0)  # costophrenic recess below the dome top
AORTIC_BIFURCATION_MM = -110.0
PERIRENAL_FAT_MM = 8.0


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


def build_phantom(
    cfg: SynthConfig, plan: list[Planned], rng: np.random.Generator
) -> tuple[Anatomy, list[DrawnFinding]]:
    """Draw one procedural anatomy with the organ-level findings of ``plan``."""
    planned = {p.kind: p for p in plan}
    contrast = bool(rng.random() < cfg.contrast_prob)
    T = _tissue(cfg.tissue, contrast, rng)
    A = float(rng.uniform(*BODY_HALF_WIDTH_MM))
    B = A * float(rng.uniform(*BODY_DEPTH_RATIO))
    grid, pelvis = _make_grid(cfg, A, rng)
    nx, ny, nz = grid.shape
    x2, y2 = grid.axis(0)[:, None], grid.axis(1)[None, :]  # (X, 1), (1, Y)
    z1 = grid.axis(2)

    # --- body wall: skin-fat-muscle rings, the cavity filled with visceral fat --------
    t_sc, t_m = float(rng.uniform(*SUBCUTANEOUS_FAT_MM)), float(rng.uniform(*MUSCLE_WALL_MM))
    Ac, Bc = A - t_sc - t_m, B - t_sc - t_m

    def ellipse(a: float, b: float) -> np.ndarray:
        return (x2 / a) ** 2 + (y2 / b) ** 2 <= 1.0  # (X, Y)

    body2d, wall2d, cavity2d = ellipse(A, B), ellipse(A - t_sc, B - t_sc), ellipse(Ac, Bc)
    lab2d = np.full((nx, ny), LABELS["background"], np.uint8)
    hu2d = np.full((nx, ny), T["air"], np.float32)
    for m, name in ((body2d, "fat"), (wall2d, "muscle"), (cavity2d, "fat")):
        lab2d[m], hu2d[m] = LABELS[name], T[name]
    labels = np.repeat(lab2d[:, :, None], nz, axis=2)  # (X, Y) -> (X, Y, Z)
    hu = np.repeat(hu2d[:, :, None], nz, axis=2)

    # Diaphragm: one dome per side; lungs above it, abdominal organs below.
    top_r = float(rng.uniform(*DOME_TOP_MM))
    top_l = top_r - float(rng.uniform(5.0, 20.0))
    recess = float(rng.uniform(*RECESS_DEPTH_MM))
    q_r = ((x2 - Ac / 2) / (Ac / 2)) ** 2 + (y2 / Bc) ** 2
    q_l = ((x2 + Ac / 2) / (Ac / 2)) ** 2 + (y2 / Bc) ** 2
    dome2d = np.where(
        x2 >= 0, top_r - recess * np.minimum(q_r, 1.3), top_l - recess * np.minimum(q_l, 1.3)
    ).astype(np.float32)
    cv = Canvas(grid, hu, labels, cavity2d, dome2d)
    abd = {"cavity": True, "below_dome": True}

    # --- bowel, stomach ---------------------------------------------------------------
    z_low = max(grid.origin[2], -150.0 if not pelvis else grid.origin[2] + 60.0)
    for _ in range(int(rng.integers(6, 13))):
        c = (rng.uniform(-0.65, 0.65) * Ac, rng.uniform(-0.1, 0.7) * Bc, rng.uniform(z_low, 30.0))
        r = tuple(rng.uniform(10.0, 20.0, size=3))
        cv.paint(ellipsoid(grid, c, r), "bowel", T["bowel"], only=("fat",), **abd)
        if rng.random() < 0.35:
            cv.paint(
                ellipsoid(grid, c, tuple(max(ri - 4.0, 2.0) for ri in r)),
                "bowel",
                T["air"],
                only=("bowel",),
                **abd,
            )
    for cx, cy, ztop in ((0.7 * Ac, 0.05 * Bc, 40.0), (-0.72 * Ac, -0.05 * Bc, 70.0)):
        rc = float(rng.uniform(16.0, 22.0))
        cv.paint(
            tube_z(grid, cx, cy, rc, (AORTIC_BIFURCATION_MM, ztop)), "bowel", T["bowel"], **abd
        )
        if rng.random() < 0.6:
            cv.paint(
                tube_z(grid, cx, cy, rc - 4.0, (AORTIC_BIFURCATION_MM, ztop)),
                "bowel",
                T["air"],
                **abd,
            )
    st_c = (-0.32 * Ac, 0.25 * Bc, top_l - 55.0)
    st_r = (45.0, 38.0, 45.0)
    cv.paint(ellipsoid(grid, st_c, st_r), "stomach", T["stomach"], **abd)
    gas = ellipsoid(grid, st_c, st_r)
    if gas is not None:
        gas.mask &= grid.coords(gas.box)[1] > st_c[1] + 0.45 * st_r[1]
        cv.paint(gas, "stomach", T["air"], only=("stomach",))

    # --- liver, spleen (scaled by hepatomegaly / splenomegaly) --------------------------
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
        ((0.45 * Ac, 0.0, top_r + 10.0 - rz), (0.55 * Ac * s_liv**0.5, 0.8 * Bc * s_liv**0.5, rz)),
        ((-0.1 * Ac, 0.45 * Bc, top_r - 30.0), (0.42 * Ac * s_liv**0.5, 0.3 * Bc, 45.0 * s_liv)),
    )
    for c, r in lobes:
        cv.paint(ellipsoid(grid, c, r), "liver", T["liver"], **abd)
    sr = (22.0 * s_spl**0.5, 45.0 * s_spl**0.5, 52.0 * s_spl)
    cv.paint(
        ellipsoid(grid, (-0.66 * Ac, -0.3 * Bc, top_l - 10.0 - sr[2]), sr, angle=-0.6),
        "spleen",
        T["spleen"],
        **abd,
    )

    # --- spine geometry (drawn last), kidneys, pancreas, gallbladder --------------------
    r_vb = float(rng.uniform(16.0, 21.0))
    yv = -Bc + 0.6 * r_vb
    drawn: list[DrawnFinding] = []
    kidneys: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {}
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        kr = (float(rng.uniform(24, 28)), float(rng.uniform(20, 25)), float(rng.uniform(50, 58)))
        kc = (
            sgn * (r_vb + 38.0 + kr[0]),
            yv + 6.0,
            float(rng.uniform(-25, -5) if side == "right" else rng.uniform(-10, 10)),
        )
        ang = sgn * 0.5
        kidneys[side] = (kc, kr, ang)
        name = f"kidney_{side}"
        # Perirenal fat carves the renal fossa into the posterior wall, then the kidney.
        pad = tuple(r + PERIRENAL_FAT_MM for r in kr)
        cv.paint(ellipsoid(grid, kc, pad, ang), "fat", T["fat"], only=("muscle", "fat", "bowel"))
        cv.paint(ellipsoid(grid, kc, kr, ang), name, T["kidney_cortex"])
        inner = tuple(r - 6.0 for r in kr)
        cv.paint(ellipsoid(grid, kc, inner, ang), name, T["kidney_medulla"], only=(name,))
        sc = (kc[0] - sgn * 0.35 * kr[0], kc[1] + 0.1 * kr[1], kc[2])
        cv.paint(
            ellipsoid(grid, sc, (0.35 * kr[0], 0.35 * kr[1], 0.5 * kr[2]), ang),
            "renal_sinus",
            T["fat"] + 20.0,
            only=(name,),
        )
        if "hydronephrosis" in planned and side in planned["hydronephrosis"].sides:
            p = planned["hydronephrosis"]
            apd = min(p.values[p.sides.index(side)], 2.0 * (kr[1] - 6.0) - 2.0)
            fr = (0.6 * apd, apd / 2.0, min(0.6 * kr[2], 1.2 * apd))
            pelvis_fluid, medulla = ellipsoid(grid, sc, fr, ang), ellipsoid(grid, kc, inner, ang)
            got = None
            if pelvis_fluid is not None and medulla is not None:
                got = cv.paint(
                    pelvis_fluid.intersect(medulla), "fluid", T["urine"], only=(name, "renal_sinus")
                )
            if got is not None:
                drawn.append(
                    fluid_finding(
                        "hydronephrosis",
                        "kidney",
                        side,
                        got,
                        (name,),
                        apd,
                        cfg,
                        {"apd_mm": round(apd, 1)},
                    )
                )
    pc = (-0.05 * Ac, yv + r_vb + 30.0, float(rng.uniform(10.0, 30.0)))
    cv.paint(
        ellipsoid(grid, pc, (0.32 * Ac, 11.0, 14.0), angle=0.25),
        "pancreas",
        T["pancreas"],
        only=("fat", "bowel"),
        **abd,
    )
    gr = (float(rng.uniform(15, 20)), float(rng.uniform(15, 20)), float(rng.uniform(30, 40)))
    cv.paint(
        ellipsoid(grid, (0.28 * Ac, 0.3 * Bc, top_r - 105.0), gr), "gallbladder", T["bile"], **abd
    )

    # --- lungs, heart, pleural effusion -------------------------------------------------
    above = z1[None, None, :] >= dome2d[:, :, None]  # (X, Y, Z)
    for side, sel in (("right", x2 > 15.0), ("left", x2 < -15.0)):
        lung = above & (cavity2d & sel)[:, :, None]
        labels[lung], hu[lung] = LABELS[f"lung_{side}"], T["lung"]
    cv.paint(
        ellipsoid(grid, (-0.15 * Ac, 0.3 * Bc, top_r + 55.0), (0.4 * Ac, 0.55 * Bc, 60.0)),
        "heart",
        T["heart"],
        above_dome=True,
        cavity=True,
    )
    if "pleural_effusion" in planned:
        p = planned["pleural_effusion"]
        y_back = -Bc * np.sqrt(np.clip(1.0 - (x2 / Ac) ** 2, 0.0, 1.0))  # (X, 1) posterior wall
        for side, depth in zip(p.sides, p.values, strict=True):
            fluid = (labels == LABELS[f"lung_{side}"]) & ((y2 - y_back) < depth)[:, :, None]
            got = mask_to_box(fluid)
            if got is not None:
                got = cv.paint(got, "fluid", T["fluid"])
                drawn.append(
                    fluid_finding(
                        "pleural_effusion",
                        "pleura",
                        side,
                        got,
                        (f"lung_{side}",),
                        depth,
                        cfg,
                        {"depth_mm": round(depth, 1)},
                        ring_mm=15.0,
                    )
                )

    # --- vessels (aneurysm = a fusiform bump of the aortic radius) -----------------------
    r_a = float(rng.uniform(*cfg.aorta_mm)) / 2.0
    ya = yv + r_vb + r_a + 2.0
    radius = np.full(nz, r_a, np.float32)
    if "aortic_aneurysm" in planned:
        R = planned["aortic_aneurysm"].values[0] / 2.0
        half = float(rng.uniform(25.0, 40.0))
        lo = min(max(grid.origin[2] + 0.6 * half, AORTIC_BIFURCATION_MM + half), -20.0)
        zc = float(rng.uniform(lo, -20.0))
        bump = np.cos(np.clip((z1 - zc) / half, -1.0, 1.0) * np.pi / 2) ** 2
        radius = (r_a + (R - r_a) * bump).astype(np.float32)
    cv.paint(
        tube_z(grid, -0.6 * r_vb, ya + (radius - r_a), radius, (AORTIC_BIFURCATION_MM, 1e4)),
        "aorta",
        T["aorta"],
    )
    cv.paint(
        tube_z(grid, 1.1 * r_vb, yv + r_vb + 13.0, float(rng.uniform(9, 12)), (-100.0, 170.0)),
        "ivc",
        T["ivc"],
    )

    # --- spine, muscles, ribs -------------------------------------------------------------
    psoas = np.clip(8.0 + (20.0 - z1) * 0.12, 0.0, 22.0) * (z1 < 20.0)
    for sgn in (1.0, -1.0):
        cv.paint(
            tube_z(grid, sgn * (r_vb + 16.0), yv + 2.0, psoas, (-1e4, 20.0)),
            "muscle",
            T["muscle"],
            only=("fat", "bowel"),
        )
        cv.paint(
            tube_z(grid, sgn * (r_vb + 14.0), yv - r_vb - 22.0, 24.0, (-1e4, 1e4)),
            "muscle",
            T["muscle"],
            only=("fat", "muscle"),
        )
    disc = ((z1 % 34.0) < 7.0).astype(np.float32)  # (Z,) intervertebral discs
    vb = tube_z(grid, 0.0, yv, r_vb, (-1e4, 1e4))
    cv.paint(vb, "bone", T["bone"])
    if vb is not None:
        soft = vb.mask & (disc[vb.box[2]] > 0)[None, None, :]
        cv.paint(BoxMask(vb.box, soft), "bone", T["muscle"] + 30.0)
    cv.paint(tube_z(grid, 0.0, yv - r_vb - 9.0, 13.0, (-1e4, 1e4)), "bone", T["bone"])
    cv.paint(tube_z(grid, 0.0, yv - r_vb - 9.0, 7.0, (-1e4, 1e4)), "spinal_canal", T["csf"])
    ribs = (z1 > 30.0) & (((z1 - float(rng.uniform(0, 30))) % 30.0) < 10.0)  # (Z,)
    ring = (wall2d & ~cavity2d & (y2 < 0.3 * B) & (np.abs(x2) > r_vb + 30.0))[:, :, None]
    ring = ring & ribs[None, None, :]  # (X, Y, 1) & (1, 1, Z) -> (X, Y, Z)
    labels[ring], hu[ring] = LABELS["bone"], T["bone"]

    # --- pelvis ----------------------------------------------------------------------------
    if pelvis:
        zb = grid.origin[2] + float(rng.uniform(35.0, 55.0))
        br = tuple(np.array([45.0, 35.0, 35.0]) * rng.uniform(0.8, 1.2))
        cv.paint(ellipsoid(grid, (0.0, 0.3 * Bc, zb), br), "bladder", T["urine"], cavity=True)
        for sgn in (1.0, -1.0):
            cv.paint(
                ellipsoid(
                    grid, (sgn * 0.6 * Ac, -0.3 * Bc, -185.0), (12.0, 50.0, 55.0), angle=sgn * 0.6
                ),
                "bone",
                T["bone"],
            )

    # --- ascites: fluid replaces the fat along the peritoneal lining ------------------------
    if "ascites" in planned:
        depth = planned["ascites"].values[0]
        wall_dist = ndimage.distance_transform_edt(cavity2d, sampling=grid.spacing[:2])
        rim2d = cavity2d & (wall_dist < depth) & (y2 > yv + r_vb)
        fluid = (rim2d[:, :, None] & ~above) & (labels == LABELS["fat"])
        got = mask_to_box(fluid)
        if got is not None:
            got = cv.paint(got, "fluid", T["fluid"])
            drawn.append(
                fluid_finding(
                    "ascites",
                    "peritoneum",
                    None,
                    got,
                    ("fat",),
                    depth,
                    cfg,
                    {"depth_mm": round(depth, 1)},
                )
            )

    drawn = merge_sides(drawn) + organ_findings(planned, labels, grid, cfg, r_a)
    regions = regions_shown(labels, grid, cfg.region_min_ml)
    info = {
        "body_mm": [round(2 * A, 1), round(2 * B, 1)],
        "pelvis": pelvis,
        "kidneys": {s: [round(v, 1) for v in k[0]] for s, k in kidneys.items()},
    }
    noise = float(rng.uniform(*cfg.noise_sd_hu))
    anatomy = Anatomy(grid, hu, labels, regions, contrast, "procedural", noise, info)
    return anatomy, drawn
