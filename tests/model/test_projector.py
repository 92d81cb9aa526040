"""The spatial pooling projector and its relevance back-projection."""

from __future__ import annotations

import torch

from mu2.model.projector import SpatialPoolingProjector


def test_pools_the_grid_by_two_then_maps_to_the_llm_width():
    proj = SpatialPoolingProjector(in_dim=12, out_dim=20, grid=(8, 16, 16), pool=2)
    out = proj(torch.randn(3, 8 * 16 * 16, 12))
    assert out.shape == (3, 256, 20) and proj.out_grid == (4, 8, 8)


def test_pooling_follows_the_z_major_token_order():
    proj = SpatialPoolingProjector(in_dim=1, out_dim=4, grid=(2, 2, 4), pool=2)
    x = torch.arange(16.0).view(1, 16, 1)  # token index = (z*2 + y)*4 + x
    grid = x.view(2, 2, 4)
    pooled = torch.nn.functional.avg_pool3d(grid[None, None], 2).flatten()  # (2,) tokens
    expected = proj.mlp(pooled.view(1, 2, 1))
    assert torch.allclose(proj(x), expected)


def test_backproject_spreads_relevance_evenly_and_keeps_the_total():
    proj = SpatialPoolingProjector(in_dim=4, out_dim=4, grid=(4, 4, 4), pool=2)
    r = torch.rand(2, 3, 8)  # (B, T, N)
    back = proj.backproject(r)
    assert back.shape == (2, 3, 4, 4, 4)
    assert torch.allclose(back.sum((-3, -2, -1)), r.sum(-1))
    assert torch.allclose(back[0, 0, :2, :2, :2], r[0, 0, 0].expand(2, 2, 2) / 8)
