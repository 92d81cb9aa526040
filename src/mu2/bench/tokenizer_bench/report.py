"""Tables and verdicts of ``mu2 bench tokenizer`` from the per-item correctness it saved.

Intervals: with two or more seeds, mean over seeds of the per-seed accuracy with a Student-t
95% interval over seeds (it holds both the seed and the item variance); with one seed, a
Wilson 95% interval over items. A claim compares two rows on the same evaluation items and
seeds (paired per-seed differences, t interval). Verdict: *supported* when the interval of the
difference lies above 0, *contradicted* below 0, *not shown* when it contains 0. Accuracy
intervals are clipped to [0, 1]. A claim with a ``reference`` stratum compares how much each
row loses from the reference items to the claim's items (a difference of differences): the
question-conditioning claim asks whether the tokenizer that sees the question loses less to
distractors than the same tokenizer without it, not whether it is better overall; likewise the
location claim compares side questions against organ-only ones. Chance is the
majority label of a stratum (of the kind labels in the kind-only table); a row "learned" when
its overall interval lies above that chance. A row that did not learn is named in the verdict,
and a difference-of-differences claim with such a row is not shown (nothing to lose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mu2.bench.tokenizer_bench.config import NO_QUESTION, SIZE_CLASSES

Mask = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Claim:
    name: str
    better: str
    than: str
    where: str
    mask: Mask
    balanced: bool = False
    """Score 1/2 (accuracy on the masked lesion items + accuracy on the no-lesion items): on
    lesion items alone a constant "lesion" answer would look perfect."""
    reference: Mask | None = None
    """Score = accuracy on ``mask`` minus accuracy on ``reference`` (the row's own loss)."""


def _claims(max_d: int) -> list[Claim]:
    return [
        Claim(
            "token selection finds small lesions", "linvt+dts", "linvt",
            "balanced: 1-2 token lesion asked / none asked",
            lambda m: (m["size"] > 0) & (m["size"] <= 2), True,
        ),
        Claim(
            "token selection finds small lesions (full μ²)", "mu2", "linvt",
            "balanced: 1-2 token lesion asked / none asked",
            lambda m: (m["size"] > 0) & (m["size"] <= 2), True,
        ),
        Claim(
            "multi-scale pooling handles mixed sizes", "linvt+dmtp", "linvt",
            "balanced: lesion asked (kind and size class must be right) / none asked",
            lambda m: m["size"] > 0, True,
        ),
        Claim(
            "question conditioning resists distractors", "mu2", NO_QUESTION,
            f"accuracy with {max_d} distractors minus with 0 (the row's own loss)",
            lambda m: m["distractors"] == max_d, reference=lambda m: m["distractors"] == 0,
        ),
        Claim(
            "question conditioning helps with distractors", "mu2", NO_QUESTION,
            f"{max_d} distractor lesions in other regions", lambda m: m["distractors"] == max_d,
        ),
        Claim(
            "question conditioning helps with distractors (vs perceiver)", "mu2", "perceiver",
            f"{max_d} distractor lesions in other regions", lambda m: m["distractors"] == max_d,
        ),
        Claim(
            "relative positions answer location questions", "linvt+rpe", "linvt",
            "accuracy on organ + side questions minus on organ-only ones",
            lambda m: m["side_question"] == 1, reference=lambda m: m["side_question"] == 0,
        ),
        Claim(
            "relative positions answer location questions (accuracy)", "linvt+rpe", "linvt",
            "question names organ and side", lambda m: m["side_question"] == 1,
        ),
    ]  # fmt: skip


def _interval(per_seed: list[float], hits: int, n: int) -> tuple[float, float, float]:
    """(mean, lo, hi) as the module docstring says."""
    if len(per_seed) >= 2:
        a = np.asarray(per_seed)
        half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
        return float(a.mean()), float(a.mean() - half), float(a.mean() + half)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ci = stats.binomtest(hits, n).proportion_ci(0.95, method="wilson")
    return hits / n, float(ci.low), float(ci.high)


def _clip(lo: float, hi: float, low: float, high: float) -> tuple[float, float]:
    """A t interval over a few seeds can leave the possible range; cut it there (nan stays)."""
    return (lo if lo != lo else max(lo, low)), (hi if hi != hi else min(hi, high))


class Results:
    """Per-item correctness per (row, seed) with the evaluation metadata per seed."""

    def __init__(self, data: dict[str, Any]):
        self.config = data["config"]
        self.wall_s = data.get("wall_s", 0.0)
        self.meta = {
            int(s): {k: np.asarray(v) for k, v in m.items()} for s, m in data["eval_meta"].items()
        }
        self.runs = data["runs"]
        self.rows = list(dict.fromkeys(r["row"] for r in self.runs))
        self.seeds = sorted(self.meta)

    def _correct(self, row: str, seed: int, kind_only: bool = False) -> np.ndarray | None:
        for r in self.runs:
            if r["row"] == row and r["seed"] == seed:
                return np.asarray(r["kind_correct" if kind_only else "correct"], dtype=float)
        return None

    def accuracy(
        self, row: str, mask: Mask, kind_only: bool = False
    ) -> tuple[float, float, float, int]:
        per_seed, hits, n = [], 0, 0
        for s in self.seeds:
            c = self._correct(row, s, kind_only)
            sel = mask(self.meta[s])
            if c is None or not sel.any():
                continue
            per_seed.append(float(c[sel].mean()))
            hits += int(c[sel].sum())
            n += int(sel.sum())
        mean, lo, hi = _interval(per_seed, hits, n)
        return (mean, *_clip(lo, hi, 0.0, 1.0), n)

    def difference(
        self, a: str, b: str, mask: Mask, balanced: bool = False, reference: Mask | None = None
    ) -> tuple[float, float, float] | None:
        """Paired per-seed difference a - b on ``mask`` (see the module docstring)."""
        diffs, hits, n = [], 0, 0
        for s in self.seeds:
            ca, cb, sel = self._correct(a, s), self._correct(b, s), mask(self.meta[s])
            none = self.meta[s]["size"] == 0
            if ca is None or cb is None or not sel.any() or (balanced and not none.any()):
                continue
            d = float(ca[sel].mean() - cb[sel].mean())
            if balanced:
                d = 0.5 * d + 0.5 * float(ca[none].mean() - cb[none].mean())
            if reference is not None:
                ref = reference(self.meta[s])
                if not ref.any():
                    continue
                d -= float(ca[ref].mean() - cb[ref].mean())
            diffs.append(d)
        if not diffs:
            return None
        if len(diffs) == 1:
            return diffs[0], float("nan"), float("nan")
        mean, lo, hi = _interval(diffs, hits, n)
        bound = 2.0 if reference is not None else 1.0
        return (mean, *_clip(lo, hi, -bound, bound))

    def learned(self, row: str) -> bool:
        """The row's overall accuracy interval lies above the majority label (it learned)."""
        lo = self.accuracy(row, _everything)[1]
        return bool(lo > self.majority(_everything))

    def majority(self, mask: Mask, kind_only: bool = False) -> float:
        """Accuracy of always answering the most common label of the stratum (chance); with
        ``kind_only`` the most common kind (none or kind, size class dropped)."""
        labels = np.concatenate([self.meta[s]["label"][mask(self.meta[s])] for s in self.seeds])
        if kind_only:  # 0 = none, else 1 + kind; the same arithmetic as run.kind_of
            labels = np.where(labels > 0, 1 + (labels - 1) // len(SIZE_CLASSES), 0)
        return float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")


def _everything(m: dict[str, np.ndarray]) -> np.ndarray:
    return np.ones(len(m["label"]), dtype=bool)


def _eq(key: str, value: int) -> Mask:
    return lambda m: m[key] == value


def _cell(mean: float, lo: float, hi: float) -> str:
    if mean != mean:
        return "-"
    return f"{mean:.3f}" if lo != lo else f"{mean:.3f} [{lo:.2f}, {hi:.2f}]"


def _table(
    res: Results, title: str, columns: list[tuple[str, Mask]], kind_only: bool = False
) -> list[str]:
    lines = [f"### {title}", "", "| row | " + " | ".join(c for c, _ in columns) + " |"]
    lines.append("|---|" + "---|" * len(columns))
    for row in res.rows:
        cells = [_cell(*res.accuracy(row, m, kind_only)[:3]) for _, m in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append(
        "| *majority label* | "
        + " | ".join(f"{res.majority(m, kind_only):.3f}" for _, m in columns)
        + " |"
    )
    n = [res.accuracy(res.rows[0], m)[3] for _, m in columns]
    lines.append("| *items (all seeds)* | " + " | ".join(str(x) for x in n) + " |")
    return [*lines, ""]


def verdicts(res: Results) -> list[dict[str, Any]]:
    out = []
    for c in _claims(int(res.config["max_distractors"])):
        if c.better not in res.rows or c.than not in res.rows:
            continue
        d = res.difference(c.better, c.than, c.mask, c.balanced, c.reference)
        if d is None:
            continue
        mean, lo, hi = d
        flat = [r for r in (c.better, c.than) if not res.learned(r)]
        not_learned = f"{' and '.join(flat)} not above chance" if flat else ""
        if lo != lo:
            verdict = "not shown (one seed: no interval)"
        elif flat and c.reference is not None:  # a row at chance has no accuracy to lose
            verdict = f"not shown ({not_learned}: its loss says nothing)"
        elif lo > 0 or hi < 0:
            verdict = "supported" if lo > 0 else "contradicted"
            verdict += f" ({not_learned})" if flat else ""
        else:
            verdict = f"not shown (interval contains 0{'; ' + not_learned if flat else ''})"
        out.append({"claim": c.name, "contrast": f"{c.better} - {c.than}", "items": c.where,
                    "difference": mean, "lo": lo, "hi": hi, "verdict": verdict})  # fmt: skip
    return out


def markdown(data: dict[str, Any]) -> str:
    """The whole report: budget, overall, size, distractors, question type, claims."""
    res = Results(data)
    cfg = res.config
    lines = [
        f"Rows x seeds: {len(res.rows)} x {len(res.seeds)}; {cfg['steps']} steps of {cfg['batch_size']} scenes; "
        f"{cfg['eval_items']} evaluation scenes per seed; wall {res.wall_s / 60:.1f} min.",
        "Accuracy = the exact answer (none, or kind and size class). Cells: mean [95% interval].",
        "",
        "### Budget",
        "",
        "| row | trainable parameters | vs largest | train + eval s / seed | loss first -> last "
        "| learned (all items above chance) |",
        "|---|---|---|---|---|---|",
    ]
    top = max(r["params"] for r in res.runs)
    for row in res.rows:
        rs = [r for r in res.runs if r["row"] == row]
        lines.append(
            f"| {row} | {rs[0]['params']:,} | {rs[0]['params'] / top - 1:+.1%} | "
            f"{np.mean([r['seconds'] for r in rs]):.0f} | "
            f"{np.mean([r['first_loss'] for r in rs]):.2f} -> {np.mean([r['last_loss'] for r in rs]):.2f} | "
            f"{'yes' if res.learned(row) else 'no'} |"
        )
    lines.append("")
    lines += _table(res, "Overall", [("all", _everything), ("lesion asked", lambda m: m["size"] > 0),
                                     ("no lesion asked", lambda m: m["size"] == 0)])  # fmt: skip
    sizes = [int(s) for s in cfg["sizes"]]
    by_size = [(f"{s} tok", _eq("size", s)) for s in sizes]
    lines += _table(
        res, "Against lesion size (asked region holds a lesion of this many tokens)", by_size
    )
    lines += _table(
        res, "Against lesion size, kind only (size class not scored)", by_size, kind_only=True
    )
    by_d = [(f"{d} distr.", _eq("distractors", d)) for d in range(int(cfg["max_distractors"]) + 1)]
    lines += _table(res, "Against distractor lesions in other regions", by_d)
    lines += _table(res, "Against question type", [("organ + side", lambda m: m["side_question"] == 1),
                                                   ("organ only", lambda m: m["side_question"] == 0)])  # fmt: skip
    lines += [
        "### Claims",
        "",
        "| claim | contrast | items | difference [95% interval] | verdict |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts(res):
        lines.append(
            f"| {v['claim']} | {v['contrast']} | {v['items']} | {_cell(v['difference'], v['lo'], v['hi'])} | {v['verdict']} |"
        )
    return "\n".join(lines) + "\n"
