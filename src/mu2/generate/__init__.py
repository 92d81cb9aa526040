"""From CT to report: ``ReportGenerator``, heat maps, structured findings, FHIR, batches.

``ReportGenerator(model_dir).report(scan)`` is the library entry point behind
`mu2 report` (and the one `mu2 demo` calls); see :mod:`mu2.generate.pipeline`.
Names are imported on first use, so light modules (settings, home, fhir) do not pull in
torch and the model code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchResult": "batch",
    "read_input_list": "batch",
    "run_batch": "batch",
    "to_fhir": "fhir",
    "save_heatmap_nifti": "heatmap",
    "save_heatmap_png": "heatmap",
    "demo_model_dir": "home",
    "mu2_home": "home",
    "resolve_model_dir": "home",
    "HitRate": "localise",
    "LesionCase": "localise",
    "lesion_hit_rate": "localise",
    "lesion_hit_stats": "localise",
    "synth_lesion_cases": "localise",
    "ReportGenerator": "pipeline",
    "default_question": "regions",
    "detect_regions": "regions",
    "ReportResult": "result",
    "Section": "result",
    "GenerationSettings": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mu2.generate' has no attribute '{name}'")
    return getattr(importlib.import_module(f"mu2.generate.{_EXPORTS[name]}"), name)
