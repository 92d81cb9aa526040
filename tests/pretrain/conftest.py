"""Helpers shared by the stage-0 tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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


NODULES = ["kinds=[lung_nodule]", "prevalence=1.0", "lung_nodule_mm=[40,55]", "vqa_per_case=0"]


@pytest.fixture(scope="session")
def nodule_dir(tmp_path_factory) -> Path:
    """4 tiny synthetic cases, each with a lung nodule, and their label maps."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("nodules")
    cfg = make_config("tiny", "tiny", overrides=NODULES + ["split=[0.5,0.0,0.5]"])
    synthesize(out, 4, 0, cfg, workers=1, progress=False, save_labels=True, preset="tiny",
               size="tiny")  # fmt: skip
    return out
