"""SFT against SFT+DPO on the same test reports, with paired bootstrap intervals.

GREEN (whichever judge the evaluation used, named as such: the offline rules judge by
default) and micro finding F1 per model, their differences (DPO - SFT) over the same
resampled cases (a paired bootstrap: both models are scored on each resample's cases),
and beside them the mean report length and the distinct-report share, because a gain
that comes from shorter or templated reports is no gain. Read back from the files each
evaluation wrote (``predictions.jsonl``, ``per_case.jsonl``, ``metrics.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mu2.findings.catalogue import Finding
from mu2.metrics.bootstrap import percentile_interval, resample_indices
from mu2.metrics.perfinding import per_finding, report_diversity
from mu2.metrics.vqa import split_rows

Interval = tuple[float, float]


@dataclass
class ModelStats:
    name: str
    green: float | None
    green_ci: Interval | None
    f1: float
    f1_ci: Interval
    mean_words: float
    distinct_share: float


@dataclass
class Comparison:
    n: int
    judge: str
    level: float
    base: ModelStats
    other: ModelStats
    green_diff: float | None
    green_diff_ci: Interval | None
    f1_diff: float
    f1_diff_ci: Interval

    def markdown(self) -> str:
        def num(v: float | None, ci: Interval | None) -> str:
            return "-" if v is None or ci is None else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

        pct = f"{self.level:.0%}"
        lines = [
            f"Same {self.n} test reports; {pct} percentile intervals from a paired bootstrap "
            f"over cases. GREEN judge: {self.judge}.",
            "",
            f"| model | GREEN [{pct}] | finding F1 [{pct}] | mean words | distinct reports |",
            "|---|---|---|---|---|",
        ]
        for m in (self.base, self.other):
            lines.append(
                f"| {m.name} | {num(m.green, m.green_ci)} | {num(m.f1, m.f1_ci)} "
                f"| {m.mean_words:.1f} | {m.distinct_share:.3f} |"
            )
        lines.append(
            f"| {self.other.name} - {self.base.name} | {num(self.green_diff, self.green_diff_ci)} "
            f"| {num(self.f1_diff, self.f1_diff_ci)} | | |"
        )
        return "\n".join(lines)


def _rows(path: Path) -> dict[str, dict]:
    return {str(r["id"]): r for r in map(json.loads, path.read_text().splitlines()) if r}


def _f1(counts: np.ndarray) -> float:
    """Micro F1 of summed (tp, fp, fn) counts."""
    tp, fp, fn = counts
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


def _case_counts(rows: list[dict]) -> np.ndarray:
    """(n, 3) finding-level tp, fp, fn of each report against its structured findings."""
    out = []
    for r in rows:
        truth = [Finding.from_dict(f) for f in r.get("findings") or []]
        res = per_finding([r["prediction"]], [truth], [r.get("region")])
        out.append((res.tp, res.fp, res.fn))
    return np.asarray(out, dtype=float).reshape(-1, 3)


def compare_evals(
    base_dir: str | Path,
    other_dir: str | Path,
    base_name: str,
    other_name: str,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Compare two evaluation folders on the test reports both scored (VQA rows, scored
    by VQA accuracy instead, are left out)."""
    base_dir, other_dir = Path(base_dir), Path(other_dir)
    preds = [
        {str(r["id"]): r for r in split_rows(list(_rows(d / "predictions.jsonl").values()))[0]}
        for d in (base_dir, other_dir)
    ]
    cases = [_rows(d / "per_case.jsonl") for d in (base_dir, other_dir)]
    ids = [i for i in preds[0] if i in preds[1]]
    labels = json.loads((base_dir / "metrics.json").read_text()).get("labels", {})
    has_green = all(all("green" in c.get(i, {}) for i in ids) for c in cases)
    draws = resample_indices(len(ids), n_resamples, seed)
    stats, counts, greens = [], [], []
    for name, p, c in zip((base_name, other_name), preds, cases, strict=True):
        rows = [p[i] for i in ids]
        k = _case_counts(rows)  # (n, 3)
        g = np.asarray([c[i]["green"] for i in ids], dtype=float) if has_green else None  # (n,)
        texts = [r["prediction"] for r in rows]
        stats.append(ModelStats(
            name=name,
            green=float(g.mean()) if g is not None else None,
            green_ci=percentile_interval(np.array([g[d].mean() for d in draws]), level)
            if g is not None else None,
            f1=_f1(k.sum(0)),
            f1_ci=percentile_interval(np.array([_f1(k[d].sum(0)) for d in draws]), level),
            mean_words=float(np.mean([len(t.split()) for t in texts])) if texts else 0.0,
            distinct_share=report_diversity(texts)[0],
        ))  # fmt: skip
        counts.append(k)
        greens.append(g)
    f1_diffs = np.array([_f1(counts[1][d].sum(0)) - _f1(counts[0][d].sum(0)) for d in draws])
    green_diff = green_diff_ci = None
    if has_green:
        green_diff = stats[1].green - stats[0].green  # type: ignore[operator]
        green_diff_ci = percentile_interval(
            np.array([greens[1][d].mean() - greens[0][d].mean() for d in draws]), level
        )
    return Comparison(
        n=len(ids), judge=labels.get("green", "not computed"), level=level,
        base=stats[0], other=stats[1], green_diff=green_diff, green_diff_ci=green_diff_ci,
        f1_diff=stats[1].f1 - stats[0].f1, f1_diff_ci=percentile_interval(f1_diffs, level),
    )  # fmt: skip
