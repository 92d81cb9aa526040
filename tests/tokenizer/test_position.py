"""RPE: per-head tables sized from the configuration; relative_3d depends only on offsets."""

from __future__ import annotations

import torch

from mu2.tokenizer.position import (
    AbsolutePosition,
    RelativeBias1D,
    RelativeBias3D,
    relative_index_3d,
    spatial_bias,
)


def _coords(grid):
    gz, gy, gx = grid
    return [(z, y, x) for z in range(gz) for y in range(gy) for x in range(gx)]


def test_relative_3d_table_is_per_head_and_sized_from_grid():
    grid, heads = (4, 8, 8), 8
    rpe = RelativeBias3D(grid, heads)
    assert rpe.table.shape == (7 * 15 * 15, heads)
    bias = rpe()
    assert bias.shape == (heads, 256, 256)
    # heads have their own tables: no two heads share a bias map
    assert all(not torch.equal(bias[0], bias[h]) for h in range(1, heads))


def test_relative_3d_bias_depends_only_on_offsets():
    grid = (3, 4, 5)
    torch.manual_seed(0)
    rpe = RelativeBias3D(grid, heads=2)
    bias = rpe()
    coords = _coords(grid)
    index = {c: i for i, c in enumerate(coords)}
    shift = (1, 2, 1)
    checked = 0
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            a2 = tuple(u + s for u, s in zip(a, shift, strict=True))
            b2 = tuple(u + s for u, s in zip(b, shift, strict=True))
            if a2 in index and b2 in index:  # the same pair shifted inside the grid
                assert torch.equal(bias[:, i, j], bias[:, index[a2], index[b2]])
                checked += 1
    assert checked > 100
    # and different offsets read different entries (the table is not collapsed)
    idx = relative_index_3d(grid)
    assert idx.unique().numel() == (2 * 3 - 1) * (2 * 4 - 1) * (2 * 5 - 1)
    assert not torch.equal(bias[:, 0, 1], bias[:, 0, 5])  # dx = -1 vs dy = -1


def test_relative_1d_handles_many_queries_and_clamps_long_offsets():
    rpe = RelativeBias1D(max_len=1024, heads=8)  # the reference code's table crashed past 512
    assert rpe(1024).shape == (8, 1024, 1024)
    short = RelativeBias1D(max_len=4, heads=2)
    bias = short(10)  # longer than the table: offsets past +-3 share the edge entry
    assert torch.equal(bias[:, 9, 0], bias[:, 5, 0])
    assert torch.equal(bias[:, 0, 9], bias[:, 0, 4])
    assert torch.equal(bias[:, 3, 1], bias[:, 7, 5])


def test_relative_1d_scheme_over_flat_frame_tokens():
    mod = spatial_bias("relative_1d", (2, 3, 3), heads=4)
    assert mod().shape == (4, 18, 18)
    assert spatial_bias("absolute", (2, 3, 3), heads=4) is None


def test_absolute_adds_frame_and_token_embeddings():
    pos = AbsolutePosition(max_frames=2, tokens_per_frame=3, width=5)
    x = torch.zeros(1, 4, 3, 5)
    y = pos(x)
    assert torch.allclose(y[0, 1, 2], pos.frame[1] + pos.token[2])
    assert torch.equal(y[0, 3], y[0, 1])  # frames past max_frames share the last embedding
