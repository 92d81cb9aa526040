"""Non-μ² visual tokenizers on the same interface, for the comparisons.

* ``spp`` (M3D): the projector tokens go straight to the LLM, no tokenizer. Frames are padded
  to ``max_frames`` so the placeholder count is fixed; padded frames' tokens are masked.
* ``perceiver``: a question-agnostic latent resampler (Flamingo-style): Q learned latents
  cross-attend to all frame tokens. Its outputs are new vectors, not mixes of the inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from mu2.errors import Mu2Error
from mu2.tokenizer.attention import FeedForward, MultiHeadAttention
from mu2.tokenizer.mu2_tokenizer import TokenizerConfig, TokenizerOutput, frame_token_mask
from mu2.tokenizer.position import AbsolutePosition

LATENT_INIT_STD = 1.0  # unit scale in the pre-norm residual stream (see QUERY_INIT_STD)


class PassthroughTokens(nn.Module):
    """spp: (B, T, N, E) frame tokens -> (B, max_frames*N, E), padded frames masked."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config

    @property
    def num_output_tokens(self) -> int:
        return self.config.max_frames * self.config.tokens_per_frame

    def forward(
        self,
        frames: torch.Tensor,
        frame_mask: torch.Tensor,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        *,
        return_relevance: bool = False,
    ) -> TokenizerOutput:
        b, t, n, e = frames.shape
        cap = self.config.max_frames
        if t > cap:
            raise Mu2Error(
                f"the spp baseline takes at most {cap} frames, got {t}",
                fix="prepare the volume with fewer slices or rebuild with a larger max_frames",
            )
        pad = cap - t
        frames = torch.cat([frames, frames.new_zeros(b, pad, n, e)], dim=1)  # (B, cap, N, E)
        frame_mask = torch.cat([frame_mask, frame_mask.new_zeros(b, pad)], dim=1)  # (B, cap)
        mask = frame_token_mask(frame_mask, n)  # (B, cap*N)
        tokens = frames.reshape(b, cap * n, e) * mask[..., None].to(frames.dtype)  # (B, cap*N, E)
        relevance = None
        if return_relevance:
            m = mask[:, : t * n].to(frames.dtype)  # (B, T*N): uniform over real tokens
            relevance = (m / m.sum(1, keepdim=True).clamp_min(1.0)).view(b, t, n)
        return TokenizerOutput(tokens=tokens, mask=mask, relevance=relevance)


class PerceiverLayer(nn.Module):
    """Latents: cross-attend to the visual tokens, self-attend, feed-forward (pre-norm)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross = MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(
        self, latents: torch.Tensor, visual: torch.Tensor, mask: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """latents (B, Q, E), visual (B, M, E), mask (B, M) -> latents, weights (B, H, Q, M)."""
        h, weights = self.cross(
            self.norm_q(latents), self.norm_kv(visual), key_mask=mask, need_weights=need_weights
        )
        latents = latents + h
        latents = latents + self.self_attn(self.norm_self(latents))[0]
        return latents + self.ffn(self.norm_ffn(latents)), weights


class PerceiverResampler(nn.Module):
    """Question-agnostic resampler: (B, T, N, E) -> (B, Q, E)."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        c = config
        self.config = c
        self.position = AbsolutePosition(c.max_frames, c.tokens_per_frame, c.width)
        self.latents = nn.Parameter(torch.randn(c.num_queries, c.width) * LATENT_INIT_STD)
        self.layers = nn.ModuleList(
            PerceiverLayer(c.width, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.tta_layers)
        )
        self.norm = nn.LayerNorm(c.width)

    @property
    def num_output_tokens(self) -> int:
        return self.config.num_queries

    def forward(
        self,
        frames: torch.Tensor,
        frame_mask: torch.Tensor,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        *,
        return_relevance: bool = False,
    ) -> TokenizerOutput:
        b, t, n, e = frames.shape
        mask = frame_token_mask(frame_mask, n)  # (B, T*N)
        visual = self.position(frames).reshape(b, t * n, e)  # (B, T, N, E) -> (B, T*N, E)
        latents = self.latents.to(frames.dtype)[None].expand(b, -1, -1)  # (B, Q, E)
        weights = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            latents, weights = layer(latents, visual, mask, need_weights=return_relevance and last)
        relevance = None
        if return_relevance and weights is not None:
            relevance = weights.mean(dim=(1, 2)).view(b, t, n)  # (B, H, Q, T*N) -> (B, T, N)
        tokens = self.norm(latents)
        return TokenizerOutput(
            tokens=tokens, mask=mask.new_ones(b, tokens.shape[1]), relevance=relevance
        )
