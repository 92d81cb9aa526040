"""Greedy reports of a trained model for the rows of one split: the prediction file.

Volumes come through the training data pipeline (prepared once, cached on disk, no
augmentation), so every preset sees exactly the same frames; reports are decoded in
batches by the package's one split predictor (:func:`mu2.generate.predict.predict_split`):
batching is what makes scoring 8 rows x 3 seeds x 2 data sets affordable on a CPU.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def split_rows(jsonl: str | Path, tasks: Sequence[str]) -> int:
    """Rows of ``jsonl`` with one of ``tasks`` (0 for a missing or empty file)."""
    path = Path(jsonl)
    if not path.is_file():
        return 0
    n = 0
    for line in path.read_text().splitlines():
        if line.strip() and json.loads(line).get("task", tasks[0]) in tasks:
            n += 1
    return n


def predict_split(
    model: Any,
    jsonl: str | Path,
    *,
    prep: str,
    cache_dir: str | Path,
    tasks: Sequence[str],
    batch_size: int,
    max_new_tokens: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Prediction rows ``{"id", "prediction", "reference", region, findings, ...}``
    (:func:`mu2.generate.predict.predict_split`, the package's one split predictor)."""
    from mu2.generate.predict import predict_split as predict

    return predict(
        model, jsonl, prep=prep, cache_dir=cache_dir, tasks=tasks, batch_size=batch_size,
        max_new_tokens=max_new_tokens, device=device, progress=progress,
    )  # fmt: skip


def write_predictions(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write atomically: a file that exists is complete (the resume rule of the bench)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp.replace(path)


def read_predictions_file(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
