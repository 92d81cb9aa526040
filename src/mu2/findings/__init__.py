"""Structured radiology findings: the catalogue, the report writer and the extractor.

The same catalogue drives the synthetic benchmark's ground truth, the prose it writes,
the offline GREEN judge's finding extraction and the structured output of ``mu2 report``.
"""

from mu2.findings.catalogue import (
    FINDING_KINDS,
    ORGANS,
    REGIONS,
    SEVERITIES,
    SIDES,
    Finding,
    FindingKind,
    kind,
)
from mu2.findings.extract import (
    Comparison,
    Extraction,
    extract_comparisons,
    extract_findings,
    extract_report,
)
from mu2.findings.writer import organ_questions, write_question, write_report

__all__ = [
    "Comparison",
    "Extraction",
    "FINDING_KINDS",
    "ORGANS",
    "REGIONS",
    "SEVERITIES",
    "SIDES",
    "Finding",
    "FindingKind",
    "extract_comparisons",
    "extract_findings",
    "extract_report",
    "kind",
    "organ_questions",
    "write_question",
    "write_report",
]
