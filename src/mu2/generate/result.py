"""What one report run returns: text per question, structured findings, timings, input.

One result type serves the CLI (``--json``), the batch writer, the FHIR export and the
demo, so they all describe a run the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mu2.findings.catalogue import FINDING_KINDS, Finding


@dataclass
class Section:
    """One question and the model's answer; ``region`` is None for a free question."""

    question: str
    text: str
    region: str | None = None
    notes: list[str] = field(default_factory=list)  # what mu2 dropped or flagged

    def to_dict(self) -> dict[str, Any]:
        d = {"region": self.region, "question": self.question, "text": self.text}
        return {**d, "notes": list(self.notes)} if self.notes else d

    @property
    def text_with_notes(self) -> str:
        """The answer, then mu2's notes on it (e.g. a finding outside the field of view)."""
        return "\n".join([self.text, *(f"[mu2 note: {n}]" for n in self.notes)])


@dataclass
class ReportResult:
    """A generated report for one CT.

    ``timings`` holds seconds for load (reading the CT), prepare (volume -> frames),
    encode (vision tower + mu2 tokenizer) and generate (LLM decoding), plus ``total``;
    ``heatmap`` (patch relevance -> input voxels) when a heat map was computed.
    ``heatmap`` (when asked for) is question-to-CT relevance in [0, 1] on the canonical
    grid of the input volume, shaped like ``CTVolume.array`` (X, Y, Z).
    """

    sections: list[Section]
    findings: list[Finding]
    timings: dict[str, float]
    model_id: str
    input: dict[str, Any]
    generation: dict[str, Any] = field(default_factory=dict)
    heatmap: np.ndarray | None = None
    card: dict[str, Any] = field(default_factory=dict)  # the model card (mu2.model.card)
    coverage: dict[str, Any] | None = None  # regions / organs in view (generate.coverage)
    warnings: list[str] = field(default_factory=list)  # every output carries these
    heatmap_peaks: dict[str, list[int]] = field(default_factory=dict)

    @property
    def regions(self) -> list[str]:
        return [s.region for s in self.sections if s.region is not None]

    @property
    def report(self) -> str:
        """The report text; per-region sections get an upper-case heading (AMOS-MM style)."""
        if len(self.sections) == 1 and self.sections[0].region is None:
            return self.sections[0].text_with_notes
        parts = []
        for s in self.sections:
            head = (s.region or "answer").upper()
            parts.append(f"{head}:\n{s.text_with_notes}")
        return "\n\n".join(parts)

    @property
    def model_note(self) -> str:
        """One line on what the model is, for every output (text, PNG, FHIR, web)."""
        card = self.card or {}
        summary = card.get("training_data_summary") or "unknown training data"
        regions = ", ".join(card.get("regions") or []) or "unknown"
        return f"model {self.model_id}: trained on {summary}; regions {regions}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the heat map array itself is written as NIfTI/PNG, not here)."""
        out: dict[str, Any] = {
            "report": self.report,
            "sections": [s.to_dict() for s in self.sections],
            "findings": [
                {**f.to_dict(), "label": FINDING_KINDS[f.finding].label} for f in self.findings
            ],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "model": {"id": self.model_id, "note": self.model_note, "card": self.card},
            "warnings": list(self.warnings),
            "coverage": self.coverage,
            "input": self.input,
            "generation": self.generation,
        }
        if self.regions:
            out["report_by_region"] = {s.region: s.text for s in self.sections if s.region}
        if self.heatmap is not None:
            peak = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
            canonical = [int(i) for i in peak]
            out["heatmap"] = {
                "shape": list(self.heatmap.shape),
                # the voxel of the stored grid: the input file's and the heat-map NIfTI's
                "peak_voxel": self.heatmap_peaks.get("stored", canonical),
                "peak_voxel_canonical": canonical,
                "grid": "peak_voxel: the input file's stored grid (as the heat-map NIfTI); "
                "peak_voxel_canonical: the RAS grid",
            }
        return out
