"""One stage runner for `mu2 demo` and `mu2 bench ablation`.

Given a stage name and its resolved recipe config, :func:`run_stage` calls the library's
own entry point (``run_clip``, ``run_lm_pretrain``, ``run_sft``, ``build_pairs``,
``run_dpo``); :func:`run_wiring` gives the output folder, seed, device, threads and the
checkpoint / logging switches every stage of an orchestrator gets alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error

STAGES: tuple[str, ...] = ("clip", "lm", "sft", "prefs", "dpo")
# Stages built on mu2.engine's Recipe: they take the checkpoint and logging switches.
RECIPE_STAGES = ("clip", "sft", "dpo")


def recipe_class(stage: str) -> type:
    """The config dataclass of ``stage`` (``sft`` -> ``SFTConfig``)."""
    from mu2.pretrain.config import ClipConfig
    from mu2.train.config import DPOConfig, LMConfig, PrefsConfig, SFTConfig

    classes: dict[str, type] = {"clip": ClipConfig, "lm": LMConfig, "sft": SFTConfig,
                                "prefs": PrefsConfig, "dpo": DPOConfig}  # fmt: skip
    if stage not in classes:
        raise Mu2Error(f"unknown stage '{stage}'", fix=f"use one of {', '.join(STAGES)}")
    return classes[stage]


@dataclass
class RunOptions:
    """How an orchestrator runs every stage: where, on what, with which checkpoints."""

    device: str = "auto"
    num_threads: int | None = None
    tensorboard: bool = True
    save_every: int = 0
    """Checkpoints every N steps (0: none)."""
    resume: str = "auto"
    eval_every: int = 0
    num_sample_reports: int | None = None
    """Sample reports logged at evaluation (None: the recipe's own value)."""


def run_wiring(stage: str, output_dir: Path | str | None, seed: int, opts: RunOptions) -> dict:
    """Dotted recipe keys an orchestrator sets on ``stage`` (see :func:`build_recipe`)."""
    values: dict[str, Any] = {}
    if output_dir is not None:
        values["output_dir"] = str(output_dir)
    values.update(seed=seed, device=opts.device, num_threads=opts.num_threads)
    if stage in RECIPE_STAGES:
        values.update(
            tensorboard=opts.tensorboard,
            save_every=opts.save_every,
            resume=opts.resume,
            eval_every=opts.eval_every,
        )
        if opts.num_sample_reports is not None:
            values["num_sample_reports"] = opts.num_sample_reports
    return values


def run_stage(stage: str, cfg: Any) -> Any:
    """Run ``stage`` on its resolved recipe config: the final folder (prefs: its summary).

    The entry points are imported here, when a stage runs: they pull in torch,
    transformers and the model."""
    result: Any
    if stage == "clip":
        from mu2.pretrain.recipe import run_clip

        result = run_clip(cfg)
    elif stage == "lm":
        from mu2.train.aids.context_lm import run_lm_pretrain

        result = run_lm_pretrain(cfg)
    elif stage == "sft":
        from mu2.train.sft import run_sft

        result = run_sft(cfg)
    elif stage == "prefs":
        from mu2.train.prefs import build_pairs

        result = build_pairs(cfg)
    elif stage == "dpo":
        from mu2.train.dpo import run_dpo

        result = run_dpo(cfg)
    else:
        raise Mu2Error(f"unknown stage '{stage}'", fix=f"use one of {', '.join(STAGES)}")
    if result is None:
        raise Mu2Error(f"{stage} stopped early", fix=f"drop stop_after from {stage}'s overrides")
    return result
