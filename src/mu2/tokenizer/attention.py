"""Multi-head attention with an additive (relative position) bias and a key padding mask.

torch's ``nn.MultiheadAttention`` takes neither a per-head additive bias together with a
padding mask in one call nor returns per-head weights cheaply, so this is a thin wrapper over
``F.scaled_dot_product_attention`` (fused kernels) that builds one float ``attn_mask``
from both. Everything is batch-first (the reference code ran attention over the wrong axis).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask(
    bias: torch.Tensor | None,
    key_mask: torch.Tensor | None,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """Float mask for SDPA: bias (H, Lq, Lk) or (B, H, Lq, Lk) plus -inf on padded keys (B, Lk).

    Rows whose keys are all padded would give NaN; callers zero those outputs instead
    (see :class:`MultiHeadAttention`), so here their keys are left unmasked.
    """
    mask = None
    if bias is not None:
        mask = bias.to(dtype)
        if mask.dim() == 3:
            mask = mask[None]  # (H, Lq, Lk) -> (1, H, Lq, Lk)
    if key_mask is not None:
        keep = key_mask | ~key_mask.any(dim=-1, keepdim=True)  # (B, Lk); empty rows unmasked
        pad = torch.zeros(keep.shape, dtype=dtype, device=keep.device)
        pad = pad.masked_fill(~keep, float("-inf"))[:, None, None, :]  # (B, 1, 1, Lk)
        mask = pad if mask is None else mask + pad
    return mask


class MultiHeadAttention(nn.Module):
    """Batch-first multi-head attention; ``context`` None means self-attention."""

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        context_dim: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        context_dim = context_dim or dim
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim, dim)
        self.v = nn.Linear(context_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, L, E) -> (B, H, L, d)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        bias: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, Lq, E), context (B, Lk, Ec), bias (H, Lq, Lk), key_mask (B, Lk) True = attend.

        Returns the output (B, Lq, E) and, when asked, the weights (B, H, Lq, Lk).
        """
        context = x if context is None else context
        q = self._split(self.q(x))  # (B, H, Lq, d)
        k = self._split(self.k(context))  # (B, H, Lk, d)
        v = self._split(self.v(context))  # (B, H, Lk, d)
        mask = attention_mask(bias, key_mask, q.dtype)  # (B|1, H|1, Lq|1, Lk) or None
        weights = None
        if need_weights:
            logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, Lq, Lk)
            if mask is not None:
                logits = logits + mask
            weights = logits.softmax(dim=-1)
            drop = F.dropout(weights, self.dropout, self.training)
            out = drop @ v  # (B, H, Lq, d)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
            )  # (B, H, Lq, d)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)  # (B, Lq, E)
        out = self.out(out)
        if key_mask is not None:
            has_keys = key_mask.any(dim=-1).to(out.dtype)[:, None, None]  # (B, 1, 1)
            out = out * has_keys  # no valid key -> no update (instead of NaN)
        return out, weights


class FeedForward(nn.Module):
    """The position-wise MLP of a transformer block (absent from the reference code)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (..., E) -> (..., E)
