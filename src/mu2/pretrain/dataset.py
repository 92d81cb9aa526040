"""The stage-0 data pipeline over case rows, shared by the recipe and the probe."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from mu2.engine.dataset import CTCaseDataset, prepare_fn
from mu2.preprocess import AugmentConfig, augment
from mu2.pretrain.config import ClipDataOptions


def _augment_frames(
    frames: torch.Tensor, generator: torch.Generator, *, cfg: AugmentConfig
) -> torch.Tensor:
    return augment(frames, cfg, generator)


def case_dataset(
    cases_jsonl: str | Path,
    data: ClipDataOptions,
    *,
    seed: int,
    train: bool,
    limit: int | None = None,
) -> CTCaseDataset:
    """The SFT data pipeline over case rows: prepared once, cached, augmented per draw."""
    prep, key = prepare_fn(data.prep)
    return CTCaseDataset(
        cases_jsonl,
        prep,
        augment_fn=partial(_augment_frames, cfg=data.augmentation)
        if data.augment and train
        else None,
        seed=seed,
        cache=data.cache,
        cache_dir=data.cache_dir,
        cache_key=key,
        limit=limit,
        required=("image", "text"),
    )
