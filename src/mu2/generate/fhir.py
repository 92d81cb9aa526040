"""FHIR R4 ``DiagnosticReport`` for a generated report, with findings as ``Observation``s.

Hospitals exchange results as FHIR; writing the resource as plain JSON keeps the library
free of a FHIR dependency at run time (``fhir.resources`` validates it in the tests).
The report is machine-generated and unverified, so its status is ``preliminary``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from mu2.findings.catalogue import FINDING_KINDS, Finding
from mu2.generate.result import ReportResult

LOINC = "http://loinc.org"
# LOINC 18748-4: "Diagnostic imaging study" (the report's code).
REPORT_CODE = {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
# HL7 v2 table 0074 "RAD": radiology (the report's category).
REPORT_CATEGORY = {
    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
    "code": "RAD",
    "display": "Radiology",
}
OBSERVATION_CATEGORY = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "imaging",
    "display": "Imaging",
}
# mu2's own finding kinds (catalogue names); no public code system covers all of them.
FINDING_SYSTEM = "urn:mu2:finding-kind"
# SNOMED CT laterality qualifiers.
SNOMED = "http://snomed.info/sct"
SIDE_CODES = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
    "bilateral": ("51440002", "Right and left"),
}
UCUM = "http://unitsofmeasure.org"


def _plural(text: str) -> str:
    if text.endswith("is"):  # metastasis -> metastases
        return text[:-2] + "es"
    return text if text.endswith("s") else text + "s"


def describe_finding(f: Finding) -> str:
    """Short human phrase, e.g. 'left renal cyst, 12 mm' or 'moderate ascites'."""
    label = FINDING_KINDS[f.finding].label
    words = [w for w in (f.severity, f.side) if w]
    text = " ".join([*words, label])
    if f.count > 1:
        text = f"multiple {_plural(text)}"
    if f.size_mm is not None:
        text += f", {f.size_mm:g} mm"
    return text


def _observation(f: Finding, obs_id: str, subject: dict[str, str] | None) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if f.side is not None:
        code, display = SIDE_CODES[f.side]
        components.append(
            {
                "code": {"text": "laterality"},
                "valueCodeableConcept": {
                    "coding": [{"system": SNOMED, "code": code, "display": display}],
                    "text": f.side,
                },
            }
        )
    if f.size_mm is not None:
        components.append(
            {
                "code": {"text": "size"},
                "valueQuantity": {
                    "value": float(f.size_mm),
                    "unit": "mm",
                    "system": UCUM,
                    "code": "mm",
                },
            }
        )
    if f.severity is not None:
        components.append(
            {"code": {"text": "severity"}, "valueCodeableConcept": {"text": f.severity}}
        )
    if f.count > 1:
        components.append({"code": {"text": "count"}, "valueInteger": int(f.count)})
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "preliminary",
        "category": [{"coding": [OBSERVATION_CATEGORY]}],
        "code": {
            "coding": [
                {
                    "system": FINDING_SYSTEM,
                    "code": f.finding,
                    "display": FINDING_KINDS[f.finding].label,
                }
            ],
            "text": FINDING_KINDS[f.finding].label,
        },
        "bodySite": {"text": f.organ},
        "valueString": describe_finding(f),
    }
    if subject is not None:
        obs["subject"] = subject
    if components:
        obs["component"] = components
    return obs


def conclusion_text(findings: list[Finding]) -> str:
    """One-line conclusion from the structured findings extracted from the report."""
    if not findings:
        return "No abnormal findings reported."
    return "Findings: " + "; ".join(describe_finding(f) for f in findings) + "."


def to_fhir(
    result: ReportResult,
    patient_ref: str | None = None,
    issued: datetime | None = None,
    report_id: str = "mu2-report",
) -> dict[str, Any]:
    """The report as a FHIR R4 ``DiagnosticReport`` (JSON-ready dict).

    ``presentedForm`` carries the full report text (base64 text/plain); the structured
    findings become contained ``Observation``s referenced from ``result``.
    ``patient_ref`` is a FHIR reference such as ``"Patient/123"``.
    """
    issued = issued or datetime.now(timezone.utc)
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=timezone.utc)
    subject = {"reference": patient_ref} if patient_ref else None
    contained = [
        _observation(f, f"finding-{i + 1}", subject) for i, f in enumerate(result.findings)
    ]
    text = result.report
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "status": "preliminary",
        "category": [{"coding": [REPORT_CATEGORY]}],
        "code": {"coding": [REPORT_CODE], "text": "CT report"},
        "issued": issued.isoformat(timespec="seconds"),
        "conclusion": conclusion_text(result.findings),
        "presentedForm": [
            {
                "contentType": "text/plain",
                "language": "en",
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                "title": f"CT report drafted by mu2 model {result.model_id} (not verified)",
            }
        ],
    }
    if subject is not None:
        report["subject"] = subject
    if contained:
        report["contained"] = contained
        report["result"] = [{"reference": f"#{o['id']}"} for o in contained]
    return report
