"""Options every training recipe shares: the optimizer and the run loop.

The loop (steps, batch, precision, checkpoints, logging, sample reports) and AdamW with a
warm-up cosine schedule are the same for stage 0 (CLIP), SFT and DPO; each stage's config
inherits :class:`RunOptions` and holds an :class:`OptimOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class OptimOptions:
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_ratio: float = 0.1
    min_lr_ratio: float = 0.0
    """Cosine floor as a fraction of lr."""
    clip_norm: float = 1.0
    """Gradient clipping max norm; 0 disables."""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class RunOptions:
    """Loop, precision, checkpoint and logging settings shared by SFT and DPO."""

    output_dir: str = "runs/sft-tiny"
    epochs: int = 1
    max_steps: int | None = None
    """Total optimizer steps; overrides epochs when set."""
    stop_after: int | None = None
    """End this invocation after this optimizer step (checkpointed) without finishing the
    schedule; a later run with resume=auto continues. For time-boxed jobs and tests."""
    batch_size: int = 8
    """Cases per process per micro-batch (DPO: pairs)."""
    grad_accum: int = 1
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """auto: bf16 on GPU, fp32 on CPU."""
    device: Literal["auto", "cpu"] = "auto"
    seed: int = 0
    num_threads: int | None = None
    """torch intra-op threads per process (None: leave torch's default)."""
    save_every: int = 100
    """Checkpoint every N optimizer steps (0: only at the end)."""
    keep_last: int = 2
    resume: str = "auto"
    """auto (newest checkpoint in output_dir, if any) | none | path to a checkpoint."""
    log_every: int = 10
    eval_every: int = 100
    """Validation loss and sample reports every N optimizer steps (0: only at the end)."""
    num_sample_reports: int = 2
    max_new_tokens: int = 96
    tensorboard: bool = True

    def _check_run(self) -> list[str]:
        problems = []
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be >= 1 (or null)")
        for name in ("save_every", "eval_every", "num_sample_reports"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.log_every < 1:
            problems.append("log_every must be >= 1")
        return problems
