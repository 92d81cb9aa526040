"""Heat maps land on the original scan: NIfTI with the input's affine/shape, PNG montage."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from matplotlib.image import imread

from mu2.generate.heatmap import (
    display_range,
    frames_to_input,
    hottest_slices,
    normalise_heat,
    patches_to_frames,
    save_heatmap_nifti,
    save_heatmap_png,
)
from mu2.generate.pipeline import ReportGenerator
from mu2.io import load_ct
from mu2.preprocess import prep_config, prepare


def test_patch_heat_upsamples_onto_its_patch() -> None:
    attr = torch.zeros(2, 4, 8, 8)  # (T, gz, gy, gx)
    attr[1, 2, 5, 3] = 1.0
    heat = patches_to_frames(attr, (16, 64, 64))  # patch = (4, 8, 8) voxels
    assert heat.shape == (2, 16, 64, 64)
    t, k, h, w = np.unravel_index(int(heat.argmax()), heat.shape)
    assert t == 1 and 8 <= k < 12 and 40 <= h < 48 and 24 <= w < 32
    assert heat[0].abs().max() == 0  # no leak across frames


def test_frames_to_input_follows_the_preprocessing_mapping(real_ct_path: Path) -> None:
    """A heat blob put on the frames where a known CT region went comes back on that region."""
    volume = load_ct(real_ct_path)
    prepared = prepare(volume, prep_config("tiny"))
    target = np.zeros(volume.shape, np.float32)
    target[20:40, 30:50, 60:80] = 1.0  # a box on the canonical input grid
    frames = prepared.mapping.to_frames(target)  # where the box sits in (T, K, H, W)
    heat = frames_to_input(frames, prepared)
    assert heat.shape == volume.shape
    peak = np.unravel_index(int(heat.argmax()), heat.shape)
    assert 20 <= peak[0] < 40 and 30 <= peak[1] < 50 and 60 <= peak[2] < 80
    assert heat[target > 0].mean() > 5 * heat[target == 0].mean()


def test_normalise_and_display_range() -> None:
    h = normalise_heat(np.array([-1.0, 0.0, 2.0, np.nan, 4.0]))
    np.testing.assert_allclose(h, [0, 0, 0.5, 0, 1.0])
    assert normalise_heat(np.zeros(3)).max() == 0
    lo, hi = display_range(np.array([0.0, 0.2, 0.4, 1.0]))
    assert lo == pytest.approx(0.4) and hi == 1.0


def test_hottest_slices_are_spread() -> None:
    heat = np.zeros((4, 4, 40), np.float32)
    heat[..., 10] = 1.0
    heat[..., 11] = 0.99  # neighbour of the hottest: skipped
    heat[..., 30] = 0.5
    picked = hottest_slices(heat, 2, min_gap=3)
    assert picked == [10, 30]


AXCODES = {"lps": ("L", "P", "S"), "pls": ("P", "L", "S")}


def _reoriented_copy(src: Path, dst: Path, codes: tuple[str, str, str]) -> Path:
    """The same CT stored in another orientation (a real reorientation, via nibabel)."""
    img = nib.load(str(src))
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(img.affine), nib.orientations.axcodes2ornt(codes)
    )
    nib.save(img.as_reoriented(ornt), str(dst))
    return dst


@pytest.fixture(scope="module")
def ras_heat(generator: ReportGenerator, real_ct_path: Path) -> np.ndarray:
    res = generator.report(load_ct(real_ct_path), region="abdomen", max_new_tokens=1, heatmap=True)
    return res.heatmap


@pytest.mark.parametrize("layout", ["ras", "lps", "pls"])
def test_heatmap_nifti_has_input_affine_and_shape(
    generator: ReportGenerator,
    real_ct_path: Path,
    ras_heat: np.ndarray,
    tmp_path: Path,
    layout: str,
) -> None:
    if layout == "ras":
        path = real_ct_path
    else:
        path = _reoriented_copy(real_ct_path, tmp_path / f"{layout}.nii.gz", AXCODES[layout])
    src = nib.load(str(path))
    assert nib.aff2axcodes(src.affine) == AXCODES.get(layout, ("R", "A", "S"))
    volume = load_ct(path)
    res = generator.report(volume, region="abdomen", max_new_tokens=1, heatmap=True)
    out = save_heatmap_nifti(volume, res.heatmap, tmp_path / f"heat_{layout}.nii.gz")
    heat_img = nib.load(str(out))
    assert heat_img.shape == src.shape
    np.testing.assert_allclose(heat_img.affine, src.affine, atol=1e-5)
    # Same anatomy -> same heat in world space, whatever the storage order.
    canon = nib.as_closest_canonical(heat_img).get_fdata()
    np.testing.assert_allclose(canon, res.heatmap, atol=1e-6)
    np.testing.assert_allclose(canon, ras_heat, atol=1e-4)
    # And in the file's own voxel order, the heat is the RAS heat reoriented like the CT.
    back = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(("R", "A", "S")), nib.orientations.io_orientation(src.affine)
    )
    expected = nib.orientations.apply_orientation(ras_heat, back)
    np.testing.assert_allclose(np.asarray(heat_img.dataobj), expected, atol=1e-4)


def test_png_montage_is_written_and_shows_heat(real_ct_path: Path, tmp_path: Path) -> None:
    volume = load_ct(real_ct_path)
    heat = np.zeros(volume.shape, np.float32)
    heat[70:90, 40:60, 50:60] = 1.0  # a hot block on the patient's left, mid abdomen
    out = save_heatmap_png(volume.array, heat, volume.spacing, tmp_path / "h.png", n_slices=4)
    assert out.stat().st_size > 20_000
    img = imread(str(out))[..., :3]
    assert img.shape[0] > 300 and img.shape[1] > 600
    # Grey CT has R == G == B; the heat overlay and colour bar add coloured pixels.
    chroma = img.max(axis=2) - img.min(axis=2)
    assert (chroma > 0.2).mean() > 0.005
    # Nothing hot -> far fewer coloured pixels (only the colour bar).
    out0 = save_heatmap_png(volume.array, np.zeros_like(heat), volume.spacing, tmp_path / "z.png")
    img0 = imread(str(out0))[..., :3]
    assert ((img0.max(axis=2) - img0.min(axis=2)) > 0.2).mean() < (chroma > 0.2).mean()
