"""Coverage from HU on the real CT samples and on crops / re-storings made from them.

The abdomen-pelvis CT (lung bases at its top, femoral heads at its bottom, the body
touching the left and right image edges) and the 20-slice DICOM slab of the upper abdomen
(arms down) are real scans; the chest crop, the slabs and the LPS storing are cut from them
here, so every variant is still real anatomy.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mu2.errors import Mu2Error
from mu2.generate.coverage import detect_coverage, scan_coverage
from mu2.generate.scope import plan_regions
from mu2.io import load_ct

DEMO_CARD_REGIONS = ["chest", "abdomen"]  # what the synthetic demo data hold (no pelvis)


@pytest.fixture(scope="module")
def ct(real_ct_path: Path):
    return load_ct(real_ct_path)  # (122, 101, 112), 3 mm, canonical RAS (z toward the head)


def _cov(volume, z: slice = slice(None), x: slice = slice(None)):
    return detect_coverage(volume.array[x, :, z], volume.spacing)


def test_abdomen_pelvis_ct_has_no_chest_question(ct) -> None:
    cov = scan_coverage(ct)
    # 21 mm of lung bases belong to the abdomen's report: no chest section, no lung findings
    # asked for; the femoral heads and iliac wings make the pelvis.
    assert cov.regions == ["abdomen", "pelvis"]
    assert all(cov.organs[o] for o in ("liver", "spleen", "kidney", "bladder", "bowel"))
    assert cov.to_dict()["landmarks"]["pelvic_bones_z_mm"][0] == 0.0
    # the demo card lacks the pelvis: automatic mode asks the abdomen only, and says why
    plan = plan_regions(None, cov.regions, DEMO_CARD_REGIONS)
    assert plan.regions == ["abdomen"] and "pelvis" in plan.warnings[0]


def test_chest_crop_with_lungs_touching_the_image_edge_is_asked_about_the_chest(ct) -> None:
    top = ct.array[:, :, -8:]
    lung = (top > -950) & (top < -600)
    assert lung[0].any() and lung[-1].any()  # aerated lung on the left and right image edge
    # as stored; and a 246 mm field of view cutting through both lungs (hole filling
    # finds no lung there: the lungs are open to the image edge)
    for x in (slice(None), slice(20, -20)):
        cov = _cov(ct, slice(-8, None), x)
        assert cov.regions == ["chest"], x
        assert not cov.organs["kidney"] and not cov.organs["bladder"] and cov.organs["lung"]
        assert plan_regions(None, cov.regions, DEMO_CARD_REGIONS).regions == ["chest"]


@pytest.mark.parametrize(
    ("z", "regions"),
    [
        (slice(46, 66), ["abdomen"]),  # 20 slices mid-abdomen: not all three
        (slice(5, 25), ["pelvis"]),  # 20 slices through the hips
        (slice(-20, None), ["abdomen"]),  # lung bases + upper abdomen: no pelvis
        (slice(40, None), ["abdomen"]),  # everything above the iliac wings: no pelvis
    ],
)
def test_slabs_are_asked_only_what_they_cover(ct, z: slice, regions: list[str]) -> None:
    cov = _cov(ct, z)
    assert cov.regions == regions
    assert plan_regions(None, cov.regions, None).regions == regions
    for other in {"chest", "abdomen", "pelvis"} - set(regions):
        with pytest.raises(Mu2Error, match=f"does not cover the {other}.*--force"):
            plan_regions(other, cov.regions, None)  # named by the user: refused
    if "pelvis" not in regions:
        assert not cov.organs["bladder"]


def test_real_dicom_upper_abdomen_slab_arms_down(data_dir: Path) -> None:
    vol = load_ct(data_dir / "real-ct" / "example_ct_dicom")  # 20 x 2 mm, stored LPS
    cov = scan_coverage(vol)
    assert cov.regions == ["abdomen"]  # a 4 cm slab: not all three regions
    assert cov.organs["liver"] and cov.organs["spleen"] and not cov.organs["bladder"]
    # the arms beside the body are not pelvic bones
    assert cov.to_dict()["landmarks"]["pelvic_bones_z_mm"] is None


@pytest.mark.parametrize(("flips", "codes"), [((0, 1), "LPS"), ((0, 1, 2), "LPI")])
def test_other_storings_give_the_same_coverage(
    ct, real_ct_path: Path, tmp_path: Path, flips: tuple[int, ...], codes: str
) -> None:
    ras = nib.as_closest_canonical(nib.load(real_ct_path))
    # the same voxels stored with the flipped axes reversed (LPS as DICOM-derived files are;
    # LPI also from feet to head) and the affine that says so
    data = np.flip(np.asarray(ras.dataobj), axis=flips)
    index = np.eye(4)
    for k in flips:  # voxel i of the flipped axis is voxel n-1-i of the original
        index[k, k], index[k, 3] = -1.0, data.shape[k] - 1
    img = nib.Nifti1Image(np.ascontiguousarray(data), ras.affine @ index)
    assert "".join(nib.aff2axcodes(img.affine)) == codes
    nib.save(img, tmp_path / "ct.nii.gz")
    got = scan_coverage(load_ct(tmp_path / "ct.nii.gz")).to_dict()
    want = scan_coverage(ct).to_dict()
    assert got["regions"] == want["regions"] == ["abdomen", "pelvis"]
    assert got["organs_in_view"] == want["organs_in_view"]
    assert got["landmarks"] == want["landmarks"]


@pytest.mark.parametrize("fill", [-1000.0, 0.0])
def test_no_body_no_region(fill: float) -> None:
    cov = detect_coverage(np.full((40, 40, 20), fill, np.float32), (3.0, 3.0, 3.0))
    if fill < -500:
        assert cov.regions == [] and not any(cov.organs.values())
    else:  # a uniform block of water: a body, but no lungs, no bone -> no landmark
        assert "chest" not in cov.regions and "pelvis" not in cov.regions
