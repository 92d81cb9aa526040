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

__all__ = [
    "FINDING_KINDS",
    "ORGANS",
    "REGIONS",
    "SEVERITIES",
    "SIDES",
    "Finding",
    "FindingKind",
    "kind",
]
