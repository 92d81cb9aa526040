"""The μ² Tokenizer: SVR -> selection (DTS) -> multi-scale pooling (DMTP) -> TTA.

Notation: B batch, T frames, N tokens per frame, M = T*N, E width, k selected tokens,
M' = sum_s k/s pooled tokens, Q queries, L question length.

The whole path from the frame tokens V to the output is V' = A P S V, with S the selection
weights (k, M), P the pooling weights (M', k) and A the final aggregation weights (Q, M'):
every output token is a mix of input tokens, so the LLM sees vectors from the projector's
space, and the relevance of each frame token for the output is exactly mean_q(A P S).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from math import lcm
from typing import Any, cast

import torch
from torch import nn

from mu2.errors import Mu2Error
from mu2.tokenizer.aggregation import TextConditionedAggregation
from mu2.tokenizer.pooling import POOLINGS, make_pooling
from mu2.tokenizer.position import RPE_KINDS
from mu2.tokenizer.refiner import SpatioTemporalRefiner
from mu2.tokenizer.selection import SELECTIONS, make_selection

KINDS: tuple[str, ...] = ("mu2", "spp", "perceiver")

# The paper's Table 2 ablation (LinVT and one μ² component at a time) plus two baselines.
PRESETS: dict[str, dict[str, str]] = {
    "mu2": {"kind": "mu2", "rpe": "relative_3d", "selection": "soft", "pooling": "dynamic"},
    "linvt": {"kind": "mu2", "rpe": "absolute", "selection": "hard", "pooling": "fixed"},
    "linvt+rpe": {"kind": "mu2", "rpe": "relative_3d", "selection": "hard", "pooling": "fixed"},
    "linvt+dts": {"kind": "mu2", "rpe": "absolute", "selection": "soft", "pooling": "fixed"},
    "linvt+dmtp": {"kind": "mu2", "rpe": "absolute", "selection": "hard", "pooling": "dynamic"},
    "spp": {"kind": "spp", "rpe": "absolute", "selection": "hard", "pooling": "fixed"},
    "perceiver": {"kind": "perceiver", "rpe": "absolute", "selection": "hard", "pooling": "fixed"},
}


def preset_options(name: str) -> dict[str, str]:
    """The (kind, rpe, selection, pooling) of a preset; unknown names suggest the closest."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(PRESETS)}"
        raise Mu2Error(f"unknown model preset '{name}'", fix=hint)
    return dict(PRESETS[name])


