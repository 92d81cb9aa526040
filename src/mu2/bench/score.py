"""Score every prediction file of an ablation in one evaluation, one metrics file per run.

``mu2.metrics.evaluate`` computes each metric once per case and aggregates groups from
the per-case values (corpus BLEU and METEOR from summed statistics), so scoring all runs
together with one group per run gives exactly the numbers of scoring each run alone -- with
one METEOR JVM (11 s to start on an idle machine, 35-40 s on this loaded one) and one
BERTScore model load instead of one per run and split.
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

log = logging.getLogger(__name__)

GROUP_KEY = "dataset"
"""Row key the harness groups by; here it carries the run key (data set/seed/row/split)."""
FINDING_F1 = "finding_f1"
FINDING_F1_LABEL = (
    "finding-level micro F1 of the findings read back from each report (mu2 extractor) "
    "against the structured ground truth"
)


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
    for run in runs:
        start = len(rows)
        for r in _read(run.predictions):
            rows.append({**r, "id": f"{run.key}::{r['id']}", GROUP_KEY: run.key})
        spans[run.key] = (start, len(rows))
    if not rows:
        return {}
    cfg = EvalConfig(metrics=list(metrics), by=GROUP_KEY, bootstrap=0, name="ablation")
    log.info("scoring %d prediction rows of %d runs", len(rows), len(runs))
    result = evaluate(rows, config=cfg, out_dir=eval_dir, progress=progress)
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        lo, hi = spans[run.key]
        if hi == lo:
            continue
        mine = rows[lo:hi]
        pf = per_finding(
            [r["prediction"] for r in mine],
            [[Finding.from_dict(f) for f in r.get("findings", [])] for r in mine],
            [r.get("region") for r in mine],
        )
        doc = {
            "key": run.key,
            "dataset": run.dataset,
            "seed": run.seed,
            "row": run.row,
            "split": run.split,
            "n": result.group_sizes[run.key],
            "scores": {**result.groups[run.key], FINDING_F1: pf.f1},
            "labels": {**result.labels, FINDING_F1: FINDING_F1_LABEL},
            "green": result.group_green.get(run.key),
            "per_finding": pf.to_dict(),
            "predictions": str(run.predictions),
            "evaluated_with": {"metrics": list(metrics), "eval_dir": str(eval_dir)},
        }
        run.metrics.parent.mkdir(parents=True, exist_ok=True)
        run.metrics.write_text(json.dumps(doc, indent=1) + "\n")
        out[run.key] = doc
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
