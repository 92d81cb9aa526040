"""Percentile bootstrap confidence intervals over cases, seeded and shared across metrics.

Every metric is resampled with the same case indices, so intervals of different metrics
come from the same resamples. Corpus metrics (BLEU, METEOR) are re-aggregated on each
resample, not averaged per case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Aggregator: index sets (each (n,) int array, repeats allowed) -> one value per set, (M,).
Aggregator = Callable[[Sequence[np.ndarray]], np.ndarray]


def resample_indices(
    n: int, n_resamples: int, seed: int, within: np.ndarray | None = None
) -> list[np.ndarray]:
    """``n_resamples`` draws of ``n`` case indices with replacement (from ``within`` if given)."""
    rng = np.random.default_rng(seed)
    pool = np.arange(n) if within is None else np.asarray(within)
    draws = rng.integers(0, len(pool), size=(n_resamples, len(pool)))  # (M, n)
    return list(pool[draws])


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The (lower, upper) percentile interval of bootstrap values."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(values, dtype=float), [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mean_aggregator(per_case: np.ndarray) -> Aggregator:
    """Aggregator for metrics whose corpus value is the mean of per-case scores."""
    values = np.asarray(per_case, dtype=float)

    def aggregate(index_sets: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray([values[idx].mean() for idx in index_sets])

    return aggregate


def bootstrap_intervals(
    aggregators: dict[str, Aggregator],
    index_sets: Sequence[np.ndarray],
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric over the same resamples."""
    return {name: percentile_interval(agg(index_sets), level) for name, agg in aggregators.items()}
