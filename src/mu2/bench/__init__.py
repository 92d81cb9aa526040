"""Benchmarks of the paper's tables on the embedded synthetic benchmark (``mu2 bench``).

``run_ablation(AblationConfig(...))`` trains every tokenizer preset with one budget, scores
the reports, and writes the Table 1 / Table 2 analogues with mean and sd over seeds.
"""

from mu2.bench.ablation import AblationResult, run_ablation
from mu2.bench.config import ALL_PRESETS, DATASETS, DPO_ROW, AblationConfig
from mu2.bench.table import Tables, build_tables, write_tables

__all__ = [
    "ALL_PRESETS",
    "DATASETS",
    "DPO_ROW",
    "AblationConfig",
    "AblationResult",
    "Tables",
    "build_tables",
    "run_ablation",
    "write_tables",
]
