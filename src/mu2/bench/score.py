"""Score every prediction file of an ablation in one evaluation, one metrics file per run.

``mu2.metrics.evaluate`` computes each metric once per case and aggregates groups from
the per-case values (corpus BLEU and METEOR from summed statistics), so scoring all runs
together with one group per run gives exactly the numbers of scoring each run alone -- with
one METEOR JVM (11 s to start on an idle machine, 35-40 s on this loaded one) and one
BERTScore model load instead of one per run and split.

Short-answer rows (``task`` ``vqa``) are no reports: each run's are scored apart by VQA
accuracy (:func:`mu2.metrics.vqa.vqa_accuracy`, exact match of the closed answer, overall
and per question type), as ``mu2 eval`` does, and the text metrics see the report rows only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu2.metrics import EvalConfig, evaluate
from mu2.metrics.perfinding import per_finding
from mu2.metrics.vqa import split_rows, vqa_accuracy

log = logging.getLogger(__name__)

GROUP_KEY = "dataset"
"""Row key the harness groups by; here it carries the run key (data set/seed/row/split)."""
FINDING_F1 = "finding_f1"
FINDING_F1_LABEL = (
    "finding-level micro F1 of the findings read back from each report (mu2 extractor) "
    "against the structured ground truth"
)
VQA_ACCURACY = "vqa_accuracy"
"""Score key of a run's VQA accuracy; ``vqa_accuracy.<type>`` per question type."""
VQA_MAJORITY = "vqa_majority"
"""Share of the most common reference answer (per type: ``vqa_majority.<type>``)."""


@dataclass
class RunPredictions:
    """One prediction file and where its metrics file goes."""

    dataset: str
    seed: int
    row: str
    split: str
    predictions: Path
    metrics: Path

    @property
    def key(self) -> str:
        return f"{self.dataset}/seed{self.seed}/{self.row}/{self.split}"


def score_runs(
    runs: Sequence[RunPredictions],
    metrics: Sequence[str],
    eval_dir: Path,
    *,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Write each run's metrics file; return them by run key. ``eval_dir`` gets the
    harness's own files (per-case scores of every run, GREEN judge answers)."""
    from mu2.findings.catalogue import Finding

    rows: list[dict[str, Any]] = []
    spans: dict[str, tuple[int, int]] = {}
    vqa: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        start = len(rows)
        reports, vqa[run.key] = split_rows(_read(run.predictions))
        for r in reports:
            rows.append({**r, "id": f"{run.key}::{r['id']}", GROUP_KEY: run.key})
        spans[run.key] = (start, len(rows))
    if not rows and not any(vqa.values()):
        return {}
    cfg = EvalConfig(metrics=list(metrics), by=GROUP_KEY, bootstrap=0, name="ablation")
    log.info("scoring %d report rows of %d runs", len(rows), len(runs))
    result = evaluate(rows, config=cfg, out_dir=eval_dir, progress=progress) if rows else None
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        lo, hi = spans[run.key]
        if hi == lo and not vqa[run.key]:
            continue
        mine = rows[lo:hi]
        pf = per_finding(
            [r["prediction"] for r in mine],
            [[Finding.from_dict(f) for f in r.get("findings", [])] for r in mine],
            [r.get("region") for r in mine],
        ) if mine else None  # fmt: skip
        scores = {**result.groups[run.key], FINDING_F1: pf.f1} if result and pf else {}
        labels = {**result.labels, FINDING_F1: FINDING_F1_LABEL} if result else {}
        acc = vqa_accuracy(vqa[run.key], n_resamples=0) if vqa[run.key] else None
        if acc is not None:  # one value per seed, like the report scores
            scores[VQA_ACCURACY] = acc.overall.accuracy
            scores.update({f"{VQA_ACCURACY}.{t}": s.accuracy for t, s in acc.types.items()})
            # what always giving the most common answer scores: the floor of ignoring the question
            scores[VQA_MAJORITY] = acc.overall.majority
            scores.update({f"{VQA_MAJORITY}.{t}": s.majority for t, s in acc.types.items()})
            labels[VQA_ACCURACY] = acc.label
        doc = {
            "key": run.key,
            "dataset": run.dataset,
            "seed": run.seed,
            "row": run.row,
            "split": run.split,
            "n": hi - lo,
            "n_vqa": len(vqa[run.key]),
            "scores": scores,
            "labels": labels,
            "green": result.group_green.get(run.key) if result else None,
            "per_finding": pf.to_dict() if pf else {"kinds": {}},
            "vqa": acc.to_dict() if acc is not None else None,
            "predictions": str(run.predictions),
            "evaluated_with": {"metrics": list(metrics), "eval_dir": str(eval_dir)},
        }
        run.metrics.parent.mkdir(parents=True, exist_ok=True)
        run.metrics.write_text(json.dumps(doc, indent=1) + "\n")
        out[run.key] = doc
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
