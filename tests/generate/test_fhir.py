"""The FHIR export validates as an R4 DiagnosticReport and carries the report faithfully."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from mu2.findings.catalogue import Finding
from mu2.generate.fhir import describe_finding, to_fhir
from mu2.generate.result import ReportResult, Section


def _result(findings: list[Finding]) -> ReportResult:
    return ReportResult(
        sections=[
            Section(
                "Describe the findings of the chest in this CT.", "The lungs are clear.", "chest"
            ),
            Section(
                "Describe the findings of the abdomen in this CT.",
                "There is a simple cortical cyst in the left kidney, measuring 12 mm. "
                "Moderate ascites. Ünïcode survives.",
                "abdomen",
            ),
        ],
        findings=findings,
        timings={"load": 0.1, "prepare": 0.2, "encode": 0.3, "generate": 0.4},
        model_id="tiny-test",
        input={"shape": [10, 10, 10]},
    )


FINDINGS = [
    Finding("kidney", "renal_cyst", side="left", size_mm=12.0),
    Finding("peritoneum", "ascites", severity="moderate"),
    Finding("liver", "liver_metastasis", size_mm=23.0, count=3),
]


def test_diagnostic_report_validates_with_contained_observations() -> None:
    res = _result(FINDINGS)
    doc = to_fhir(res, patient_ref="Patient/p1", issued=datetime(2026, 11, 27, tzinfo=timezone.utc))
    # Round trip through JSON as a file would, then validate with the FHIR models.
    doc = json.loads(json.dumps(doc))
    report = DiagnosticReport.model_validate(doc)
    assert report.status == "preliminary"
    assert report.code.coding[0].system == "http://loinc.org"
    assert report.code.coding[0].code == "18748-4"
    assert report.subject.reference == "Patient/p1"
    # presentedForm holds exactly the report text.
    form = report.presentedForm[0]
    assert form.contentType == "text/plain"
    assert base64.b64decode(doc["presentedForm"][0]["data"]).decode("utf-8") == res.report
    assert form.data == res.report.encode("utf-8")  # fhir.resources decodes base64 itself
    # The model as a contained Device, then one Observation per finding, each referenced
    # from `result` and pointing at the Device.
    assert doc["contained"][0]["resourceType"] == "Device"
    assert len(report.contained) == len(FINDINGS) + 1
    refs = {r.reference for r in report.result}
    for resource, f in zip(doc["contained"][1:], FINDINGS, strict=True):
        obs = Observation.model_validate(resource)
        assert f"#{obs.id}" in refs
        assert f.finding in [c.code for c in obs.code.coding]
        assert obs.device.reference == "#mu2-model"
        assert obs.bodySite.text == f.organ
    # The conclusion names every finding.
    for f in FINDINGS:
        assert describe_finding(f) in report.conclusion


def test_components_carry_side_size_severity_count() -> None:
    doc = to_fhir(_result(FINDINGS))
    by_kind = {o["code"]["coding"][-1]["code"]: o for o in doc["contained"][1:]}
    comps = {c["code"]["text"]: c for c in by_kind["renal_cyst"]["component"]}
    assert comps["laterality"]["valueCodeableConcept"]["text"] == "left"
    assert comps["size"]["valueQuantity"] == {
        "value": 12.0,
        "unit": "mm",
        "system": "http://unitsofmeasure.org",
        "code": "mm",
    }
    comps = {c["code"]["text"]: c for c in by_kind["ascites"]["component"]}
    assert comps["severity"]["valueCodeableConcept"]["text"] == "moderate"
    comps = {c["code"]["text"]: c for c in by_kind["liver_metastasis"]["component"]}
    assert comps["count"]["valueInteger"] == 3
    assert describe_finding(FINDINGS[2]) == "multiple liver metastases, 23 mm"


def test_report_without_findings_still_validates() -> None:
    doc = to_fhir(_result([]))
    report = DiagnosticReport.model_validate(doc)
    assert [c.__resource_type__ for c in report.contained] == ["Device"]
    assert report.result is None
    assert report.subject is None
    assert report.conclusion == "No abnormal findings reported."


@pytest.mark.parametrize("drop", ["status", "code", "contained.code"])
def test_validator_rejects_broken_reports(drop: str) -> None:
    """The validation above can fail: required elements missing are rejected."""
    doc = to_fhir(_result(FINDINGS))
    if drop == "contained.code":
        del doc["contained"][1]["code"]
    else:
        del doc[drop]
    with pytest.raises(ValueError):
        DiagnosticReport.model_validate(doc)


def test_snomed_codes_device_card_and_study_validate_in_r4b_and_r5() -> None:
    from fhir.resources.diagnosticreport import DiagnosticReport as DiagnosticReportR5
    from fhir.resources.R4B.device import Device

    res = _result(FINDINGS)
    res.card = {"name": "demo", "training_data_summary": "synthetic phantoms only (synth)"}
    res.warnings = ["this model was trained on synthetic phantoms only"]
    res.input = {"study": {"uid": "1.2.3.4", "datetime": "2022-12-08T10:00:00"}}
    for version, model, link in (
        ("R4B", DiagnosticReport, "imagingStudy"),
        ("R5", DiagnosticReportR5, "study"),
    ):
        doc = json.loads(json.dumps(to_fhir(res, fhir_version=version)))
        report = model.model_validate(doc)
        assert report.effectiveDateTime is not None
        assert doc[link][0]["identifier"]["value"] == "urn:oid:1.2.3.4"
        assert doc["extension"][0]["valueReference"]["reference"] == "#mu2-model"
        assert "synthetic phantoms only" in report.conclusion
    device = Device.model_validate(doc["contained"][0])
    assert "synthetic phantoms only" in " ".join(n.text for n in device.note)
    codes = {o["code"]["coding"][0]["code"] for o in doc["contained"][1:]}
    assert "389026000" in codes  # ascites in SNOMED CT
    ascites = next(o for o in doc["contained"][1:] if o["code"]["text"] == "ascites")
    assert ascites["code"]["coding"][0]["system"] == "http://snomed.info/sct"
