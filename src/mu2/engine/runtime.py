"""What every recipe sets up the same way: the Accelerator, threads, seeds, the optimizer.

One ``Accelerator`` drives CPU, one GPU, DDP and DeepSpeed ZeRO-2/3 alike; which one is
chosen by how the process was launched (``accelerate launch --config_file
configs/accelerate/<name>.yaml`` or ``torchrun``), not by the recipe.
"""

from __future__ import annotations

import logging

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from mu2.device import resolve_device
from mu2.engine.config import OptimOptions, RunOptions
from mu2.errors import Mu2Error

logger = logging.getLogger(__name__)


def resolve_precision(requested: str, *, on_gpu: bool) -> str:
    """``auto`` -> bf16 on GPU, fp32 ("no") on CPU (bf16 autocast is slow on most CPUs)."""
    if requested == "auto":
        return "bf16" if on_gpu else "no"
    return requested


def make_accelerator(run: RunOptions) -> Accelerator:
    """An Accelerator for this run; seeds every process identically (then data differs by shard)."""
    if run.num_threads:
        torch.set_num_threads(run.num_threads)
    cpu = resolve_device(run.device).type == "cpu"
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=resolve_precision(run.mixed_precision, on_gpu=not cpu),
        gradient_accumulation_steps=run.grad_accum,
        # The schedule is written in optimizer steps; step it once per optimizer step.
        step_scheduler_with_optimizer=False,
    )
    set_seed(run.seed)
    logger.info(
        "accelerator: %s, %d process(es), precision %s",
        accelerator.distributed_type,
        accelerator.num_processes,
        accelerator.mixed_precision,
    )
    return accelerator


def build_optimizer(model: torch.nn.Module, optim: OptimOptions) -> torch.optim.AdamW:
    """AdamW over trainable parameters; no weight decay on biases and norm weights (1-D)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    if not decay and not no_decay:
        raise Mu2Error("no trainable parameters", fix="unfreeze a part of the model or enable LoRA")
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps
    )


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
