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
# mu2's own finding kinds (catalogue names): the code when SNOMED CT has none.
FINDING_SYSTEM = "urn:mu2:finding-kind"
# SNOMED CT concepts (clinical findings) for catalogue kinds; the others keep mu2's code.
SNOMED_FINDINGS: dict[str, tuple[str, str]] = {
    "ascites": ("389026000", "Ascites"),
    "pleural_effusion": ("60046008", "Pleural effusion"),
    "splenomegaly": ("16294009", "Splenomegaly"),
    "hepatomegaly": ("80515008", "Hepatomegaly"),
    "fatty_liver": ("197321007", "Steatosis of liver"),
    "gallstone": ("266474003", "Calculus in gallbladder"),
    "renal_stone": ("95570007", "Kidney stone"),
    "hydronephrosis": ("43064006", "Hydronephrosis"),
    "aortic_aneurysm": ("233985008", "Abdominal aortic aneurysm"),
}
FHIR_VERSIONS: tuple[str, ...] = ("R4B", "R5")
DEVICE_ID = "mu2-model"
# Our extension on the report pointing at the model that drafted it (R4B and R5 have no
# DiagnosticReport element for a software device; Observation.device carries it too).
GENERATED_BY_URL = "urn:mu2:fhir:StructureDefinition/generated-by-device"
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


def _finding_code(f: Finding) -> dict[str, Any]:
    label = FINDING_KINDS[f.finding].label
    coding = []
    if f.finding in SNOMED_FINDINGS:
        code, display = SNOMED_FINDINGS[f.finding]
        coding.append({"system": SNOMED, "code": code, "display": display})
    coding.append({"system": FINDING_SYSTEM, "code": f.finding, "display": label})
    return {"coding": coding, "text": label}


def _device(result: ReportResult) -> dict[str, Any]:
    """The model as a FHIR ``Device`` (fields shared by R4B and R5): name, version, card."""
    card = result.card or {}
    notes = [{"text": result.model_note}]
    notes += [{"text": w} for w in result.warnings if w.startswith(("this model", "model card"))]
    return {
        "resourceType": "Device",
        "id": DEVICE_ID,
        "identifier": [{"system": "urn:mu2:model", "value": card.get("name") or result.model_id}],
        "manufacturer": "mu2 (open-source research software)",
        "modelNumber": result.model_id,
        "version": [{"value": str(card.get("mu2_version") or "unknown")}],
        "note": notes,
    }


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
        "code": _finding_code(f),
        "bodySite": {"text": f.organ},
        "valueString": describe_finding(f),
        "device": {"reference": f"#{DEVICE_ID}"},
    }
    if subject is not None:
        obs["subject"] = subject
    if components:
        obs["component"] = components
    return obs


def conclusion_text(findings: list[Finding], warnings: list[str] | None = None) -> str:
    """Conclusion from the structured findings, then the warnings every output carries
    (model trained on synthetic data, not a CT, region forced, ...)."""
    text = (
        "Findings: " + "; ".join(describe_finding(f) for f in findings) + "."
        if findings
        else "No abnormal findings reported."
    )
    return " ".join([text, *(f"Warning: {w}." for w in warnings or [])])


def to_fhir(
    result: ReportResult,
    patient_ref: str | None = None,
    issued: datetime | None = None,
    report_id: str = "mu2-report",
    fhir_version: str = "R4B",
) -> dict[str, Any]:
    """The report as a FHIR R4 ``DiagnosticReport`` (JSON-ready dict).

    ``presentedForm`` carries the full report text (base64 text/plain); the structured
    findings become contained ``Observation``s referenced from ``result``.
    ``patient_ref`` is a FHIR reference such as ``"Patient/123"``. The model is a
    contained ``Device`` (referenced from the report and every observation) whose note
    says what it was trained on. ``fhir_version`` (R4B or R5) only changes the name of
    the imaging-study link (``imagingStudy`` / ``study``), written when the DICOM study
    UID is known; ``effectiveDateTime`` is the study date when known.
    """
    if fhir_version not in FHIR_VERSIONS:
        raise ValueError(f"fhir_version must be one of {FHIR_VERSIONS}, got {fhir_version!r}")
    issued = issued or datetime.now(timezone.utc)
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=timezone.utc)
    subject = {"reference": patient_ref} if patient_ref else None
    observations = [
        _observation(f, f"finding-{i + 1}", subject) for i, f in enumerate(result.findings)
    ]
    contained = [_device(result), *observations]
    text = result.report
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "status": "preliminary",
        "category": [{"coding": [REPORT_CATEGORY]}],
        "code": {"coding": [REPORT_CODE], "text": "CT report"},
        "issued": issued.isoformat(timespec="seconds"),
        "conclusion": conclusion_text(result.findings, result.warnings),
        "presentedForm": [
            {
                "contentType": "text/plain",
                "language": "en",
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                "title": f"CT report drafted by mu2 model {result.model_id} (not verified)",
            }
        ],
    }
    report["extension"] = [
        {"url": GENERATED_BY_URL, "valueReference": {"reference": f"#{DEVICE_ID}"}}
    ]
    study = (result.input or {}).get("study") or {}
    if study.get("datetime"):
        when = str(study["datetime"])
        # FHIR wants a time zone with a time; DICOM times usually have none: keep the date
        has_zone = when.endswith("Z") or "+" in when[10:] or "-" in when[10:]
        report["effectiveDateTime"] = when if has_zone else when[:10]
    if study.get("uid"):
        link = {
            "type": "ImagingStudy",
            "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study['uid']}"},
        }
        report["imagingStudy" if fhir_version == "R4B" else "study"] = [link]
    if subject is not None:
        report["subject"] = subject
    report["contained"] = contained
    if observations:
        report["result"] = [{"reference": f"#{o['id']}"} for o in observations]
    return report
