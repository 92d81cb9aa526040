"""Per-finding accuracy of generated reports against structured ground truth.

Text-overlap metrics reward a model that writes the same fluent report for every scan.
Reading the findings back out of each generated report (``mu2.findings.extract``) and
comparing them with the case's structured findings shows whether the model looks at the
image: per finding kind accuracy / sensitivity / specificity, a finding-level micro F1,
and how many distinct reports the model wrote at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mu2.findings.catalogue import FINDING_KINDS, Finding


@dataclass
class KindScore:
    """Presence of one finding kind, per report: generated vs ground truth."""

    kind: str
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "positives": self.tp + self.fn,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "accuracy": self.accuracy,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
        }


@dataclass
class PerFindingResult:
    kinds: dict[str, KindScore]
    tp: int  # finding-level matches on (organ, kind, side)
    fp: int
    fn: int
    n_reports: int
    distinct_share: float  # distinct generated reports / reports
    differs_from_mode_share: float  # reports that differ from the most common one
    scan_differs_from_mode_share: float | None = None
    """The same over scans: each scan's reports joined (:func:`scan_reports`); None when no
    scan has more than one report (then it equals the per-report share)."""

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_reports": self.n_reports,
            "finding_precision": self.precision,
            "finding_recall": self.recall,
            "finding_f1_micro": self.f1,
            "distinct_report_share": self.distinct_share,
            "differs_from_most_common_share": self.differs_from_mode_share,
            "scan_differs_from_most_common_share": self.scan_differs_from_mode_share,
            "kinds": {k: s.to_dict() for k, s in self.kinds.items()},
        }


def report_diversity(predictions: Sequence[str]) -> tuple[float, float]:
    """(distinct reports / n, reports differing from the most common one / n)."""
    if not predictions:
        return 0.0, 0.0
    texts = Counter(" ".join(p.split()) for p in predictions)
    n = len(predictions)
    return len(texts) / n, 1.0 - texts.most_common(1)[0][1] / n


def scan_reports(
    predictions: Sequence[str], cases: Sequence[str | None], regions: Sequence[str | None]
) -> list[str] | None:
    """One text per scan: its reports joined in region order (a scan asked the chest and
    the abdomen has one report of each). Why: with region questions, a normal region with
    one finding kind has one right text, so the per-report share of reports differing from
    the most common one is capped by that region's normal rate, not by template writing;
    a model that writes one text per region whatever the scan still gets one text per
    scan. None when a report has no case id or no scan has two reports."""
    if not predictions or any(c is None for c in cases):
        return None
    by_case: dict[str, list[tuple[str, str]]] = {}
    for text, case, region in zip(predictions, cases, regions, strict=True):
        by_case.setdefault(str(case), []).append((str(region or ""), " ".join(text.split())))
    if all(len(v) < 2 for v in by_case.values()):
        return None
    return [" | ".join(t for _, t in sorted(v)) for v in by_case.values()]


def _kinds_for(region: str | None) -> list[str]:
    return [k for k, v in FINDING_KINDS.items() if region is None or v.region == region]


def per_finding(
    predictions: Sequence[str],
    truths: Sequence[Sequence[Finding]],
    regions: Sequence[str | None],
    cases: Sequence[str | None] | None = None,
) -> PerFindingResult:
    """Compare the findings read from each generated report with the case's ground truth.

    A kind counts in a report when the report's region has it (all kinds without region).
    ``cases`` (the rows' case ids) adds the report diversity over scans.
    """
    from mu2.findings.extract import extract_findings

    kinds = {k: KindScore(k) for k in FINDING_KINDS}
    tp = fp = fn = 0
    for text, truth, region in zip(predictions, truths, regions, strict=True):
        found = extract_findings(text, region)
        found_kinds = {f.finding for f in found}
        true_kinds = {f.finding for f in truth}
        for k in _kinds_for(region):
            score = kinds[k]
            if k in true_kinds:
                score.tp += k in found_kinds
                score.fn += k not in found_kinds
            else:
                score.fp += k in found_kinds
                score.tn += k not in found_kinds
        true_keys = Counter(f.key() for f in truth)
        found_keys = Counter(f.key() for f in found)
        matched = sum((true_keys & found_keys).values())
        tp += matched
        fp += sum(found_keys.values()) - matched
        fn += sum(true_keys.values()) - matched
    distinct, differs = report_diversity(predictions)
    scans = scan_reports(predictions, cases, regions) if cases is not None else None
    return PerFindingResult(
        kinds={k: s for k, s in kinds.items() if s.n},
        tp=tp,
        fp=fp,
        fn=fn,
        n_reports=len(predictions),
        distinct_share=distinct,
        differs_from_mode_share=differs,
        scan_differs_from_mode_share=report_diversity(scans)[1] if scans else None,
    )