@dataclass
class TokenizerConfig:
    """Sizes come from the builders (``mu2.model.builders``); the switches select the preset."""

    width: int
    """E: width of the frame tokens and of the output tokens (the LLM width)."""
    grid: tuple[int, int, int]
    """(gz, gy, gx): token grid of one frame after the projector's pooling; N = gz*gy*gx."""
    max_frames: int
    """Frames covered by the frame-offset tables (longer inputs share the edge entries)."""
    num_selected: int
    """k: tokens kept by the selection step (paper 1024)."""
    num_queries: int
    """Q: output tokens (reference code 256, paper 1024)."""
    svr_layers: int
    tta_layers: int
    heads: int
    mlp_ratio: float
    gate_hidden: int
    """Hidden width of the DMTP gate MLP g."""
    scales: tuple[int, ...] = (1, 2, 4)
    kind: str = "mu2"
    rpe: str = "relative_3d"
    selection: str = "soft"
    pooling: str = "dynamic"
    dropout: float = 0.0
    temperature: float = 1.0
    """tau of the DTS and final-aggregation softmaxes, logits / (tau sqrt(E)); 1.0 is the
    paper's scaled dot product. Smaller values start each selection / query on fewer tokens
    instead of near the mean of all of them (the tiny default, see ``mu2.model.builders``)."""
    standardize_scores: bool = False
    """Standardise the features the DTS and final-aggregation softmaxes score over each case's
    tokens (``mu2.tokenizer.standardize``); not in the paper, which uses the raw features."""

    def __post_init__(self) -> None:
        self.grid = cast(tuple[int, int, int], tuple(int(g) for g in self.grid))
        self.scales = tuple(int(s) for s in self.scales)
        problems = []
        for name, value, choices in (
            ("kind", self.kind, KINDS),
            ("rpe", self.rpe, RPE_KINDS),
            ("selection", self.selection, SELECTIONS),
            ("pooling", self.pooling, POOLINGS),
        ):
            if value not in choices:
                problems.append(f"{name}={value!r} (choose one of {list(choices)})")
        if len(self.grid) != 3 or min(self.grid) < 1:
            problems.append(f"grid={self.grid} (three positive sizes)")
        if not self.temperature > 0:
            problems.append(f"temperature={self.temperature} (must be > 0)")
        if self.width % self.heads:
            problems.append(f"width={self.width} is not divisible by heads={self.heads}")
        if self.num_selected % lcm(*self.scales):
            problems.append(
                f"num_selected={self.num_selected} is not divisible by every pooling scale "
                f"{self.scales}"
            )
        for name in ("width", "max_frames", "num_selected", "num_queries", "heads", "gate_hidden"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if problems:
            raise Mu2Error("invalid tokenizer config: " + "; ".join(problems))

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def num_pooled(self) -> int:
        """M' = sum_s k / s visual tokens seen by the TTA."""
        return sum(self.num_selected // s for s in self.scales)

    def replace(self, **changes: Any) -> TokenizerConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class TokenizerOutput:
    tokens: torch.Tensor  # (B, Q_out, E)
    mask: torch.Tensor  # (B, Q_out) bool: False for tokens the LLM must not attend to
    relevance: torch.Tensor | None = None  # (B, T, N): share of each frame token in the output


def frame_token_mask(frame_mask: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """(B, T) frame mask -> (B, T*N) token mask."""
    b, t = frame_mask.shape
    return frame_mask[:, :, None].expand(b, t, tokens_per_frame).reshape(b, t * tokens_per_frame)


class Mu2Tokenizer(nn.Module):
    """μ² Tokenizer (and the LinVT ablations): (B, T, N, E) frame tokens -> (B, Q, E)."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        c = config
        self.config = c
        self.refiner = SpatioTemporalRefiner(
            c.width, c.svr_layers, c.heads, c.grid, c.max_frames, c.rpe, c.mlp_ratio, c.dropout
        )
        self.selection = make_selection(
            c.selection, c.width, c.num_selected, c.temperature, c.standardize_scores
        )
        self.pooling = make_pooling(c.pooling, c.width, c.scales, c.gate_hidden)
        self.aggregation = TextConditionedAggregation(
            c.width,
            c.tta_layers,
            c.heads,
            c.num_queries,
            c.rpe,
            c.mlp_ratio,
            c.dropout,
            c.temperature,
            c.standardize_scores,
        )

    @property
    def num_output_tokens(self) -> int:
        return self.config.num_queries

    def forward(
        self,
        frames: torch.Tensor,
        frame_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        *,
        return_relevance: bool = False,
    ) -> TokenizerOutput:
        """frames (B, T, N, E), frame_mask (B, T), text (B, L, E), text_mask (B, L)."""
        b, t, n, e = frames.shape
        if n != self.config.tokens_per_frame or e != self.config.width:
            raise ValueError(
                f"frame tokens of shape (N={n}, E={e}) do not match the tokenizer "
                f"(N={self.config.tokens_per_frame}, E={self.config.width})"
            )
        if not bool(frame_mask.any(dim=1).all()):
            raise Mu2Error("a batch item has no real frame (frame_mask all False)")
        mask = frame_token_mask(frame_mask, n)  # (B, T*N)
        flat = frames.reshape(b, t * n, e) * mask[..., None].to(frames.dtype)  # (B, T*N, E)
        features = self.refiner(frames, frame_mask).reshape(b, t * n, e)  # (B, T*N, E)
        selected = self.selection(features, flat, mask)  # (B, k, E)
        pooled = self.pooling(selected.tokens, selected.mask)  # (B, M', E)
        tokens, weights = self.aggregation(pooled.tokens, pooled.mask, text, text_mask)
        relevance = None
        if return_relevance:
            r = weights.mean(dim=1)  # (B, Q, M') -> (B, M')
            r = self.pooling.backproject(r, pooled, selected.mask)  # (B, k)
            r = selected.backproject(r, t * n)  # (B, T*N)
            relevance = r.view(b, t, n)
        return TokenizerOutput(
            tokens=tokens, mask=mask.new_ones(b, tokens.shape[1]), relevance=relevance
        )

