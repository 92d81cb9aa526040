"""``mu2 inspect PATH``: read a scan the way every other command will, and say what it is."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import typer


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _mm(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _text(info: dict[str, Any]) -> str:
    hu = info["hu"]
    lines = [
        f"file:         {info['path']} ({info['format']})",
        f"shape:        {' x '.join(map(str, info['shape']))} voxels (axes {info['axes']}); "
        f"source {' x '.join(map(str, info['source_shape']))}",
        f"spacing:      {' x '.join(_mm(s) for s in info['spacing_mm'])} mm",
        f"orientation:  {info['orientation']['canonical']} (canonical); "
        f"source {info['orientation']['source']}",
        "HU:           " + "  ".join(f"{k} {_fmt(v)}" for k, v in hu.items()),
        f"modality:     {info['modality_guess']}",
    ]
    series = info.get("series")
    if series:
        desc = series.get("description") or series.get("series_uid") or "unnamed"
        lines.append(
            f"series:       '{desc}', {series.get('n_slices')} slices "
            f"({series.get('chosen_because', '')})"
        )
        for other in series.get("others", []):
            lines.append(
                f"              skipped '{other['description'] or other['series_uid']}' "
                f"({other['n_files']} files)"
            )
    for key, note in info.get("notes", {}).items():
        lines.append(f"note:         {key.replace('_', ' ')}: {note}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect(
        path: Path = typer.Argument(..., help="NIfTI, DICOM file or folder, .npy or .npz."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        allow_non_ct: bool = typer.Option(
            False, "--allow-non-ct", help="Read a DICOM whose Modality is not CT."
        ),
        max_voxels: int | None = typer.Option(
            None, "--max-voxels", help="Refuse headers with more voxels (default 512*512*2048)."
        ),
    ) -> None:
        """Print shape, spacing, orientation, HU statistics and modality of a scan."""
        from mu2.io import NotCTWarning, load_ct  # on use: `mu2 --help` stays fast
        from mu2.io.summary import describe

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NotCTWarning)
            volume = load_ct(path, allow_non_ct=allow_non_ct, max_voxels=max_voxels)
        for w in caught:
            if issubclass(w.category, NotCTWarning):
                print(f"mu2: warning: {w.message}", file=sys.stderr)
        info = describe(volume)
        print(json.dumps(info, indent=2) if as_json else _text(info))
