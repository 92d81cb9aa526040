"""GREEN over a corpus: judge answers -> per-report scores, mean, sd and error profile."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mu2.metrics.green.backends import GreenJudge
from mu2.metrics.green.parse import ERROR_CATEGORIES, GreenAnswer, parse_answer

ANSWERS_FILE = "green_answers.jsonl"


@dataclass
class GreenResult:
    """GREEN of a corpus as the published summary reports it, plus the raw judge answers."""

    judge: str  # label of the judge, printed next to every GREEN number
    ids: list[str]
    answers: list[str]
    parsed: list[GreenAnswer] = field(repr=False)

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([a.score for a in self.parsed], dtype=float)  # (n,)

    @property
    def mean(self) -> float:
        return float(self.scores.mean()) if self.parsed else 0.0

    @property
    def sd(self) -> float:
        """Population standard deviation (numpy's default, as the published summary)."""
        return float(self.scores.std()) if self.parsed else 0.0

    @property
    def zero_error_share(self) -> dict[str, float]:
        """Per category (a)-(f): share of reports with no clinically significant error of it."""
        n = max(len(self.parsed), 1)
        return {c: sum(a.significant[c] == 0 for a in self.parsed) / n for c in ERROR_CATEGORIES}

    def subset(self, indices: Sequence[int]) -> GreenResult:
        return GreenResult(
            judge=self.judge,
            ids=[self.ids[i] for i in indices],
            answers=[self.answers[i] for i in indices],
            parsed=[self.parsed[i] for i in indices],
        )

    def summary(self) -> dict[str, object]:
        return {
            "judge": self.judge,
            "n": len(self.parsed),
            "mean": self.mean,
            "sd": self.sd,
            "zero_error_share": self.zero_error_share,
        }

    def save_answers(self, out_dir: str | Path) -> Path:
        """Write the raw answers with their counts, one JSON line per report."""
        path = Path(out_dir) / ANSWERS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for case_id, answer, parsed in zip(self.ids, self.answers, self.parsed, strict=True):
                row = {"id": case_id, "judge": self.judge, "answer": answer, **parsed.to_dict()}
                f.write(json.dumps(row) + "\n")
        return path


def score_answers(
    answers: Sequence[str], judge: str, ids: Sequence[str] | None = None
) -> GreenResult:
    """Parse judge answers into a corpus result (ids default to 0..n-1)."""
    ids = [str(i) for i in range(len(answers))] if ids is None else [str(i) for i in ids]
    return GreenResult(
        judge=judge, ids=ids, answers=list(answers), parsed=[parse_answer(a) for a in answers]
    )


def green_corpus(
    judge: GreenJudge,
    references: Sequence[str],
    candidates: Sequence[str],
    ids: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
) -> GreenResult:
    """Ask ``judge`` about every (reference, candidate) pair and score the answers."""
    answers = judge.answers(list(zip(references, candidates, strict=True)))
    result = score_answers(answers, judge.label, ids)
    if out_dir is not None:
        result.save_answers(out_dir)
    return result
