"""A plain summary of a loaded scan: what ``mu2 inspect`` prints and other commands reuse."""

from __future__ import annotations

from typing import Any

import numpy as np

from mu2.io.checks import hu_warning
from mu2.io.volume import CTVolume

SUMMARY_PERCENTILES = (1.0, 50.0, 99.0)


def modality_guess(volume: CTVolume) -> str:
    """The DICOM Modality tag when there is one, else a guess from the value range."""
    tag = volume.meta.get("modality")
    if tag:
        return f"{tag} (DICOM Modality tag)"
    if hu_warning(volume.array, "") is None:
        return "CT (values look like Hounsfield units)"
    return "not CT? (values do not look like Hounsfield units)"


def describe(volume: CTVolume) -> dict[str, Any]:
    """JSON-ready facts about a volume: shape, spacing, orientation, HU statistics."""
    arr = volume.array
    pcts = np.percentile(arr, SUMMARY_PERCENTILES)
    meta = volume.meta
    return {
        "path": meta.get("path"),
        "format": meta.get("format"),
        "shape": list(volume.shape),
        "axes": "x, y, z = R, A, S",
        "source_shape": list(volume.source_shape or volume.shape),
        "spacing_mm": [round(float(s), 6) for s in volume.spacing],
        "orientation": {
            "canonical": meta.get("canonical_orientation"),
            "source": meta.get("orientation"),
        },
        "hu": {
            "min": float(arr.min()),
            **{f"p{p:g}": float(v) for p, v in zip(SUMMARY_PERCENTILES, pcts, strict=True)},
            "max": float(arr.max()),
        },
        "modality": meta.get("modality"),
        "modality_guess": modality_guess(volume),
        "series": meta.get("series"),
        "notes": {k: meta[k] for k in ("orientation_note", "spacing_source") if k in meta},
        "warnings": list(meta.get("warnings", [])),
    }
