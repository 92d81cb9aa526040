"""M3D's spatial pooling projector: 3-D average pool of the patch grid, then an MLP to E."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mu2.errors import Mu2Error


class SpatialPoolingProjector(nn.Module):
    """(F, N0, E_v) patch tokens on grid (gz, gy, gx) -> (F, N, E) with N = N0 / pool^3."""

    def __init__(self, in_dim: int, out_dim: int, grid: tuple[int, int, int], pool: int):
        super().__init__()
        if any(g % pool for g in grid):
            raise Mu2Error(
                f"vision token grid {tuple(grid)} is not divisible by the pool size {pool}"
            )
        self.grid = tuple(int(g) for g in grid)
        self.pool = int(pool)
        self.mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    @property
    def out_grid(self) -> tuple[int, int, int]:
        gz, gy, gx = (g // self.pool for g in self.grid)
        return gz, gy, gx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, n0, e = x.shape
        gz, gy, gx = self.grid
        x = x.transpose(1, 2).reshape(f, e, gz, gy, gx)  # (F, N0, E_v) -> (F, E_v, gz, gy, gx)
        x = F.avg_pool3d(x, kernel_size=self.pool, stride=self.pool)  # (F, E_v, gz/p, gy/p, gx/p)
        x = x.flatten(2).transpose(1, 2)  # -> (F, N, E_v)
        return self.mlp(x)  # (F, N, E)

    def backproject(self, relevance: torch.Tensor) -> torch.Tensor:
        """Relevance on the pooled grid (..., N) -> on the patch grid (..., gz, gy, gx).

        Each pooled token is the mean of pool^3 patches, so each patch gets 1/pool^3 of it.
        """
        p = self.pool
        r = relevance.reshape(*relevance.shape[:-1], *self.out_grid)  # (..., gz/p, gy/p, gx/p)
        for dim in (-3, -2, -1):
            r = r.repeat_interleave(p, dim=dim)
        return r / p**3  # (..., gz, gy, gx)
