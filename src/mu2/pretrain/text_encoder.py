"""The text tower of stage 0: a small pre-norm transformer over BPE ids, mean-pooled.

It only has to tell reports apart by their findings (a normal organ statement vs a
finding, which side), so a width-128 encoder of one or two layers suffices; it is trained
from scratch alongside the image tower, and thrown away after stage 0 like M3D-CLIP's.
"""

from __future__ import annotations

import torch
from torch import nn


class TextEncoder(nn.Module):
    """(B, L) token ids + (B, L) mask -> (B, E_t) pooled text features."""

    def __init__(
        self,
        vocab_size: int,
        width: int,
        layers: int,
        heads: int,
        max_length: int,
        pad_token_id: int = 0,
    ):
        super().__init__()
        self.width = width
        self.max_length = max_length
        self.token_embedding = nn.Embedding(vocab_size, width, padding_idx=pad_token_id)
        self.position_embedding = nn.Parameter(torch.zeros(max_length, width))
        nn.init.normal_(self.position_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=width,
            nhead=heads,
            dim_feedforward=2 * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids (B, L), attention_mask (B, L) 1 = token -> (B, E_t)."""
        length = input_ids.shape[1]
        if length > self.max_length:
            raise ValueError(f"text of {length} tokens exceeds max_length {self.max_length}")
        mask = attention_mask.bool()  # (B, L)
        x = self.token_embedding(input_ids) + self.position_embedding[:length]  # (B, L, E_t)
        x = self.encoder(x, src_key_padding_mask=~mask)  # (B, L, E_t)
        x = self.norm(x)
        weights = mask.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, L, E_t) -> (B, E_t)
