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
    """One report per (frames (T, K, H, W), question); greedy unless ``do_sample``.

    Decoded by :func:`mu2.generate.decode.decode` (the package's one decode path) as one
    batch per frame count, drawing samples from the caller's RNG."""
    from mu2.generate.decode import DecodeOptions, decode
    from mu2.generate.settings import GenerationSettings

    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_p=top_p
    )
    options = DecodeOptions(batch_size=max(1, len(frames)))
    return decode(
        model, processor, frames, questions, settings=settings, options=options, device=device
    ).texts
