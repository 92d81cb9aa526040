"""Position information for the μ² Tokenizer: relative biases (μ² RPE) or absolute embeddings.

Three schemes, chosen by ``rpe``:

* ``relative_3d`` (μ²): a learned per-head bias indexed by the (dz, dy, dx) offset between two
  tokens of a frame's token grid, and by the frame offset across frames;
* ``relative_1d`` (reference code): per-head bias indexed by the offset on the flattened token
  sequence;
* ``absolute`` (LinVT): learned frame and token embeddings added to the features.

Tables are sized from the configuration (grid, ``max_frames``, number of queries), so 1024
queries or any frame count work; offsets beyond the table share its edge entry (T5-style
clamping) instead of crashing, which is what the reference code's fixed 512-entry table did.
The index tensors are computed on the fly (cheap integer arithmetic), so the modules carry no
buffers that a meta-device load would leave uninitialised.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

RPE = Literal["relative_3d", "relative_1d", "absolute"]
RPE_KINDS: tuple[str, ...] = ("relative_3d", "relative_1d", "absolute")
TABLE_INIT_STD = 0.02  # Swin-style truncated-normal init of relative bias tables


def relative_index_3d(
    grid: tuple[int, int, int], device: torch.device | None = None
) -> torch.Tensor:
    """Index of the (dz, dy, dx) offset of every token pair of a z-major grid: (N, N)."""
    gz, gy, gx = grid
    z, y, x = torch.meshgrid(
        torch.arange(gz, device=device),
        torch.arange(gy, device=device),
        torch.arange(gx, device=device),
        indexing="ij",
    )
    coords = torch.stack([z.flatten(), y.flatten(), x.flatten()], dim=-1)  # (N, 3)
    offset = coords[:, None, :] - coords[None, :, :]  # (N, N, 3), each in [-(g-1), g-1]
    dz = offset[..., 0] + gz - 1
    dy = offset[..., 1] + gy - 1
    dx = offset[..., 2] + gx - 1
    return (dz * (2 * gy - 1) + dy) * (2 * gx - 1) + dx  # (N, N)


def relative_index_1d(
    length: int, max_len: int, device: torch.device | None = None
) -> torch.Tensor:
    """Index of the clamped offset i - j for a sequence of ``length``: (L, L)."""
    pos = torch.arange(length, device=device)
    offset = (pos[:, None] - pos[None, :]).clamp(-(max_len - 1), max_len - 1)  # (L, L)
    return offset + max_len - 1


class RelativeBias3D(nn.Module):
    """Learned per-head bias P_r(dz, dy, dx) over the token grid of one frame."""

    def __init__(self, grid: tuple[int, int, int], heads: int):
        super().__init__()
        gz, gy, gx = (int(g) for g in grid)
        self.grid = (gz, gy, gx)
        self.table = nn.Parameter(torch.empty((2 * gz - 1) * (2 * gy - 1) * (2 * gx - 1), heads))
        nn.init.trunc_normal_(self.table, std=TABLE_INIT_STD)

    def forward(self) -> torch.Tensor:
        """Bias for all token pairs of a frame: (H, N, N)."""
        index = relative_index_3d(self.grid, self.table.device)  # (N, N)
        return self.table[index].permute(2, 0, 1)  # (N, N, H) -> (H, N, N)


class RelativeBias1D(nn.Module):
    """Learned per-head bias P_r(i - j) on a 1-D sequence (frames, queries or flat tokens)."""

    def __init__(self, max_len: int, heads: int):
        super().__init__()
        self.max_len = int(max_len)
        self.table = nn.Parameter(torch.empty(2 * self.max_len - 1, heads))
        nn.init.trunc_normal_(self.table, std=TABLE_INIT_STD)

    def forward(self, length: int) -> torch.Tensor:
        """Bias for all position pairs of a sequence of ``length``: (H, L, L)."""
        index = relative_index_1d(length, self.max_len, self.table.device)  # (L, L)
        return self.table[index].permute(2, 0, 1)  # (L, L, H) -> (H, L, L)


class AbsolutePosition(nn.Module):
    """LinVT's learned frame + token embeddings, added to frame tokens (B, T, N, E)."""

    def __init__(self, max_frames: int, tokens_per_frame: int, width: int):
        super().__init__()
        self.max_frames = int(max_frames)
        self.frame = nn.Parameter(torch.empty(self.max_frames, width))
        self.token = nn.Parameter(torch.empty(tokens_per_frame, width))
        nn.init.trunc_normal_(self.frame, std=TABLE_INIT_STD)
        nn.init.trunc_normal_(self.token, std=TABLE_INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, E) -> (B, T, N, E); frames past ``max_frames`` share the last embedding."""
        t = x.shape[1]
        frame_idx = torch.arange(t, device=x.device).clamp(max=self.max_frames - 1)  # (T,)
        return x + self.frame[frame_idx][None, :, None, :] + self.token[None, None, :, :]


def spatial_bias(rpe: str, grid: tuple[int, int, int], heads: int) -> nn.Module | None:
    """Bias module for attention within a frame (None for ``absolute``)."""
    n = grid[0] * grid[1] * grid[2]
    if rpe == "relative_3d":
        return RelativeBias3D(grid, heads)
    if rpe == "relative_1d":
        return _FixedLength(RelativeBias1D(n, heads), n)
    return None


def sequence_bias(rpe: str, max_len: int, heads: int) -> RelativeBias1D | None:
    """Bias module for attention along frames or queries (None for ``absolute``)."""
    if rpe in ("relative_3d", "relative_1d"):
        return RelativeBias1D(max_len, heads)
    return None


class _FixedLength(nn.Module):
    """Adapter so a 1-D bias over a frame's flattened tokens is called like the 3-D one."""

    def __init__(self, bias: RelativeBias1D, length: int):
        super().__init__()
        self.bias = bias
        self.length = length

    def forward(self) -> torch.Tensor:
        return self.bias(self.length)  # (H, N, N)
