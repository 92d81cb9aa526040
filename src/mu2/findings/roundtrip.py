"""Does the extractor read back what the writer wrote? Precision and recall over random cases.

The offline GREEN judge is only as good as its finding extraction; on the synthetic
benchmark the prose comes from ``mu2.findings.writer``, so agreement with the structured
findings it was written from is measurable exactly. Used by the tests and by BENCHMARKS.md
(finding extraction).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from mu2.findings.catalogue import FINDING_KINDS, REGIONS, SEVERITIES, SIDES, Finding
from mu2.findings.extract import extract_findings
from mu2.findings.writer import COMPARISON_PHRASES, write_report

# Random case mix (test defaults, not from any data set).
P_KIND = 0.35  # chance that each kind of the region is present
P_BOTH_SIDES = 0.2  # a lateral kind present on the left and the right, as two findings
P_SIZE = 0.85  # a sized finding states its size
P_SEVERITY = 0.85  # a graded finding states its severity
P_COMPARISON = 0.1  # a finding carries a comparison with a prior study
SIZE_RANGE_MM = (3.0, 60.0)
COUNTS = (1, 1, 2, 3, 4, 6)
# cm with one decimal is exact to 0.5 mm.
SIZE_TOLERANCE_MM = 0.51


def random_findings(region: str, rng: random.Random) -> list[Finding]:
    """A random finding set for one region: every kind, side, size, severity and count."""
    out: list[Finding] = []
    for k in FINDING_KINDS.values():
        if k.region != region or rng.random() > P_KIND:
            continue
        sides: list[str | None] = [rng.choice(SIDES)] if k.lateral else [None]
        if k.lateral and sides[0] != "bilateral" and rng.random() < P_BOTH_SIDES:
            sides = ["left", "right"]
        for side in sides:
            cmp = rng.choice(list(COMPARISON_PHRASES)) if rng.random() < P_COMPARISON else None
            out.append(
                Finding(
                    k.organ,
                    k.name,
                    side,
                    round(rng.uniform(*SIZE_RANGE_MM), 1)
                    if k.sized and rng.random() < P_SIZE
                    else None,
                    rng.choice(SEVERITIES) if k.graded and rng.random() < P_SEVERITY else None,
                    rng.choice(COUNTS) if k.countable else 1,
                    extra={"comparison": cmp} if cmp else {},
                )
            )
    return out


def same_finding(a: Finding, b: Finding, size_tolerance_mm: float = SIZE_TOLERANCE_MM) -> bool:
    """Equal in organ, kind, side, severity, single-vs-multiple, comparison and size."""
    if (a.organ, a.finding, a.side, a.severity) != (b.organ, b.finding, b.side, b.severity):
        return False
    if (a.count > 1) != (b.count > 1):  # "multiple" does not say how many
        return False
    if a.extra.get("comparison") != b.extra.get("comparison"):
        return False
    if a.size_mm is None or b.size_mm is None:
        return a.size_mm is None and b.size_mm is None
    return abs(a.size_mm - b.size_mm) <= size_tolerance_mm


def match_counts(truth: list[Finding], found: list[Finding]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), one-to-one greedy matching."""
    left = list(found)
    tp = 0
    for t in truth:
        hit = next((f for f in left if same_finding(t, f)), None)
        if hit is not None:
            left.remove(hit)
            tp += 1
    return tp, len(left), len(truth) - tp


@dataclass(frozen=True)
class RoundTrip:
    reports: int
    precision: float
    recall: float
    exact_reports: float  # share of reports read back without any difference
    cpu_seconds_per_1000: float  # extraction only, CPU time of this process


def roundtrip(n_reports: int = 500, seed: int = 0) -> RoundTrip:
    """Write ``n_reports`` random reports, read them back, and score the agreement."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_reports):
        region = rng.choice(REGIONS)
        truth = random_findings(region, rng)
        cases.append((truth, write_report(truth, region, rng), region))
    start = time.process_time()
    found = [extract_findings(text, region) for _, text, region in cases]
    seconds = time.process_time() - start
    tp = fp = fn = exact = 0
    for (truth, _, _), got in zip(cases, found, strict=True):
        a, b, c = match_counts(truth, got)
        tp, fp, fn, exact = tp + a, fp + b, fn + c, exact + (b == c == 0)
    return RoundTrip(
        reports=n_reports,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        exact_reports=exact / n_reports if n_reports else 1.0,
        cpu_seconds_per_1000=seconds / max(n_reports, 1) * 1000,
    )
