"""VQA accuracy: exact match of the closed answer, per question type, with bootstrap CIs.

Short answers of the synthetic benchmark's VQA rows (:mod:`mu2.findings.questions`) come
from a small closed set per question type, so they are scored by class, not by n-grams:
the prediction and the reference are each normalised (case, punctuation, whitespace, a
leading "yes," / "no," with details, the report's synonyms of a grade) to a class of the
row's type, and the row is right when the classes are equal. A prediction that maps to no
class is wrong. Rows without a ``qtype`` (data sets written before question types) are
yes/no presence rows when their reference reads as one; other untyped rows (free-form
QA, e.g. from ``mu2 data augment``) are counted as unscored.

Hand-written: the answer sets are this project's own, no library knows them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mu2.errors import Mu2Error
from mu2.findings.lexicon import SEVERITY_TERMS, SIDE_TERMS
from mu2.findings.questions import LOCATION, PRESENCE, QTYPES, SEVERITY, SIDE
from mu2.metrics.bootstrap import bootstrap_intervals, mean_aggregator, resample_indices

VQA_TASK = "vqa"
LABEL = (
    "VQA accuracy: exact match of the closed answer (normalised for case, punctuation, "
    "a leading yes/no with details, and grade synonyms; mu2.metrics.vqa)"
)

# Answer -> class for the types whose answer is a word or two: the report lexicon's side and
# grade words (what the extractor reads in reports; hyphens as spaces, as normalise makes them),
# the whole answer, "on the" / "side" around a side; "both" is the class of "bilateral".
_NONE = r"none|no|neither(?: side)?"
_CLASSES: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    SIDE: [
        ("both" if side == "bilateral" else side,
         re.compile(rf"^(?:on )?(?:the )?(?:{term.replace('-', ' ')})(?: sides?)?$"))
        for side, term in SIDE_TERMS.items()
    ] + [("none", re.compile(rf"^(?:{_NONE})$"))],
    SEVERITY: [(grade, re.compile(rf"^(?:{term.replace('-', ' ')})$"))
               for grade, term in SEVERITY_TERMS.items()]
    + [("none", re.compile(rf"^(?:{_NONE})$"))],
}  # fmt: skip
# "There is no pleural effusion." answers side and severity questions about an absent kind.
_THERE_IS_NO = re.compile(r"^(?:there is |there are )?no \w")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def answer_class(text: str, qtype: str) -> str | None:
    """The closed class of an answer to a ``qtype`` question; None when it has none."""
    words = normalise(text)
    if qtype in (PRESENCE, LOCATION):
        first = words.split(" ", 1)[0]
        return first if first in ("yes", "no") else None
    if qtype not in _CLASSES:
        raise Mu2Error(f"unknown question type '{qtype}'", fix=f"use one of {', '.join(QTYPES)}")
    for cls, pattern in _CLASSES[qtype]:
        if pattern.match(words):
            return cls
    return "none" if _THERE_IS_NO.match(words) else None


@dataclass
class VqaScore:
    """Accuracy of one question type (or of all), with its interval and the majority share."""

    n: int
    accuracy: float
    ci: tuple[float, float] | None
    majority: float
    """Share of the most common reference class: what always giving one answer scores
    (overall: the most common answer of each type)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "ci": list(self.ci) if self.ci else None,
            "majority": self.majority,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VqaScore:
        """The inverse of :meth:`to_dict` (a ``metrics.json`` entry)."""
        ci = d.get("ci")
        return cls(int(d["n"]), float(d["accuracy"]), tuple(ci) if ci else None,
                   float(d["majority"]))  # fmt: skip

    def cells(self) -> str:
        """``n | accuracy | CI | majority`` as Markdown table cells (every VQA table's)."""
        ci = f"{self.ci[0]:.3f}-{self.ci[1]:.3f}" if self.ci else "-"
        return f"{self.n} | {self.accuracy:.3f} | {ci} | {self.majority:.3f}"


