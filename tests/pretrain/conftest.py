"""Helpers shared by the stage-0 tests."""

from __future__ import annotations

from typing import Any

import torch

from mu2.model.vision import VisionConfig, VisionTower
from mu2.pretrain.clip import ClipModel
from mu2.pretrain.text_encoder import TextEncoder


def micro_clip(num_labels: int = 3, **options: Any) -> ClipModel:
    """A stage-0 model small enough to train in a test: 4 x 16 x 16 frames, patches of
    2 x 4 x 4, width 32; ``options`` go to :class:`ClipModel` (loss weights)."""
    torch.manual_seed(0)
    vision = VisionTower(
        VisionConfig(img_size=(4, 16, 16), patch_size=(2, 4, 4), hidden_size=32, mlp_dim=64,
                     num_layers=1, num_heads=2)
    )  # fmt: skip
    text = TextEncoder(vocab_size=50, width=32, layers=1, heads=2, max_length=12, pad_token_id=0)
    return ClipModel(
        vision, text, embed_dim=16, projector_pool=2, num_labels=num_labels, **options
    )
