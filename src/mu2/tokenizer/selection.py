"""Token selection: μ²'s differentiable soft selection (DTS) or LinVT's hard top-k.

Both score the *refined* features and return mixes (soft) or copies (hard) of the *input*
tokens, so the selected tokens stay in the projector's (LLM-aligned) space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mu2.tokenizer.standardize import standardize_over_tokens

SELECTIONS: tuple[str, ...] = ("soft", "hard")


@dataclass
class Selection:
    """k selected tokens with what is needed to trace them back to the frame tokens."""

    tokens: torch.Tensor  # (B, k, E)
    mask: torch.Tensor  # (B, k) bool, False where a hard pick had no real token to take
    weights: torch.Tensor | None = None  # soft: (B, k, M) softmax weights over the M = T*N tokens
    index: torch.Tensor | None = None  # hard: (B, k) flat token index (>= M means padding)

    def backproject(self, relevance: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """Relevance of the k selected tokens (B, k) -> relevance of the M input tokens (B, M)."""
        if self.weights is not None:
            return torch.einsum("bk,bkm->bm", relevance, self.weights)  # (B, M)
        out = relevance.new_zeros(relevance.shape[0], num_tokens + self.tokens.shape[1])
        assert self.index is not None  # hard selection keeps its indices
        out.scatter_add_(1, self.index, relevance * self.mask)  # (B, M + k)
        return out[:, :num_tokens]  # (B, M)


class SoftTokenSelection(nn.Module):
    """DTS: k score vectors, each a softmax over all T*N tokens; k soft tokens in one einsum.

    alpha^(r) = softmax_i(w_r . f_i / (tau sqrt(E))),  v^(r) = sum_i alpha_i^(r) v_i, r = 1..k.
    tau = 1 keeps the initial softmax from collapsing to one token; a smaller tau starts each
    score vector on fewer tokens (see ``TokenizerConfig.temperature``).
    """

    def __init__(self, dim: int, k: int, temperature: float = 1.0, standardize: bool = False):
        super().__init__()
        self.k = k
        self.standardize = standardize
        self.score = nn.Parameter(torch.randn(k, dim))  # W_s: (k, E), unit-variance rows
        self.scale = 1.0 / (temperature * math.sqrt(dim))

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> Selection:
        """features, tokens (B, M, E), mask (B, M) True = real token -> Selection (B, k, E)."""
        if self.standardize:
            features = standardize_over_tokens(features, mask)  # (B, M, E)
        logits = torch.einsum("bme,ke->bkm", features, self.score.to(features.dtype)) * self.scale
        logits = logits.masked_fill(~mask[:, None, :], float("-inf"))  # (B, k, M)
        weights = logits.softmax(dim=-1)  # (B, k, M)
        selected = torch.einsum("bkm,bme->bke", weights, tokens)  # (B, k, E), one batched matmul
        valid = mask.any(dim=-1, keepdim=True).expand(-1, self.k)  # (B, k)
        return Selection(tokens=selected, mask=valid, weights=weights)


class HardTokenSelection(nn.Module):
    """LinVT: a significance score per token, keep the top k in their original order.

    The kept tokens are multiplied by g / stopgrad(g) with g = sigmoid(score): the value is
    exactly 1, but the scorer receives a gradient through the tokens it picked.
    """

    def __init__(self, dim: int, k: int):
        super().__init__()
        self.k = k
        self.score = nn.Linear(dim, 1)

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> Selection:
        """features, tokens (B, M, E), mask (B, M) -> Selection of k tokens (B, k, E)."""
        b, m, e = tokens.shape
        scores = self.score(features).squeeze(-1)  # (B, M, E) -> (B, M)
        scores = scores.masked_fill(~mask, float("-inf"))
        if m < self.k:  # fewer tokens than picks: pad with empty slots, masked downstream
            pad = self.k - m
            tokens = torch.cat([tokens, tokens.new_zeros(b, pad, e)], dim=1)  # (B, k, E)
            scores = torch.cat([scores, scores.new_full((b, pad), float("-inf"))], dim=1)
            mask = torch.cat([mask, mask.new_zeros(b, pad)], dim=1)
        index = scores.topk(self.k, dim=-1).indices.sort(dim=-1).values  # (B, k), in token order
        picked = tokens.gather(1, index[..., None].expand(-1, -1, e))  # (B, k, E)
        valid = mask.gather(1, index)  # (B, k)
        gate = torch.sigmoid(scores.gather(1, index).masked_fill(~valid, 0.0))  # (B, k)
        gate = gate / gate.detach()  # == 1 in value; gradient to the scorer
        picked = picked * (gate * valid)[..., None]
        return Selection(tokens=picked, mask=valid, index=index)


def make_selection(
    kind: str, dim: int, k: int, temperature: float = 1.0, standardize: bool = False
) -> nn.Module:
    if kind == "soft":
        return SoftTokenSelection(dim, k, temperature, standardize)
    if kind == "hard":
        return HardTokenSelection(dim, k)
    raise ValueError(f"unknown selection {kind!r}; choose one of {SELECTIONS}")
