"""The paper-size μ² LLM (M3D-CLIP ViT, paper tokenizer, Llama-3.2-1B shape) on CPU, in bf16.

Every other model test runs the tiny size; parameter counts of the paper size are checked
on the meta device only. This runs one real forward and backward of the full paper shape
(random init: the weights are not redistributable) on one paper-prepared frame of the real
CT sample, in bf16 weights under CPU autocast (PyTorch has no bf16 avg_pool3d on CPU
without autocast), so a shape or dtype bug that only the paper
size reaches (2048 patches per frame, 2048-wide LLM, llama3 RoPE) fails here.
"""

from __future__ import annotations

import pytest
import torch

from mu2.io import load_ct
from mu2.model import build
from mu2.preprocess import prep_config, prepare

REPORT = "The liver is normal in size. No focal lesion."


@pytest.mark.slow
def test_paper_size_forward_and_backward_in_bf16(real_ct_path):
    frames = prepare(load_ct(real_ct_path), prep_config("paper")).frames[:1]  # (1, 32, 256, 256)
    assert frames.shape == (1, 32, 256, 256)
    model = build("paper", "mu2", train_texts=[REPORT] * 4, dtype=torch.bfloat16).train()
    assert model.vision_tower.config.hidden_size == 768  # M3D-CLIP width, not a shrunk copy
    assert model.language_model.config.hidden_size == 2048
    assert model.language_model.config.num_hidden_layers == 16
    pv, fmask = model.processor.pad_frames([frames])  # (1, 1, 32, 256, 256), (1, 1)
    batch = model.processor(["Describe the findings of this CT."], [REPORT])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(pixel_values=pv.to(torch.bfloat16), frame_mask=fmask, **batch)
    n_text = batch["input_ids"].shape[1]
    assert out.logits.shape[:2] == (1, n_text) and out.logits.dtype == torch.bfloat16
    assert torch.isfinite(out.loss)
    # an untrained LM is near uniform over its vocabulary: loss ~ ln(V)
    vocab = model.config.text_config.vocab_size
    assert abs(out.loss.item() - torch.log(torch.tensor(float(vocab))).item()) < 1.5
    out.loss.backward()
    # the gradient reaches the first ViT block through the tokenizer and the projector
    first_vit = next(p for n, p in model.vision_tower.named_parameters() if p.requires_grad)
    for part in (first_vit, model.get_input_embeddings().weight):
        assert part.grad is not None and torch.isfinite(part.grad.float()).all()
        assert part.grad.float().abs().sum() > 0
