"""What one report run returns: text per question, structured findings, timings, input.

One result type serves the CLI (``--json``), the batch writer, the FHIR export and the
demo, so they all describe a run the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mu2.findings.catalogue import Finding


@dataclass
class Section:
    """One question and the model's answer; ``region`` is None for a free question."""

    question: str
    text: str
    region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "question": self.question, "text": self.text}


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

    @property
    def regions(self) -> list[str]:
        return [s.region for s in self.sections if s.region is not None]

    @property
    def report(self) -> str:
        """The report text; per-region sections get an upper-case heading (AMOS-MM style)."""
        if len(self.sections) == 1 and self.sections[0].region is None:
            return self.sections[0].text
        parts = []
        for s in self.sections:
            head = (s.region or "answer").upper()
            parts.append(f"{head}:\n{s.text}")
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the heat map array itself is written as NIfTI/PNG, not here)."""
        out: dict[str, Any] = {
            "report": self.report,
            "sections": [s.to_dict() for s in self.sections],
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "model": self.model_id,
            "input": self.input,
            "generation": self.generation,
        }
        if self.regions:
            out["report_by_region"] = {s.region: s.text for s in self.sections if s.region}
        if self.heatmap is not None:
            peak = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
            out["heatmap"] = {
                "shape": list(self.heatmap.shape),
                "peak_voxel": [int(i) for i in peak],
                "grid": "canonical input grid (see input.orientation)",
            }
        return out
