"""Predict a JSONL split: greedy answers of a model for the rows of a data set file.

The one "predict a split" function of the package, used by the demo's test-set scoring
(:mod:`mu2.demo.predict`) and the ablation benchmark (:mod:`mu2.bench.predict`). Volumes
come through the training data pipeline (prepared once, cached on disk, no augmentation),
so every model sees exactly the frames it was trained on; the answers come from the one
decode path (:func:`mu2.generate.decode.decode`), a batch of rows at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

KEPT_FIELDS: tuple[str, ...] = (
    "case_id", "question", "region", "task", "qtype", "dataset", "findings",
)  # fmt: skip
REQUIRED_FIELDS: tuple[str, ...] = ("id", "image", "question", "answer")


def predict_split(
    model: Any,
    jsonl: str | Path,
    *,
    cache_dir: str | Path,
    tasks: Sequence[str] = ("report",),
    batch_size: int = 16,
    max_new_tokens: int = 256,
    prep: str | None = None,
    device: str | torch.device = "cpu",
    max_cases: int | None = None,
    workers: int = 0,
    progress: bool = True,
    label: str | None = None,
    required: Sequence[str] = REQUIRED_FIELDS,
) -> list[dict[str, Any]]:
    """Rows ``{"id", "prediction", "reference", case_id, question, region, task, dataset,
    findings}`` (the fields a row has) for the rows of ``jsonl`` whose task is in ``tasks``.

    ``prep``: the preparation of the model's frames (default: the model's own config);
    ``max_cases``: the first N selected rows; ``workers``: DataLoader workers that read and
    prepare the next rows while the model decodes (0: in this process).
    """
    from torch.utils.data import DataLoader, Subset
    from tqdm.auto import tqdm

    from mu2.engine.dataset import CTCaseDataset, prepare_fn
    from mu2.generate.decode import DecodeOptions, decode
    from mu2.generate.settings import GenerationSettings

    prepare, key = prepare_fn(str(prep or model.config.prep))
    data = CTCaseDataset(
        jsonl, prepare, cache="disk", cache_dir=cache_dir, cache_key=key, required=tuple(required)
    )
    keep = [i for i, r in enumerate(data.rows) if r.get("task", tasks[0]) in tasks][:max_cases]
    model = model.to(device).eval()
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    options = DecodeOptions(batch_size=batch_size)
    loader = DataLoader(
        Subset(data, keep), batch_size=batch_size, num_workers=workers, collate_fn=list
    )
    out: list[dict[str, Any]] = []
    bar = tqdm(total=len(keep), desc=label or f"predict {Path(jsonl).stem}", disable=not progress)
    for items in loader:
        texts = decode(
            model,
            model.processor,
            [it["frames"] for it in items],  # (T, K, H, W) each
            [it["question"] for it in items],
            settings=settings,
            options=options,
            device=device,
        ).texts
        for it, text in zip(items, texts, strict=True):
            row = {"id": str(it["id"]), "prediction": text, "reference": it["answer"]}
            row.update({k: it[k] for k in KEPT_FIELDS if k in it})
            out.append(row)
        bar.update(len(items))
    bar.close()
    log.info("%d predictions for %s", len(out), jsonl)
    return out
