"""The training loop that SFT and DPO share: setup -> train -> cleanup.

A recipe (``mu2.train.sft``, ``mu2.train.dpo``) says what is specific to its stage: how
to build the model and data, the loss of one batch, what to evaluate, what to save.
This base class does the rest the same way for both:

* one ``Accelerator`` (CPU, GPU, DDP, DeepSpeed), gradient accumulation and clipping,
  AdamW with warm-up + cosine (``mu2.engine.schedule``);
* checkpoints every ``save_every`` optimizer steps and exact resume (data order and
  augmentation depend only on (seed, epoch, index); RNG and accumulation counters come
  back from the checkpoint; ``skip_first_batches`` skips what an epoch already used);
* metrics JSONL + TensorBoard + progress bar, validation every ``eval_every`` steps;
* the final model to ``<output_dir>/final`` (``save_pretrained``, written to a temporary
  folder and renamed), with ``loss_curve.png`` and ``training_summary.json`` beside it.

Loss normalisation: each micro-batch's loss is its mean over tokens (or pairs); the
update averages micro-batches (accumulation) and processes (DDP) -- as DeepSpeed and the
reference code do. A run of P processes x batch b therefore matches one process with
batch b and ``grad_accum`` P on the same data (tested).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mu2.config import to_dict
from mu2.engine.checkpoint import TrainState, load_checkpoint, resolve_resume, save_checkpoint
from mu2.engine.config import RunOptions
from mu2.engine.dataset import EpochSampler
from mu2.engine.durable import swap_into_place
from mu2.engine.logging import MetricsLogger, progress
from mu2.engine.plots import plot_loss_curve
from mu2.engine.runtime import build_optimizer, count_parameters, make_accelerator
from mu2.engine.schedule import warmup_cosine

logger = logging.getLogger(__name__)

FINAL_DIR = "final"
SUMMARY_FILE = "training_summary.json"
LOSS_CURVE = "loss_curve.png"


class Recipe:
    """Base of the training recipes; subclasses fill in the stage-specific hooks."""

    stage = "train"

    def __init__(self, cfg: Any):
        self.cfg: Any = cfg
        self.run: RunOptions = cfg
        self.output_dir = Path(cfg.output_dir)
        self.state = TrainState()
        self.stopped_early = False

    # ---- hooks for the stages -------------------------------------------------------
    def build(self) -> tuple[torch.nn.Module, Dataset, Any]:
        """Model, training dataset and its collate function (called after the Accelerator exists)."""
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one micro-batch and extra scalars to log (averaged like the loss)."""
        raise NotImplementedError

    def cases_in(self, batch: dict[str, Any]) -> int:
        """Training cases in a micro-batch on this process."""
        return int(batch["pixel_values"].shape[0])

    def evaluate(self) -> dict[str, float]:
        """Validation scalars (every process calls it); sample reports go to the logger."""
        return {}

    def batch_sampler(self, n: int) -> Any | None:
        """A stage's own batches of case indices (with ``set_epoch``); None: shuffled epochs."""
        return None

    def optimizer_for(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """AdamW over the trainable parameters (no weight decay on biases and norms)."""
        return build_optimizer(model, self.cfg.optim)

    def summary_extra(self) -> dict[str, Any]:
        """Stage-specific entries of ``training_summary.json``."""
        return {}

    def save_model(self, unwrapped: torch.nn.Module, out: Path, state_dict: dict | None) -> None:
        """Write the final model (main process only) in a from_pretrained-able layout."""
        unwrapped.save_pretrained(out, state_dict=state_dict)

    def model_card(self, unwrapped: torch.nn.Module) -> Any:
        """The card saved with the final model: this stage's training rows on top of the
        card of the model it started from (SFT -> DPO)."""
        from mu2.data.schema import read_jsonl
        from mu2.model.card import card_from_rows

        path = self.cfg.data.train
        rows = read_jsonl(path)[: getattr(self.cfg.data, "limit", None)]
        return card_from_rows(
            rows,
            self.stage,
            name=self.output_dir.name,
            data_path=path,
            base=getattr(unwrapped, "model_card", None),
            extra={"steps": self.state.step},
        )

    # ---- setup -> train -> cleanup --------------------------------------------------
    def setup(self) -> None:
        run = self.run
        self.accelerator = acc = make_accelerator(run)
        self.is_main = acc.is_main_process
        model, train_ds, collate = self.build()
        batches = self.batch_sampler(len(train_ds))
        if batches is None:  # epochs over the cases, shuffled per (seed, epoch)
            self.sampler = EpochSampler(len(train_ds), seed=run.seed)
            loader = DataLoader(
                train_ds,
                batch_size=run.batch_size,
                sampler=self.sampler,
                collate_fn=collate,
                num_workers=self.cfg.data.num_workers,
            )
        else:
            self.sampler = batches
            loader = DataLoader(
                train_ds,
                batch_sampler=batches,
                collate_fn=collate,
                num_workers=self.cfg.data.num_workers,
            )
        optimizer = self.optimizer_for(model)
        # Per-process micro-batches per epoch as accelerate will shard them (even_batches).
        per_process = math.ceil(math.ceil(len(train_ds) / run.batch_size) / acc.num_processes)
        self.steps_per_epoch = math.ceil(per_process / run.grad_accum)
        self.total_steps = run.max_steps or run.epochs * self.steps_per_epoch
        scheduler = warmup_cosine(
            optimizer, self.total_steps, self.cfg.optim.warmup_ratio, self.cfg.optim.min_lr_ratio
        )
        self._set_deepspeed_clipping()
        self.model, self.optimizer, self.loader, self.scheduler = acc.prepare(
            model, optimizer, loader, scheduler
        )
        trainable, total = count_parameters(model)
        logger.info(
            "%s: %d cases, %d steps/epoch, %d steps, %s trainable of %s parameters",
            self.stage,
            len(train_ds),
            self.steps_per_epoch,
            self.total_steps,
            f"{trainable:,}",
            f"{total:,}",
        )
        self.metrics = MetricsLogger(
            self.output_dir, enabled=self.is_main, tensorboard=run.tensorboard
        )
        checkpoint = resolve_resume(run.resume, self.output_dir)
        if checkpoint is not None:
            self.state = load_checkpoint(acc, checkpoint)
            self.metrics.rewind(self.state.step)
        if self.is_main:
            (self.output_dir / "config.json").write_text(json.dumps(to_dict(self.cfg), indent=2))

    def _set_deepspeed_clipping(self) -> None:
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.deepspeed_config.get("gradient_clipping") in (
            None,
            "auto",
        ):
            plugin.deepspeed_config["gradient_clipping"] = self.cfg.optim.clip_norm

    def train(self) -> None:
        acc, run, state = self.accelerator, self.run, self.state
        clip = self.cfg.optim.clip_norm
        bar = progress(self.total_steps, self.stage, enabled=self.is_main, initial=state.step)
        window: dict[str, list[torch.Tensor]] = {}
        window_cases, window_time, clock = 0, 0.0, time.monotonic()
        grad_norm: torch.Tensor | None = None
        self.model.train()
        while state.step < self.total_steps:
            self.loader.set_epoch(state.epoch)
            self.sampler.set_epoch(state.epoch)
            batches = (
                acc.skip_first_batches(self.loader, state.batches_in_epoch)
                if state.batches_in_epoch
                else self.loader
            )
            finished_epoch = True
            for batch in batches:
                with acc.accumulate(self.model):
                    loss, extra = self.compute_loss(batch)
                    acc.backward(loss)
                    if acc.sync_gradients:
                        if clip > 0:
                            grad_norm = acc.clip_grad_norm_(self.model.parameters(), clip)
                        self.optimizer.step()
                        self.scheduler.step()
                        self.optimizer.zero_grad(set_to_none=True)
                state.batches_in_epoch += 1
                cases = self.cases_in(batch) * acc.num_processes
                window_cases += cases
                state.samples_seen += cases
                for key, value in {"loss": loss, **extra}.items():
                    window.setdefault(key, []).append(value.detach().float())
                if not acc.sync_gradients:
                    continue
                state.step += 1
                bar.update(1)
                now = time.monotonic()  # evaluation and checkpoint time are left out
                state.train_time_s += now - clock
                window_time += now - clock
                clock = now
                if state.step % run.log_every == 0 or state.step == self.total_steps:
                    values = {
                        k: acc.reduce(torch.stack(v).mean(), "mean").item()
                        for k, v in window.items()
                    }
                    values.update(
                        lr=self.scheduler.get_last_lr()[0],
                        epoch=state.epoch + state.batches_in_epoch / max(len(self.loader), 1),
                        cases_per_s=window_cases / max(window_time, 1e-9),
                    )
                    if grad_norm is not None:
                        values["grad_norm"] = float(grad_norm)
                    self.metrics.log(state.step, "train", values)
                    bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
                    window, window_cases, window_time = {}, 0, 0.0
                if (
                    run.eval_every
                    and state.step % run.eval_every == 0
                    and state.step < self.total_steps
                ):
                    self._evaluate()
                    clock = time.monotonic()
                stop_here = run.stop_after is not None and state.step >= run.stop_after
                if (run.save_every and state.step % run.save_every == 0) or (
                    stop_here and state.step < self.total_steps
                ):
                    save_checkpoint(acc, self.output_dir, state, run.keep_last)
                    clock = time.monotonic()
                if stop_here and state.step < self.total_steps:
                    logger.info(
                        "stop_after=%d reached: checkpointed; resume=auto continues", run.stop_after
                    )
                    self.stopped_early = True
                    bar.close()
                    return
                if state.step >= self.total_steps:
                    finished_epoch = False
                    break
            if finished_epoch:
                state.epoch += 1
                state.batches_in_epoch = 0
        bar.close()

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        values = self.evaluate()
        self.model.train()
        if values:
            self.metrics.log(self.state.step, "val", values)
            logger.info(
                "step %d val: %s", self.state.step, {k: round(v, 4) for k, v in values.items()}
            )
        return values

    def cleanup(self) -> Path | None:
        """Final evaluation and model (unless stopped early); close the logs."""
        acc = self.accelerator
        final: Path | None = None
        if not self.stopped_early:
            val = self._evaluate()
            final = self.output_dir / FINAL_DIR
            tmp = final.with_name(final.name + ".tmp")
            state_dict = acc.get_state_dict(self.model)  # gathers ZeRO-3 shards on every process
            if self.is_main:
                shutil.rmtree(tmp, ignore_errors=True)
                unwrapped = acc.unwrap_model(self.model)
                unwrapped.model_card = self.model_card(unwrapped)
                self.save_model(unwrapped, tmp, state_dict)
                summary = {
                    "stage": self.stage,
                    "steps": self.state.step,
                    "epochs": round(
                        self.state.epoch + self.state.batches_in_epoch / max(len(self.loader), 1), 3
                    ),
                    "cases_seen": self.state.samples_seen,
                    "processes": acc.num_processes,
                    "train_time_s": round(self.state.train_time_s, 2),
                    "cases_per_s": round(
                        self.state.samples_seen / max(self.state.train_time_s, 1e-9), 3
                    ),
                    "val": val,
                    **self.summary_extra(),
                }
                (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
                if self.metrics.path.is_file():
                    plot_loss_curve(self.metrics.path, tmp / LOSS_CURVE)
                swap_into_place(tmp, final)  # the old final model stays until the swap
                logger.info("final model: %s", final)
            acc.wait_for_everyone()
        self.metrics.close()
        acc.end_training()
        return final

    def run_all(self) -> Path | None:
        threads = torch.get_num_threads()  # num_threads is per run: restore the caller's
        try:
            self.setup()
            self.train()
            return self.cleanup()
        finally:
            torch.set_num_threads(threads)
