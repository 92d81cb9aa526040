"""Procedural anatomy: realistic attenuation, organs in fat, RAS layout, drawn findings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mu2.data.synthetic.anatomy import LABELS
from mu2.data.synthetic.phantom import build_phantom
from mu2.data.synthetic.plan import Planned
from mu2.data.synthetic.synth_config import make_config


def _phantom(plan: list[Planned], seed: int = 0, **over):
    cfg = make_config(overrides=[f"{k}={v}" for k, v in over.items()])
    return build_phantom(cfg, plan, np.random.default_rng(seed))


def _centroid(anat, name: str) -> np.ndarray:
    return np.argwhere(anat.labels == LABELS[name]).mean(axis=0)


def test_tissues_have_realistic_hu_and_organs_sit_in_fat() -> None:
    anat, drawn = _phantom([], contrast_prob=0.0)
    assert drawn == [] and not anat.contrast
    t = make_config().tissue
    for name, (plain, _) in (("liver", t.liver), ("spleen", t.spleen), ("aorta", t.aorta)):
        values = anat.hu[anat.labels == LABELS[name]]
        assert abs(float(np.median(values)) - plain) <= t.jitter + 1e-3, name
    assert abs(float(np.median(anat.hu[anat.labels == LABELS["fat"]])) - t.fat) <= t.jitter
    assert float(np.median(anat.hu[anat.labels == LABELS["bone"]])) == t.bone
    assert float(np.median(anat.hu[anat.mask("lung_right", "lung_left")])) == pytest.approx(
        t.lung, abs=t.jitter
    )
    # the spleen and the kidneys touch fat on a good share of their surface
    for organ in ("spleen", "kidney_left", "kidney_right"):
        m = anat.labels == LABELS[organ]
        shell = ndimage.binary_dilation(m, iterations=1) & ~m
        assert (anat.labels[shell] == LABELS["fat"]).mean() > 0.3, organ


def test_layout_is_ras_liver_right_spleen_left_lungs_on_top() -> None:
    anat, _ = _phantom([])
    nx, ny, nz = anat.labels.shape
    liver, spleen = _centroid(anat, "liver"), _centroid(anat, "spleen")
    assert liver[0] > nx / 2 > spleen[0]  # index grows toward the patient's Right
    assert _centroid(anat, "kidney_right")[0] > nx / 2 > _centroid(anat, "kidney_left")[0]
    lungs = np.argwhere(anat.mask("lung_right", "lung_left"))
    assert lungs[:, 2].mean() > liver[2]  # Superior
    spine = _centroid(anat, "spinal_canal")
    assert spine[1] < ny / 2 < _centroid(anat, "gallbladder")[1]  # Anterior grows with y
    assert anat.regions == ("chest", "abdomen")


def test_enlarged_spleen_and_aneurysm_are_drawn_to_their_planned_size() -> None:
    normal, _ = _phantom([], seed=3)
    big, drawn = _phantom(
        [
            Planned("splenomegaly", None, 1, [1.8], []),
            Planned("aortic_aneurysm", None, 1, [55.0], []),
        ],
        seed=3,
    )
    sx, sy = big.grid.spacing[:2]
    assert (big.labels == LABELS["spleen"]).sum() > 2.5 * (normal.labels == LABELS["spleen"]).sum()
    area = (big.labels == LABELS["aorta"]).sum(axis=(0, 1)) * sx * sy  # (Z,) mm^2
    widest = 2 * np.sqrt(area.max() / np.pi)
    assert abs(widest - 55.0) < 2 * sx
    kinds = {d.finding.finding: d for d in drawn}
    assert kinds["aortic_aneurysm"].finding.size_mm == 55.0
    assert kinds["splenomegaly"].details["length_mm"] > 150


def test_graded_fluid_findings_follow_the_drawn_depth() -> None:
    plan = [
        Planned("pleural_effusion", "bilateral", 1, [15.0, 55.0], []),
        Planned("ascites", None, 1, [30.0], []),
        Planned("hydronephrosis", "left", 1, [12.0], []),
    ]
    anat, drawn = _phantom(plan, seed=1)
    kinds = {d.finding.finding: d.finding for d in drawn}
    assert kinds["pleural_effusion"].side == "bilateral"
    assert kinds["pleural_effusion"].severity == "severe"  # the worse side (55 mm >= 45)
    assert kinds["ascites"].severity == "severe"  # 30 mm >= 25
    assert kinds["hydronephrosis"].side == "left" and kinds["hydronephrosis"].severity == "mild"
    fluid = np.argwhere(anat.labels == LABELS["fluid"])
    assert len(fluid) > 0


def test_paper_size_grid_and_pelvis() -> None:
    cfg = make_config(size="paper", overrides=["in_plane=[256]", "slices=[40,40]", "pelvis_prob=1"])
    anat, _ = build_phantom(cfg, [], np.random.default_rng(0))
    assert anat.labels.shape == (256, 256, 40)
    assert anat.regions == ("chest", "abdomen", "pelvis")
    assert anat.grid.spacing[2] > 5.0  # ~400 mm of anatomy in 40 slices
