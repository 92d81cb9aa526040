"""Evaluation of generated reports: GREEN (exact protocol), BLEU, ROUGE, METEOR, BERTScore,
per-finding accuracy, bootstrap intervals; ``evaluate`` is what ``mu2 eval`` calls."""

from mu2.metrics.harness import ALL_METRICS, EvalConfig, evaluate, read_predictions, validate_rows
from mu2.metrics.result import EvalResult

__all__ = [
    "ALL_METRICS",
    "EvalConfig",
    "EvalResult",
    "evaluate",
    "read_predictions",
    "validate_rows",
]
