"""Adapters from the real data sets' own layouts to the unified JSONL (``mu2 data convert``).

Each adapter returns a :class:`~mu2.data.adapters.common.Conversion` (rows + what it
skipped); image paths in the rows are relative to the output JSONL's folder.
"""

from __future__ import annotations

from mu2.data.adapters.abdomenatlas import convert_abdomenatlas
from mu2.data.adapters.amos_mm import convert_amos_mm
from mu2.data.adapters.common import Conversion
from mu2.data.adapters.ct_rate import convert_ct_rate, looks_like_hu
from mu2.data.adapters.m3d_cap import convert_m3d_cap
from mu2.data.adapters.unified import convert_unified

FORMATS: tuple[str, ...] = ("amos-mm", "ct-rate", "abdomenatlas", "m3d-cap", "unified")

__all__ = [
    "FORMATS",
    "Conversion",
    "convert_abdomenatlas",
    "convert_amos_mm",
    "convert_ct_rate",
    "convert_m3d_cap",
    "convert_unified",
    "looks_like_hu",
]
