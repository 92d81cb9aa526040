"""SVR, the spatio-temporal visual token refiner: pre-norm transformer blocks that attend
within each frame, then across frames at each token position.

The refined features only *score* tokens for selection (see ``selection.py``); the tokens
that leave the μ² Tokenizer are mixes of the refiner's *inputs*, so the image-LLM alignment
learnt by the projector is preserved (LinVT's linearity argument).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mu2.tokenizer.attention import FeedForward, MultiHeadAttention
from mu2.tokenizer.position import AbsolutePosition, sequence_bias, spatial_bias


class SpatioTemporalBlock(nn.Module):
    """One SVR layer: x += attn_within_frame(norm x); x += attn_across_frames(norm x); x += ffn."""

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: tuple[int, int, int],
        max_frames: int,
        rpe: str,
        mlp_ratio: float,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.norm_spatial = nn.LayerNorm(dim)
        self.spatial = MultiHeadAttention(dim, heads, dropout=dropout)
        self.spatial_bias = spatial_bias(rpe, grid, heads)
        self.norm_temporal = nn.LayerNorm(dim)
        self.temporal = MultiHeadAttention(dim, heads, dropout=dropout)
        self.temporal_bias = sequence_bias(rpe, max_frames, heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, N, E), frame_mask (B, T) True = real frame -> (B, T, N, E)."""
        b, t, n, e = x.shape
        # Within a frame: every frame (padded ones too, harmlessly) is its own sequence.
        h = self.norm_spatial(x).reshape(b * t, n, e)  # (B, T, N, E) -> (B*T, N, E)
        bias = self.spatial_bias() if self.spatial_bias is not None else None  # (H, N, N)
        h, _ = self.spatial(h, bias=bias)
        x = x + h.view(b, t, n, e)
        # Across frames at each token position; padded frames are masked out as keys.
        h = self.norm_temporal(x).transpose(1, 2).reshape(b * n, t, e)  # -> (B*N, T, E)
        bias = self.temporal_bias(t) if self.temporal_bias is not None else None  # (H, T, T)
        keys = frame_mask[:, None, :].expand(b, n, t).reshape(b * n, t)  # (B*N, T)
        h, _ = self.temporal(h, bias=bias, key_mask=keys)
        x = x + h.view(b, n, t, e).transpose(1, 2)  # (B*N, T, E) -> (B, T, N, E)
        return x + self.ffn(self.norm_ffn(x))


class SpatioTemporalRefiner(nn.Module):
    """L spatio-temporal blocks with a final norm; absolute embeddings only for ``absolute``."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        grid: tuple[int, int, int],
        max_frames: int,
        rpe: str,
        mlp_ratio: float,
        dropout: float = 0.0,
    ):
        super().__init__()
        n = grid[0] * grid[1] * grid[2]
        self.position = AbsolutePosition(max_frames, n, dim) if rpe == "absolute" else None
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(dim, heads, grid, max_frames, rpe, mlp_ratio, dropout)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.gradient_checkpointing = False  # set by PreTrainedModel.gradient_checkpointing_enable

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, N, E), frame_mask (B, T) -> refined features (B, T, N, E)."""
        if self.position is not None:
            x = self.position(x)
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, frame_mask, use_reentrant=False)
            else:
                x = block(x, frame_mask)
        return self.norm(x)
