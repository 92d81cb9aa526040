"""Agreement of a GREEN judge with hand-labelled category counts, per category.

A labelled pair is ``{"reference", "candidate", "matched", "significant": {"a": n, ...}}``
(JSONL, one pair a line). For each category (matched findings and the six clinically
significant error categories) the agreement is the share of pairs on which the judge's
count equals the label; a pair agrees as a whole when every count does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error
from mu2.metrics.green.parse import ERROR_CATEGORIES, GreenAnswer, parse_answer

CATEGORIES: tuple[str, ...] = ("matched", *ERROR_CATEGORIES)


def read_labelled_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Labelled pairs of a JSONL file, each checked for its fields."""
    pairs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [k for k in ("reference", "candidate", "matched", "significant") if k not in row]
        if missing:
            raise Mu2Error(f"{path} line {n}: missing {', '.join(missing)}")
        pairs.append(row)
    return pairs


def counts(answer: GreenAnswer) -> dict[str, int]:
    """Category -> count of one parsed answer."""
    return {"matched": answer.matched, **answer.significant}


def label_counts(row: dict[str, Any]) -> dict[str, int]:
    return {"matched": int(row["matched"]), **{c: int(row["significant"].get(c, 0))
                                               for c in ERROR_CATEGORIES}}  # fmt: skip


@dataclass
class Agreement:
    """Per category: pairs on which the judge's count equals the label, of ``total``."""

    total: int = 0
    agree: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    labelled: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    """Pairs whose label for the category is non-zero (how much each category is tested)."""
    exact: int = 0
    disagreements: list[tuple[str, dict[str, int], dict[str, int]]] = field(default_factory=list)
    """(pair id, judge counts, label counts) of every pair that differs somewhere."""

    def table(self, judge_label: str) -> str:
        rows = [f"agreement with hand labels, judge: {judge_label}",
                "category  agree/pairs  (pairs labelled non-zero)"]  # fmt: skip
        for c in CATEGORIES:
            rows.append(f"{c:<9} {self.agree[c]:>3}/{self.total:<3}       ({self.labelled[c]})")
        rows.append(f"all       {self.exact:>3}/{self.total}")
        return "\n".join(rows)


def agreement(pairs: list[dict[str, Any]], judge: Any) -> Agreement:
    """Judge every pair with ``judge.answers`` (a GreenJudge) and compare with its labels."""
    answers = judge.answers([(p["reference"], p["candidate"]) for p in pairs])
    out = Agreement(total=len(pairs))
    for i, (p, text) in enumerate(zip(pairs, answers, strict=True)):
        got, want = counts(parse_answer(text)), label_counts(p)
        for c in CATEGORIES:
            out.agree[c] += got[c] == want[c]
            out.labelled[c] += want[c] > 0
        if got == want:
            out.exact += 1
        else:
            out.disagreements.append((str(p.get("id", i)), got, want))
    return out
