"""``model.dtype``: keep the language model's frozen base weights in bf16/fp16.

For LoRA or a frozen LLM: the base weights are the bulk of a 1B model (4 GB in fp32, 2 GB in
bf16) and receive no updates, so storing them in half precision loses nothing that training
would keep. Trainable parts (vision tower, projector, mu2 tokenizer, LoRA adapters: peft
keeps adapters in fp32 on a half-precision base) stay fp32 for the optimizer. An aid not in
the paper (off: ``dtype: null``), named in the configs that use it.
"""

from __future__ import annotations

import torch

from mu2.errors import Mu2Error

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cast_frozen_llm(model, dtype: str | None) -> None:
    """Cast the LLM's frozen (non-LoRA) parameters to ``dtype``; None or float32: no change.

    Call after freezing and after ``add_lora``; refuses a trainable LLM without LoRA,
    whose weights the optimizer would then update in half precision."""
    if dtype is None or dtype == "float32":
        return
    if dtype not in DTYPES:
        raise Mu2Error(f"model.dtype is {dtype!r}", fix=f"use one of {', '.join(DTYPES)} or null")
    trainable = [
        n
        for n, p in model.language_model.named_parameters()
        if p.requires_grad and "lora_" not in n
    ]
    if trainable:
        raise Mu2Error(
            f"model.dtype={dtype} keeps the LLM's base weights in half precision, but "
            f"{len(trainable)} of them train (e.g. {trainable[0]})",
            fix="enable model.lora.enabled=true or model.freeze_llm=true, or set model.dtype=null",
        )
    with torch.no_grad():
        for name, p in model.language_model.named_parameters():
            if "lora_" not in name and p.is_floating_point():
                p.data = p.data.to(DTYPES[dtype])
