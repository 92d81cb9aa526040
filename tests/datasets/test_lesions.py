"""Focal lesions inside organ masks, real anatomy, and the CNR measurement."""

from __future__ import annotations

import numpy as np
import pytest

from mu2.data.synthetic.anatomy import LABELS, Anatomy
from mu2.data.synthetic.case import make_case
from mu2.data.synthetic.lesions import draw_focal, fatty_liver
from mu2.data.synthetic.measure import measure
from mu2.data.synthetic.plan import Planned
from mu2.data.synthetic.real_anatomy import default_paths, load_base, real_anatomy
from mu2.data.synthetic.shapes import Grid
from mu2.data.synthetic.synth_config import make_config


def _block_anatomy(organ_hu: float = 100.0) -> Anatomy:
    """A 40^3 grid of 2 mm voxels: fat with a 50 mm 'liver' cube in the middle."""
    grid = Grid((40, 40, 40), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    labels = np.full(grid.shape, LABELS["fat"], np.uint8)
    labels[7:33, 7:33, 7:33] = LABELS["liver"]
    hu = np.where(labels == LABELS["liver"], organ_hu, -100.0).astype(np.float32)
    return Anatomy(grid, hu, labels, ("abdomen",), False, "procedural", 10.0)


def test_lesions_lie_inside_the_organ_do_not_overlap_and_report_their_size() -> None:
    anat = _block_anatomy()
    liver_before = anat.labels == LABELS["liver"]
    d = draw_focal(
        anat, Planned("liver_cyst", None, 2, [16.0, 12.0], [0.0, 0.0]), np.random.default_rng(0)
    )
    assert d is not None
    f = d.finding
    assert (f.organ, f.count, f.size_mm) == ("liver", 2, 16.0)
    lesion = anat.labels == LABELS["lesion"]
    assert lesion.any() and not (lesion & ~liver_before).any()  # never outside the liver
    assert sum(m.count for m in d.masks) == lesion.sum()  # no overlap between the two
    assert np.all(anat.hu[lesion] == 0.0)


def test_a_lesion_too_big_for_its_organ_is_shrunk_or_left_out() -> None:
    anat = _block_anatomy()
    d = draw_focal(anat, Planned("liver_cyst", None, 1, [70.0], [5.0]), np.random.default_rng(0))
    assert d is not None and d.finding.size_mm < 50.0  # shrunk to fit the 50 mm organ
    gone = draw_focal(
        _block_anatomy(), Planned("liver_cyst", None, 1, [200.0], [5.0]), np.random.default_rng(0)
    )
    assert gone is None  # would need less than half its size: not drawn, not reported


def test_cnr_is_contrast_over_noise_measured_on_the_image() -> None:
    anat = _block_anatomy(organ_hu=100.0)
    d = draw_focal(anat, Planned("liver_cyst", None, 1, [20.0], [0.0]), np.random.default_rng(1))
    noise_sd = 10.0
    image = anat.hu + np.random.default_rng(2).normal(0.0, noise_sd, anat.hu.shape).astype(
        np.float32
    )
    f = measure(image, anat, d, noise_sd)
    assert f.extra["size_voxels"] == (anat.labels == LABELS["lesion"]).sum()
    assert f.extra["contrast_hu"] == pytest.approx(-100.0, abs=3.0)
    assert f.extra["cnr"] == pytest.approx(10.0, abs=0.3)
    # against a noise-free image the contrast is exact
    exact = measure(anat.hu, anat, d, noise_sd)
    assert exact.extra["contrast_hu"] == -100.0 and exact.extra["cnr"] == 10.0


def test_real_anatomy_lesions_in_the_real_kidney_and_liver(real_ct_path) -> None:
    cfg = make_config(anatomy="real")
    base = load_base(*map(str, default_paths(cfg)), 64)
    assert base.hu.shape[0] == 64 and base.labels.shape == base.hu.shape
    anat = real_anatomy(base, cfg, np.random.default_rng(0))
    assert "abdomen" in anat.regions
    right = anat.labels == LABELS["kidney_right"]
    allowed = right | anat.mask("renal_sinus", "fat")
    d = draw_focal(anat, Planned("renal_cyst", "right", 1, [20.0], [5.0]), np.random.default_rng(0))
    assert d is not None and d.finding.side == "right"
    lesion = anat.labels == LABELS["lesion"]
    # the cyst replaced right-kidney voxels (or perirenal fat only), on the patient's right
    assert (lesion & right).any() and not (lesion & ~allowed).any()
    assert np.argwhere(lesion)[:, 0].mean() > anat.labels.shape[0] / 2
    liver = anat.labels == LABELS["liver"]
    before = anat.hu[liver].mean()
    f = fatty_liver(anat, 30.0, "moderate")
    assert f is not None and anat.hu[liver].mean() == pytest.approx(before - 30.0, abs=1e-3)


def test_real_anatomy_cases_measure_their_findings() -> None:
    cfg = make_config(
        anatomy="real", overrides=["prevalence=1.0", "kinds=[liver_cyst,fatty_liver]"]
    )
    case = make_case(cfg, 0, 0)
    kinds = {f.finding: f for f in case.findings}
    assert set(kinds) == {"liver_cyst", "fatty_liver"}
    assert case.info["anatomy"] == "real" and case.volume.dtype == np.int16
    assert kinds["liver_cyst"].extra["cnr"] > 0 and kinds["liver_cyst"].extra["size_voxels"] > 0
