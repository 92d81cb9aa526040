"""Multi-scale token pooling: μ²'s dynamic weighting (DMTP) or LinVT's fixed concat.

y_s = AvgPool(V_top, kernel = s) for s in ``scales``; DMTP weighs each scale by
w_s = softmax_s(g_s(mean(y_s))) and concatenates w_s * y_s (k + k/2 + k/4 tokens). The pool
is an average over *real* tokens (masked), so the output stays a linear mix of its input.

One gate MLP per scale: with a shared g the means of y_s would be equal whenever s divides
k (the mean of an average pool is the mean of its input), which makes every w_s = 1/S.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

POOLINGS: tuple[str, ...] = ("dynamic", "fixed")


@dataclass
class Pooled:
    """Concatenated multi-scale tokens and the per-scale weights that made them."""

    tokens: torch.Tensor  # (B, M', E) with M' = sum_s k / s
    mask: torch.Tensor  # (B, M') bool: window held at least one real token
    scale_weights: torch.Tensor  # (B, S); all ones for fixed pooling
    counts: list[torch.Tensor]  # per scale (B, k/s): real tokens per window


class MultiScalePooling(nn.Module):
    """Average pools at several scales over the k selected tokens, weighted or not."""

    def __init__(self, dim: int, scales: tuple[int, ...], dynamic: bool, gate_hidden: int):
        super().__init__()
        self.scales = tuple(int(s) for s in scales)
        self.dynamic = dynamic
        self.gates = (
            nn.ModuleList(
                nn.Sequential(
                    nn.LayerNorm(dim),
                    nn.Linear(dim, gate_hidden),
                    nn.GELU(),
                    nn.Linear(gate_hidden, 1),
                )
                for _ in self.scales
            )
            if dynamic
            else None
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> Pooled:
        """tokens (B, k, E), mask (B, k) -> Pooled (B, sum_s k/s, E)."""
        b, k, e = tokens.shape
        m = mask.to(tokens.dtype)
        pooled, masks, counts, means = [], [], [], []
        for s in self.scales:
            total = (tokens * m[..., None]).view(b, k // s, s, e).sum(dim=2)  # (B, k/s, E)
            count = m.view(b, k // s, s).sum(dim=2)  # (B, k/s)
            y = total / count.clamp_min(1.0)[..., None]  # masked average pool, (B, k/s, E)
            valid = count > 0
            pooled.append(y)
            masks.append(valid)
            counts.append(count)
            vm = valid.to(y.dtype)
            means.append((y * vm[..., None]).sum(1) / vm.sum(1, keepdim=True).clamp_min(1.0))
        if self.gates is not None:
            logits = torch.cat([g(mu) for g, mu in zip(self.gates, means, strict=True)], dim=-1)
            weights = logits.softmax(dim=-1)  # (B, S)
        else:
            weights = tokens.new_ones(b, len(self.scales))  # (B, S)
        out = torch.cat(
            [w[:, None, None] * y for w, y in zip(weights.unbind(1), pooled, strict=True)], 1
        )
        return Pooled(
            tokens=out, mask=torch.cat(masks, dim=1), scale_weights=weights, counts=counts
        )

    def backproject(
        self, relevance: torch.Tensor, pooled: Pooled, mask: torch.Tensor
    ) -> torch.Tensor:
        """Relevance of the pooled tokens (B, M') -> relevance of the k input tokens (B, k).

        Token j of scale s is w_s * mean of its window's real tokens, so each real token of the
        window receives w_s / count of the window's relevance.
        """
        b, k = mask.shape
        out = relevance.new_zeros(b, k)
        start = 0
        for i, s in enumerate(self.scales):
            n = k // s
            r = relevance[:, start : start + n] * pooled.scale_weights[:, i : i + 1]  # (B, k/s)
            r = r / pooled.counts[i].clamp_min(1.0)
            out = out + r.repeat_interleave(s, dim=1) * mask.to(r.dtype)  # (B, k/s) -> (B, k)
            start += n
        return out


def make_pooling(
    kind: str, dim: int, scales: tuple[int, ...], gate_hidden: int
) -> MultiScalePooling:
    if kind not in POOLINGS:
        raise ValueError(f"unknown pooling {kind!r}; choose one of {POOLINGS}")
    return MultiScalePooling(dim, scales, dynamic=kind == "dynamic", gate_hidden=gate_hidden)
