"""TTA, text-conditioned token aggregation, and the final linear aggregation.

Q learnable queries go through L pre-norm layers (self-attention with the chosen RPE,
cross-attention to the visual tokens, cross-attention to the question embeddings with the
question padding masked, feed-forward). The final step attends from the queries to the
visual tokens and returns the attention-weighted mix of the visual tokens *themselves*
(no value or output projection): V' = A V. ``A`` is returned for the heat map.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mu2.tokenizer.attention import FeedForward, MultiHeadAttention, attention_mask
from mu2.tokenizer.position import sequence_bias
from mu2.tokenizer.standardize import standardize_over_tokens

# Queries live in a pre-norm residual stream: at unit scale they stay distinct after the first
# updates (at 0.02 every query is swamped by the same attention output and all Q tokens
# start as one vector).
QUERY_INIT_STD = 1.0


class AggregationLayer(nn.Module):
    """One TTA layer on the queries (B, Q, E)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        num_queries: int,
        rpe: str,
        mlp_ratio: float,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.query_bias = sequence_bias(rpe, num_queries, heads)
        self.norm_visual = nn.LayerNorm(dim)
        self.norm_visual_kv = nn.LayerNorm(dim)
        self.visual_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm_text = nn.LayerNorm(dim)
        self.norm_text_kv = nn.LayerNorm(dim)
        self.text_attn = MultiHeadAttention(dim, heads, dropout=dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(
        self,
        q: torch.Tensor,
        visual: torch.Tensor,
        visual_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> torch.Tensor:
        """q (B, Q, E), visual (B, M, E), visual_mask (B, M), text (B, L, E), text_mask (B, L)."""
        bias = self.query_bias(q.shape[1]) if self.query_bias is not None else None  # (H, Q, Q)
        q = q + self.self_attn(self.norm_self(q), bias=bias)[0]
        kv = self.norm_visual_kv(visual)
        q = q + self.visual_attn(self.norm_visual(q), kv, key_mask=visual_mask)[0]
        q = q + self.text_attn(self.norm_text(q), self.norm_text_kv(text), key_mask=text_mask)[0]
        return q + self.ffn(self.norm_ffn(q))


class LinearAggregation(nn.Module):
    """V' = softmax(q W_q (norm(V) W_k)^T / (tau sqrt(E))) V: a convex mix of the visual tokens."""

    def __init__(self, dim: int, temperature: float = 1.0, standardize: bool = False):
        super().__init__()
        self.standardize = standardize
        self.norm_keys = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.scale = 1.0 / (temperature * math.sqrt(dim))
        # Unit-variance projections give logits of std ~1 at init, so each query starts
        # with its own mix instead of (nearly) the mean of all visual tokens.
        for proj in (self.q, self.k):
            nn.init.normal_(proj.weight, std=1.0 / math.sqrt(dim))
            nn.init.zeros_(proj.bias)

    def forward(
        self, queries: torch.Tensor, visual: torch.Tensor, visual_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, Q, E), visual (B, M, E), mask (B, M) -> (V' (B, Q, E), A (B, Q, M))."""
        keys = standardize_over_tokens(visual, visual_mask) if self.standardize else visual
        logits = self.q(queries) @ self.k(self.norm_keys(keys)).transpose(1, 2) * self.scale
        mask = attention_mask(None, visual_mask, logits.dtype)  # (B, 1, 1, M)
        if mask is not None:
            logits = logits + mask[:, 0]  # (B, Q, M)
        weights = logits.softmax(dim=-1)  # (B, Q, M)
        return weights @ visual, weights  # (B, Q, E), (B, Q, M)


class TextConditionedAggregation(nn.Module):
    """Q learnable queries, L TTA layers, then the final linear aggregation."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        num_queries: int,
        rpe: str,
        mlp_ratio: float,
        dropout: float = 0.0,
        temperature: float = 1.0,
        standardize: bool = False,
    ):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * QUERY_INIT_STD)
        self.layers = nn.ModuleList(
            AggregationLayer(dim, heads, num_queries, rpe, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.aggregate = LinearAggregation(dim, temperature, standardize)
        self.gradient_checkpointing = False  # set by PreTrainedModel.gradient_checkpointing_enable

    def forward(
        self,
        visual: torch.Tensor,
        visual_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """visual (B, M, E), text (B, L, E) -> (tokens (B, Q, E), weights (B, Q, M))."""
        q = self.queries.to(visual.dtype)[None].expand(visual.shape[0], -1, -1)  # (B, Q, E)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                q = checkpoint(layer, q, visual, visual_mask, text, text_mask, use_reentrant=False)
            else:
                q = layer(q, visual, visual_mask, text, text_mask)
        return self.aggregate(self.norm(q), visual, visual_mask)