@dataclass
class VqaResult:
    """VQA accuracy overall and per question type; ``per_case`` has one row per VQA row."""

    overall: VqaScore
    types: dict[str, VqaScore]
    unscored: int
    per_case: list[dict[str, Any]] = field(default_factory=list)
    label: str = LABEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "overall": self.overall.to_dict(),
            "types": {t: s.to_dict() for t, s in self.types.items()},
            "unscored": self.unscored,
        }

    def table_markdown(self, level: float = 0.95) -> str:
        lines = [
            f"{self.label}.",
            "",
            f"| question type | n | accuracy | {level:.0%} bootstrap CI | majority-class share |",
            "|---|---|---|---|---|",
        ]
        rows = [*self.types.items(), ("all", self.overall)]
        for name, s in rows:
            lines.append(f"| {name} | {s.cells()} |")
        if self.unscored:
            lines += ["", f"{self.unscored} VQA row(s) without a closed answer were not scored."]
        return "\n".join(lines)


def split_rows(
    rows: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(report rows, VQA rows) of a prediction set, each in its original order."""
    vqa = [r for r in rows if r.get("task") == VQA_TASK]
    return [r for r in rows if r.get("task") != VQA_TASK], vqa


def _row_type(row: dict[str, Any]) -> str | None:
    qtype = row.get("qtype")
    if qtype is None:  # untyped: a yes/no presence row when its reference is one
        return PRESENCE if answer_class(row["reference"], PRESENCE) else None
    if qtype not in QTYPES:
        raise Mu2Error(
            f"row id={row['id']!r}: unknown qtype {qtype!r}",
            fix=f"use one of {', '.join(QTYPES)} (or leave qtype out)",
        )
    return str(qtype)


def _score(
    correct: np.ndarray,
    refs: list[str],
    idx: np.ndarray,
    draws: list[np.ndarray] | None,
    level: float,
) -> VqaScore:
    acc = mean_aggregator(correct)
    ci = bootstrap_intervals({"a": acc}, draws, level)["a"] if draws else None
    majority = Counter(refs[i] for i in idx).most_common(1)[0][1] / len(idx)
    return VqaScore(int(len(idx)), float(correct[idx].mean()), ci, float(majority))


def vqa_accuracy(
    rows: Sequence[dict[str, Any]], n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> VqaResult:
    """Accuracy of VQA prediction rows (``id``, ``prediction``, ``reference``, ``qtype``).

    Intervals: percentile bootstrap over rows (``n_resamples`` = 0: none); each type is
    resampled within its own rows, with its own seed (``seed + 1 + i``).
    """
    scored: list[tuple[dict[str, Any], str, str, str | None]] = []
    unscored = 0
    for row in rows:
        qtype = _row_type(row)
        if qtype is None:
            unscored += 1
            continue
        ref = answer_class(row["reference"], qtype)
        if ref is None:
            raise Mu2Error(
                f"row id={row['id']!r}: reference {row['reference']!r} is no closed {qtype} answer",
                fix="fix the row's qtype or its reference (see mu2.findings.questions)",
            )
        scored.append((row, qtype, ref, answer_class(row["prediction"], qtype)))
    if not scored:
        raise Mu2Error(
            f"none of the {len(rows)} VQA rows has a closed answer to score",
            fix="give VQA rows a qtype (side, location, severity, presence) or yes/no references",
        )
    correct = np.asarray([float(pred == ref) for _, _, ref, pred in scored])  # (n,)
    refs = [ref for _, _, ref, _ in scored]
    n = len(scored)
    draws = resample_indices(n, n_resamples, seed) if n_resamples else None
    types: dict[str, VqaScore] = {}
    present = [t for t in QTYPES if any(q == t for _, q, _, _ in scored)]
    for i, t in enumerate(present):
        idx = np.asarray([j for j, (_, q, _, _) in enumerate(scored) if q == t])
        sub = resample_indices(n, n_resamples, seed + 1 + i, within=idx) if n_resamples else None
        types[t] = _score(correct, refs, idx, sub, level)
    overall = _score(correct, refs, np.arange(n), draws, level)
    # Overall baseline: the most common answer of each type (classes of types differ).
    overall.majority = sum(s.majority * s.n for s in types.values()) / n
    per_case = [
        {"id": str(row["id"]), "qtype": q, "reference_class": ref, "prediction_class": pred,
         "correct": pred == ref}
        for row, q, ref, pred in scored
    ]  # fmt: skip
    return VqaResult(overall, types, unscored, per_case)
