"""One model per row: token adapter -> tokenizer preset -> the shared readout.

* The **readout** is the same module for every row: the question's mean embedding queries
  the tokenizer's output tokens with one multi-head cross-attention, and an MLP maps
  [attended, question] to the classes. It stands in for the LLM: small, and it sees the
  question (``readout_question``), so question-agnostic tokenizers can still answer.
* The **token adapter** is a residual per-token MLP before the tokenizer (the projector's
  place). Its hidden width is solved per row so that every row has the same trainable
  parameter count (within ``budget_tolerance``): spp, which has no tokenizer parameters,
  gets the widest adapter. This is the only part that differs in size between rows.
"""

from __future__ import annotations

import torch
from torch import nn

from mu2.bench.tokenizer_bench.config import ALL_ROWS, NO_QUESTION, TokenBenchConfig
from mu2.bench.tokenizer_bench.scenes import VOCAB
from mu2.errors import Mu2Error
from mu2.tokenizer import TokenizerConfig, build_visual_tokenizer, preset_options

MIN_ADAPTER = 8  # hidden width of the adapter of the row with the most tokenizer parameters


class TokenAdapter(nn.Module):
    """x + W2 gelu(W1 norm(x)) per token: (B, T, N, E) -> (B, T, N, E)."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, hidden)
        self.down = nn.Linear(hidden, width)
        nn.init.zeros_(self.down.weight)  # starts as the identity: the raw frame tokens
        nn.init.zeros_(self.down.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


def adapter_params(width: int, hidden: int) -> int:
    return 2 * width + (width + 1) * hidden + (hidden + 1) * width


class Readout(nn.Module):
    """Question-queried cross-attention over the output tokens, then an MLP to the classes."""

    def __init__(self, width: int, heads: int, classes: int, use_question: bool):
        super().__init__()
        self.use_question = use_question
        self.query = nn.Parameter(torch.zeros(width))
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.head = nn.Sequential(
            nn.LayerNorm(2 * width), nn.Linear(2 * width, 2 * width), nn.GELU(),
            nn.Linear(2 * width, classes),
        )  # fmt: skip

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, question: torch.Tensor
    ) -> torch.Tensor:
        """tokens (B, Q, E), mask (B, Q) True = real, question (B, E) -> logits (B, C)."""
        q = question if self.use_question else torch.zeros_like(question)  # (B, E)
        query = self.norm_q(q + self.query)[:, None]  # (B, 1, E)
        kv = self.norm_kv(tokens)
        out, _ = self.attn(query, kv, kv, key_padding_mask=~mask, need_weights=False)
        return self.head(torch.cat([out[:, 0], q], dim=-1))  # (B, 2E) -> (B, C)


def tokenizer_config(cfg: TokenBenchConfig, row: str) -> TokenizerConfig:
    """The row's tokenizer: the benchmark's sizes with the preset's switches."""
    preset = "mu2" if row == NO_QUESTION else row
    return TokenizerConfig(
        width=cfg.width,
        grid=cfg.grid,
        max_frames=cfg.frames,
        num_selected=cfg.num_selected,
        num_queries=cfg.num_queries,
        svr_layers=cfg.svr_layers,
        tta_layers=cfg.tta_layers,
        heads=cfg.heads,
        mlp_ratio=cfg.mlp_ratio,
        gate_hidden=cfg.gate_hidden,
        temperature=cfg.temperature,
        standardize_scores=cfg.standardize_scores,
        **preset_options(preset),
    )


class BenchModel(nn.Module):
    """Question embedding, token adapter, tokenizer, readout for one row."""

    def __init__(self, cfg: TokenBenchConfig, row: str, adapter_hidden: int):
        super().__init__()
        self.row = row
        self.embed = nn.Embedding(len(VOCAB), cfg.width)
        self.adapter = TokenAdapter(cfg.width, adapter_hidden)
        self.tokenizer = build_visual_tokenizer(tokenizer_config(cfg, row))
        self.readout = Readout(cfg.width, cfg.readout_heads, cfg.num_classes, cfg.readout_question)

    def forward(
        self, frames: torch.Tensor, question: torch.Tensor, question_mask: torch.Tensor
    ) -> torch.Tensor:
        """frames (B, T, N, E), question ids (B, L), mask (B, L) -> logits (B, C)."""
        b, t = frames.shape[:2]
        text = self.embed(question)  # (B, L, E)
        m = question_mask[..., None].to(text.dtype)
        pooled = (text * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, E)
        tok_text, tok_mask = text, question_mask
        if self.row == NO_QUESTION:  # the tokenizer sees one constant token for every question
            tok_text = self.embed.weight[1].expand(b, 1, -1)  # (B, 1, E)
            tok_mask = question_mask.new_ones(b, 1)
        frame_mask = torch.ones(b, t, dtype=torch.bool, device=frames.device)
        out = self.tokenizer(self.adapter(frames), frame_mask, tok_text, tok_mask)
        return self.readout(out.tokens, out.mask, pooled)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def adapter_widths(cfg: TokenBenchConfig) -> dict[str, int]:
    """Adapter hidden width per row so that all rows match the largest one's budget.

    The budget is that of the largest row of ALL_ROWS, not of the rows being run: a row is
    then the same model whether it runs alone (``--rows linvt``) or in the full benchmark."""
    every = dict.fromkeys([*ALL_ROWS, *cfg.rows])
    tok = {r: count_params(build_visual_tokenizer(tokenizer_config(cfg, r))) for r in every}
    budget = max(tok.values()) + adapter_params(cfg.width, MIN_ADAPTER)
    per_unit = 2 * cfg.width + 1  # parameters per hidden unit of the adapter
    widths = {}
    for row in cfg.rows:
        widths[row] = max(1, round((budget - tok[row] - 2 * cfg.width - cfg.width) / per_unit))
    return widths


def build_models(cfg: TokenBenchConfig, seed: int) -> dict[str, BenchModel]:
    """Every row's model, initialised from ``seed``; checks the parameter budget."""
    widths = adapter_widths(cfg)
    models = {}
    for row in cfg.rows:
        torch.manual_seed(seed)
        models[row] = BenchModel(cfg, row, widths[row])
    counts = {r: count_params(m) for r, m in models.items()}
    top = max(counts.values())
    off = {r: n for r, n in counts.items() if n < (1 - cfg.budget_tolerance) * top}
    if off:
        raise Mu2Error(
            f"parameter budgets differ by more than {cfg.budget_tolerance:.0%}: {off} vs {top}",
            fix="change the tokenizer sizes or budget_tolerance",
        )
    return models
