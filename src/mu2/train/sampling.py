"""Reports from a mu2 model for a few volumes: used for sample logs and preference pairs."""

from __future__ import annotations

from typing import Any

import torch

MODEL_INPUTS = (
    "pixel_values",
    "frame_mask",
    "input_ids",
    "attention_mask",
    "question_ids",
    "question_mask",
    "labels",
)


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The keys of a collated batch that the model's forward takes."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


@torch.no_grad()
def generate_reports(
    model: Any,
    processor: Any,
    frames: list[torch.Tensor],
    questions: list[str],
    *,
    device: torch.device | str,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> list[str]:
    """One report per (frames (T, K, H, W), question); greedy unless ``do_sample``."""
    pixel_values, frame_mask = processor.pad_frames(frames)  # (B, T, K, H, W), (B, T)
    prompts = processor(questions)  # left padded for generation
    inputs = {
        "pixel_values": pixel_values.to(device),
        "frame_mask": frame_mask.to(device),
        **{k: v.to(device) for k, v in prompts.items()},
    }
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if do_sample
        else {"do_sample": False}
    )
    new_ids = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
    return [text.strip() for text in processor.batch_decode(new_ids, skip_special_tokens=True)]
