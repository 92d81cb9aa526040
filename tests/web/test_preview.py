"""The viewer's volume: subsampling steps, byte layout and value ranges."""

from __future__ import annotations

import numpy as np
import pytest

from mu2.web.preview import HU_RANGE, preview_steps, volume_preview


def test_steps_keep_every_side_under_the_cap() -> None:
    assert preview_steps((122, 101, 112), 256) == (1, 1, 1)
    assert preview_steps((512, 512, 300), 256) == (2, 2, 2)
    assert preview_steps((513, 100, 10), 256) == (3, 1, 1)


def test_bytes_are_c_order_xyz_with_clipped_hu_and_scaled_heat() -> None:
    rng = np.random.default_rng(0)
    ct = rng.uniform(-2000, 5000, size=(10, 7, 5)).astype(np.float32)
    heat = rng.uniform(0, 1, size=ct.shape).astype(np.float32)
    p = volume_preview(ct, (0.8, 0.8, 2.5), heat, max_dim=256)
    assert p.shape == (10, 7, 5) and p.step == (1, 1, 1)
    got = np.frombuffer(p.ct, dtype="<i2").reshape(p.shape)
    np.testing.assert_array_equal(got, np.clip(np.rint(ct), *HU_RANGE).astype(np.int16))
    # the page reads voxel (x, y, z) at (x * Y + y) * Z + z
    x, y, z = 3, 5, 2
    assert np.frombuffer(p.ct, dtype="<i2")[(x * 7 + y) * 5 + z] == got[x, y, z]
    h = np.frombuffer(p.heat, dtype=np.uint8).reshape(p.shape)
    np.testing.assert_array_equal(h, np.rint(heat * 255).astype(np.uint8))
    assert p.nbytes == ct.size * 3


def test_subsampled_spacing_and_no_heat() -> None:
    ct = np.zeros((600, 40, 9), dtype=np.float32)
    p = volume_preview(ct, (0.5, 1.0, 3.0), None, max_dim=256)
    assert p.step == (3, 1, 1) and p.shape == (200, 40, 9)
    assert p.spacing == pytest.approx((1.5, 1.0, 3.0))
    assert p.heat is None and p.describe()["shape"] == [200, 40, 9]
