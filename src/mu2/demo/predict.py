"""Reports for the test split from a trained model, scored with every metric.

Greedy reports for each report row of the test JSONL (its own question, the row's
region), written as the prediction JSONL ``mu2 eval`` reads (id, prediction, reference,
region, dataset, findings), then scored by :func:`mu2.metrics.evaluate`, which writes
``metrics.json``, ``table.md`` and the per-case scores beside it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mu2.metrics import EvalConfig, EvalResult, evaluate

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
REPORT_TASK = "report"


def resolve_device(device: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def predict_test(
    model_dir: str | Path,
    test_jsonl: str | Path,
    out_path: str | Path,
    *,
    cache_dir: str | Path,
    batch_size: int,
    max_new_tokens: int,
    max_cases: int | None = None,
    device: str = "auto",
    label: str = "predict",
) -> list[dict[str, Any]]:
    """Greedy reports for the report rows of ``test_jsonl``; rows also written to ``out_path``."""
    from mu2.engine.dataset import CTCaseDataset, prepare_fn
    from mu2.model import Mu2ForConditionalGeneration
    from mu2.train.sampling import generate_reports

    dev = resolve_device(device)
    model = Mu2ForConditionalGeneration.from_pretrained(str(model_dir)).to(dev).eval()
    prep, key = prepare_fn(str(model.config.prep))
    # Prepared frames come from the disk cache the training stages filled (same prep key).
    data = CTCaseDataset(
        test_jsonl, prep, cache="disk", cache_dir=cache_dir, cache_key=key,
        required=("image", "question", "answer"),
    )  # fmt: skip
    indices = [i for i, r in enumerate(data.rows) if r.get("task", REPORT_TASK) == REPORT_TASK]
    indices = indices[:max_cases]
    rows: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(indices), batch_size), desc=label, unit="batch"):
        items = [data[i] for i in indices[start : start + batch_size]]
        texts = generate_reports(
            model,
            model.processor,
            [it["frames"] for it in items],  # each (T, K, H, W)
            [it["question"] for it in items],
            device=dev,
            max_new_tokens=max_new_tokens,
        )
        for it, text in zip(items, texts, strict=True):
            rows.append(
                {
                    "id": it["id"],
                    "case_id": it.get("case_id"),
                    "question": it["question"],
                    "prediction": text,
                    "reference": it["answer"],
                    "region": it.get("region"),
                    "dataset": it.get("dataset"),
                    "findings": it.get("findings", []),
                }
            )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def score(
    rows: list[dict[str, Any]],
    out_dir: str | Path,
    *,
    name: str,
    metrics: list[str],
    bootstrap: int,
    green_backend: str,
    missing_java: str,
    seed: int,
    device: str = "auto",
) -> EvalResult:
    """Every selected metric (offline judge and BERTScore backbone labelled by the harness)."""
    dev = resolve_device(device)
    cfg = EvalConfig(
        metrics=list(metrics),
        green_backend=green_backend,
        bootstrap=bootstrap,
        seed=seed,
        device=str(dev),
        name=name,
        missing_java=missing_java,  # type: ignore[arg-type]
    )
    return evaluate(rows, config=cfg, out_dir=out_dir, progress=True)
