"""Run logs: a JSONL of metrics, TensorBoard event files, and progress bars.

The JSONL (``metrics.jsonl``, one object per logged step, ``{"step", "split", ...}``)
is the record tests and plots read; TensorBoard gets the same scalars for people.
Only the main process writes; the others get a logger that does nothing, so recipes
never branch on the process rank themselves.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"


class MetricsLogger:
    """Append-only metrics for one run (resumed runs append to the same files)."""

    def __init__(self, output_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / METRICS_FILE
        self._writer = None
        self._start = time.monotonic()
        if not enabled:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            # Imported lazily: pulls in the tensorboard package (about a second).
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.output_dir / "tensorboard"))

    def rewind(self, step: int) -> None:
        """Drop rows logged after ``step``: a resumed run redoes those steps."""
        if not self.enabled:
            return
        for path in (self.path, self.output_dir / SAMPLES_FILE):
            if path.is_file():
                kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
                path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        """Record scalars for ``split`` ("train", "val", ...) at optimizer step ``step``."""
        if not self.enabled:
            return
        clean = {
            k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))
        }
        row = {
            "step": step,
            "split": split,
            "time_s": round(time.monotonic() - self._start, 3),
            **clean,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for key, value in clean.items():
                self._writer.add_scalar(f"{split}/{key}", value, step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        """Record generated reports next to their references (JSONL, and TensorBoard text)."""
        if not self.enabled or not samples:
            return
        with open(self.output_dir / SAMPLES_FILE, "a") as f:
            for sample in samples:
                f.write(json.dumps({"step": step, **sample}) + "\n")
        if self._writer is not None:
            text = "\n\n".join(
                f"**{s.get('id', i)}**  \nreference: {s.get('reference', '')}  \n"
                f"generated: {s.get('generated', '')}"
                for i, s in enumerate(samples)
            )
            self._writer.add_text("samples", text, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


def read_metrics(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of a metrics JSONL (optionally one split), in file order."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if split is None or row.get("split") == split:
                    rows.append(row)
    return rows


def progress(total: int, desc: str, *, enabled: bool = True, initial: int = 0) -> tqdm:
    """A progress bar over optimizer steps (silent on non-main processes)."""
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True)
