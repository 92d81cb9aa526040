"""Greedy reports of a trained model for the rows of one split: the prediction file.

Volumes come through the training data pipeline (prepared once, cached on disk, no
augmentation), so every preset sees exactly the same frames; reports are decoded in
batches with the same call the SFT recipe uses for its sample reports
(:func:`mu2.train.sampling.generate_reports`): batching is what makes scoring 8 rows x 3
seeds x 2 data sets affordable on a CPU.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mu2.engine.dataset import CTCaseDataset, prepare_fn

log = logging.getLogger(__name__)

KEPT_FIELDS: tuple[str, ...] = ("case_id", "question", "region", "task", "dataset", "findings")


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


@torch.no_grad()
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
    """Prediction rows ``{"id", "prediction", "reference", region, findings, ...}``."""
    from mu2.train.sampling import generate_reports

    prepare, key = prepare_fn(prep)
    data = CTCaseDataset(
        jsonl, prepare, cache="disk", cache_dir=cache_dir, cache_key=key,
        required=("id", "image", "question", "answer"),
    )  # fmt: skip
    keep = [i for i, r in enumerate(data.rows) if r.get("task", tasks[0]) in tasks]
    model = model.to(device).eval()
    out: list[dict[str, Any]] = []
    bar = tqdm(total=len(keep), desc=f"predict {Path(jsonl).stem}", disable=not progress)
    for start in range(0, len(keep), batch_size):
        items = [data[i] for i in keep[start : start + batch_size]]
        texts = generate_reports(
            model,
            model.processor,
            [it["frames"] for it in items],  # (T, K, H, W) each
            [it["question"] for it in items],
            device=device,
            max_new_tokens=max_new_tokens,
        )
        for it, text in zip(items, texts, strict=True):
            row = {"id": str(it["id"]), "prediction": text, "reference": it["answer"]}
            row.update({k: it[k] for k in KEPT_FIELDS if k in it})
            out.append(row)
        bar.update(len(items))
    bar.close()
    log.info("%d predictions for %s", len(out), jsonl)
    return out


def write_predictions(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write atomically: a file that exists is complete (the resume rule of the bench)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp.replace(path)


def read_predictions_file(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
