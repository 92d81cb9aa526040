"""The one-GPU recipe: configs/sft/paper_lora.yaml (LoRA, model.dtype=bfloat16) loads by
name and builds at tiny size with a bf16 LLM base, fp32 adapters and trainable fp32 parts
that still learn; the paper configs keep these aids off."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mu2.config import load_config
from mu2.errors import Mu2Error
from mu2.train.config import DPOConfig, SFTConfig
from mu2.train.sft import build_model

TEXTS = ["The liver is normal.", "Describe the findings of the abdomen in this CT."]


def test_paper_configs_keep_the_aids_off():
    sft, dpo = load_config(SFTConfig, "paper"), load_config(DPOConfig, "paper")
    assert sft.model.dtype is None and not sft.model.lora.enabled
    assert dpo.model.dtype is None and not dpo.model.lora.enabled


def test_lora_paper_config_builds_at_tiny_size(prepared_tiny):
    cfg = load_config(SFTConfig, "paper_lora")
    assert cfg.model.size == "paper" and cfg.model.lora.enabled and cfg.model.dtype == "bfloat16"
    # the same options on the tiny model (no downloads): only the size and the folders differ
    opts = dataclasses.replace(cfg.model, size="tiny", llm_path=None, vision_path=None)
    model = build_model(opts, TEXTS, seed=0)
    llm = dict(model.language_model.named_parameters())
    base = [p for n, p in llm.items() if "lora_" not in n]
    adapters = [p for n, p in llm.items() if "lora_" in n]
    assert base and all(p.dtype == torch.bfloat16 and not p.requires_grad for p in base)
    assert adapters and all(p.dtype == torch.float32 and p.requires_grad for p in adapters)
    tokenizer = list(model.visual_tokenizer.parameters())
    assert all(p.dtype == torch.float32 and p.requires_grad for p in tokenizer)

    model.train()
    batch = model.processor([TEXTS[1]], answers=[TEXTS[0]])
    pixel_values, frame_mask = model.processor.pad_frames([prepared_tiny])
    loss = model(pixel_values=pixel_values, frame_mask=frame_mask, **batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters[1::2])  # lora_B
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tokenizer)


def test_dtype_refuses_a_trainable_llm():
    opts = dataclasses.replace(load_config(SFTConfig, "paper").model, size="tiny", dtype="bfloat16")
    opts = dataclasses.replace(opts, llm_path=None, vision_path=None)
    with pytest.raises(Mu2Error, match="model.lora.enabled=true or model.freeze_llm=true"):
        build_model(opts, TEXTS, seed=0)


@pytest.fixture(scope="module")
def prepared_tiny() -> torch.Tensor:
    import numpy as np

    from mu2.io import CTVolume
    from mu2.preprocess import prep_config, prepare

    arr = np.full((40, 40, 24), -1000.0, np.float32)
    arr[6:34, 6:34, 2:22] = 40.0
    return prepare(CTVolume.from_array(arr, (1.5, 1.5, 1.5)), prep_config("tiny")).frames
