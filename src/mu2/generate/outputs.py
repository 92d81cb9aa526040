"""The one output writer: a report's JSON, text, FHIR and heat map (NIfTI, PNG) files.

`mu2 report`, batch mode, the demo's examples and the web service all write through
:func:`write_outputs`, so every output carries the same document, the model card's note
and the warnings the same way.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error

TITLE_WIDTH = 130  # characters per line of the heat-map PNG's title


def report_document(
    result: Any, scan: str | Path | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document of a report: the scan it is about, the result, any extra keys."""
    head = {"scan": str(scan)} if scan is not None else {}
    return {**head, **result.to_dict(), **(extra or {})}


def report_text(result: Any) -> str:
    """The report with the model card's note and the warnings under it."""
    notices = [f"note: {result.model_note}", *(f"warning: {w}" for w in result.warnings)]
    return result.report + "\n\n" + "\n".join(notices) + "\n"


def fhir_document(
    result: Any, patient_ref: str | None = None, report_id: str | None = None
) -> dict[str, Any]:
    """The report as a FHIR DiagnosticReport (the dict the FHIR file holds)."""
    from mu2.generate.fhir import to_fhir

    if report_id:
        return to_fhir(result, patient_ref=patient_ref, report_id=report_id)
    return to_fhir(result, patient_ref=patient_ref)


def heatmap_title(result: Any, prefix: str = "") -> str:
    """The PNG title: the questions, the model card's note and the warnings, wrapped."""
    lines = [prefix + "; ".join(s.question for s in result.sections), result.model_note]
    lines += list(result.warnings)
    return "\n".join(textwrap.fill(x, TITLE_WIDTH, break_on_hyphens=False) for x in lines)


def write_outputs(
    result: Any,
    volume: Any,
    *,
    json_path: Path | None = None,
    text_path: Path | None = None,
    fhir_path: Path | None = None,
    heatmap_png: Path | None = None,
    heatmap_nifti: Path | None = None,
    scan: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    patient_ref: str | None = None,
    report_id: str | None = None,
    title_prefix: str = "",
) -> dict[str, str]:
    """Write the outputs asked for; return {kind: path written}. A heat map asked of a
    model without question-to-CT attribution is a user error, raised before any write."""
    from mu2.generate.heatmap import save_heatmap_nifti, save_heatmap_png

    if (heatmap_png is not None or heatmap_nifti is not None) and result.heatmap is None:
        raise Mu2Error(
            f"model {result.model_id} gives no question-to-CT attribution",
            fix="drop --heatmap/--heatmap-nifti or use a mu2-preset model",
        )
    written: dict[str, str] = {}
    for path in (json_path, text_path, fhir_path, heatmap_png, heatmap_nifti):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if json_path is not None:
        doc = report_document(result, scan, extra)
        Path(json_path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        written["json"] = str(json_path)
    if text_path is not None:
        Path(text_path).write_text(report_text(result), encoding="utf-8")
        written["text"] = str(text_path)
    if fhir_path is not None:
        fhir = fhir_document(result, patient_ref, report_id)
        Path(fhir_path).write_text(json.dumps(fhir, indent=2) + "\n", encoding="utf-8")
        written["fhir"] = str(fhir_path)
    if heatmap_nifti is not None:
        written["heatmap_nifti"] = str(save_heatmap_nifti(volume, result.heatmap, heatmap_nifti))
    if heatmap_png is not None:
        title = heatmap_title(result, title_prefix)
        png = save_heatmap_png(volume.array, result.heatmap, volume.spacing, heatmap_png, title=title)
        written["heatmap_png"] = str(png)
    return written
