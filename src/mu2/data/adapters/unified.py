"""Unified JSONL in, unified JSONL out: validated, image paths re-based to the new file."""

from __future__ import annotations

from pathlib import Path

from mu2.data.adapters.common import Conversion, image_ref
from mu2.data.schema import read_jsonl, resolve_image


def convert_unified(in_path: Path, out_jsonl: Path) -> Conversion:
    """Every row validated (errors name file and line); relative images re-based."""
    out = Conversion()
    for r in read_jsonl(in_path):
        if not Path(r.image).is_absolute():
            r.image = image_ref(resolve_image(r, in_path), out_jsonl)
        out.records.append(r)
    return out
