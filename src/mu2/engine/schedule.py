"""Learning-rate schedule: linear warm-up, then cosine decay to a floor.

The paper trains with warm-up then cosine decay (ref. code: 10% warm-up). transformers
already ships this schedule; this module only turns a warm-up *ratio* into steps and
checks the numbers, so every recipe builds it the same way.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

from mu2.errors import Mu2Error


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Number of warm-up optimizer steps for a ratio of the run (at least 1 when ratio > 0)."""
    if not 0.0 <= warmup_ratio < 1.0:
        raise Mu2Error(f"optim.warmup_ratio is {warmup_ratio}", fix="use a value in [0, 1)")
    return math.ceil(total_steps * warmup_ratio) if warmup_ratio > 0 else 0


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_ratio: float, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """LR multiplier 0 -> 1 over the warm-up, then half a cosine down to ``min_lr_ratio``."""
    if total_steps < 1:
        raise Mu2Error(
            f"the run has {total_steps} optimizer steps",
            fix="train on more data or raise max_steps",
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise Mu2Error(f"optim.min_lr_ratio is {min_lr_ratio}", fix="use a value in [0, 1]")
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer,
        num_warmup_steps=warmup_steps(total_steps, warmup_ratio),
        num_training_steps=total_steps,
        min_lr_rate=min_lr_ratio,
    )
