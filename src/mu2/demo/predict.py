"""Reports for the test split from a trained model, scored with every metric.

Greedy reports for each report row of the test JSONL (its own question, the row's
region), written as the prediction JSONL ``mu2 eval`` reads (id, prediction, reference,
region, dataset, findings), then scored by :func:`mu2.metrics.evaluate`, which writes
``metrics.json``, ``table.md`` and the per-case scores beside it. With ``vqa=True`` the
VQA rows are answered too (task and qtype kept), and the harness scores them by VQA
accuracy per question type.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mu2.device import resolve_device
from mu2.metrics import EvalConfig, EvalResult, evaluate
from mu2.metrics.vqa import VQA_TASK

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
REPORT_TASK = "report"


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
    vqa: bool = False,
) -> list[dict[str, Any]]:
    """Greedy reports for the report rows of ``test_jsonl`` (and answers for its VQA rows
    with ``vqa``); rows also written to ``out_path``."""
    from mu2.generate.predict import predict_split
    from mu2.model import Mu2ForConditionalGeneration

    dev = resolve_device(device)
    model = Mu2ForConditionalGeneration.from_pretrained(str(model_dir)).to(dev).eval()
    # Prepared frames come from the disk cache the training stages filled (same prep key).
    predicted = predict_split(
        model, test_jsonl, cache_dir=cache_dir,
        tasks=(REPORT_TASK, VQA_TASK) if vqa else (REPORT_TASK,), batch_size=batch_size,
        max_new_tokens=max_new_tokens, device=dev, max_cases=max_cases, label=label,
        required=("image", "question", "answer"),
    )  # fmt: skip
    rows = [
        {
            "id": r["id"],
            "case_id": r.get("case_id"),
            "question": r["question"],
            "prediction": r["prediction"],
            "reference": r["reference"],
            "region": r.get("region"),
            "dataset": r.get("dataset"),
            "findings": r.get("findings", []),
            **{k: r[k] for k in ("task", "qtype") if vqa and r.get(k) is not None},
        }
        for r in predicted
    ]
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
