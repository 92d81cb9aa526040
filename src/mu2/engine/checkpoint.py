"""Training checkpoints: atomic, keep-last-N, and exact resume.

``accelerate`` already saves the model, optimizer, scheduler, gradient scaler and every
process's RNG states (and knows how DeepSpeed shards them); what it does not do is make
the write atomic, prune old checkpoints safely, or remember where in the data a run
stopped. This module adds those three things around ``Accelerator.save_state``:

* the state is written into ``checkpoint-XXXXXXX.tmp`` and renamed to
  ``checkpoint-XXXXXXX`` only once complete, so a run killed while saving never leaves
  a checkpoint that looks valid;
* ``trainer_state.json`` inside it holds the optimizer step, the epoch and the number
  of micro-batches of that epoch already consumed;
* ``resume="auto"`` picks the newest complete checkpoint in the output folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator

from mu2.errors import Mu2Error

logger = logging.getLogger(__name__)

PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


@dataclass
class TrainState:
    """Where a run is: enough to continue it exactly."""

    step: int = 0
    """Optimizer steps taken."""
    epoch: int = 0
    """Current epoch (0-based)."""
    batches_in_epoch: int = 0
    """Micro-batches of the current epoch already consumed on each process."""
    samples_seen: int = 0
    """Training cases seen, summed over processes."""
    train_time_s: float = 0.0
    """Wall time spent in training steps (evaluation and checkpointing excluded)."""


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"{PREFIX}{step:07d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first (``.tmp`` leftovers excluded)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """``auto``: newest complete checkpoint or None; ``none``: None; else a checkpoint path."""
    if resume in ("none", "", "false"):
        return None
    if resume == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise Mu2Error(
            f"resume={resume}: not a complete checkpoint (no {STATE_FILE})",
            fix="pass resume=auto, resume=none, or a checkpoint-XXXXXXX folder",
        )
    return path


def save_checkpoint(
    accelerator: Accelerator, output_dir: str | Path, state: TrainState, keep_last: int
) -> Path:
    """Write a checkpoint atomically, then delete all but the newest ``keep_last``.

    Every process must call this (DeepSpeed and the RNG states are per process).
    """
    final = checkpoint_dir(output_dir, state.step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state_path = tmp / STATE_FILE
        with open(state_path, "w") as f:
            json.dump(dataclasses.asdict(state), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():  # a checkpoint of the same step from an earlier, interrupted run
            shutil.rmtree(final)
        os.replace(tmp, final)
        _prune(output_dir, keep_last)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: str | Path) -> TrainState:
    """Restore model, optimizer, scheduler and RNG states; return where the run was."""
    path = Path(path)
    accelerator.load_state(str(path))
    data = json.loads((path / STATE_FILE).read_text())
    logger.info("resumed from %s (step %d)", path, data["step"])
    return TrainState(**data)


def _prune(output_dir: str | Path, keep_last: int) -> None:
    if keep_last < 1:
        return
    for old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
