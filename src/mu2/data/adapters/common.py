"""Small pieces every adapter shares: questions, CSV reading, column lookup, paths."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

from mu2.data.schema import Record, relative_image
from mu2.errors import Mu2Error
from mu2.findings.writer import write_question

# Questions for a report that is not split by region (M3D-Cap captions, whole reports).
WHOLE_REPORT_QUESTIONS: tuple[str, ...] = (
    "Describe the findings in this CT.",
    "What are the findings in this CT scan?",
    "Please write the findings section of this CT report.",
    "Describe this CT image.",
)


@dataclass
class Conversion:
    """Rows made by an adapter and what it skipped (reported by the CLI)."""

    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def question(region: str | None, key: str) -> str:
    """A question for ``region`` (or the whole report), phrased by a generator seeded by ``key``.

    Seeding by the row's own id keeps conversions deterministic and independent of order.
    """
    rng = random.Random(key)
    return write_question(region, rng) if region else rng.choice(WHOLE_REPORT_QUESTIONS)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file (header line required), with clear errors."""
    if not path.is_file():
        raise Mu2Error("CSV file not found", path=str(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as err:
        raise Mu2Error(f"not a readable CSV file ({err})", path=str(path)) from None
    if not header:
        raise Mu2Error("CSV file has no header line", path=str(path))
    return rows


def csv_header(path: Path) -> list[str]:
    """Column names of a CSV file (its first line); [] when it cannot be read as CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def pick_column(
    rows: list[dict[str, str]],
    wanted: str | None,
    candidates: tuple[str, ...],
    path: Path,
    what: str,
) -> str:
    """The column to use: ``wanted`` if given, else the first candidate present."""
    header = list(rows[0].keys()) if rows else []
    if wanted:
        if wanted not in header:
            raise Mu2Error(
                f"no column '{wanted}' ({what})",
                path=str(path),
                fix=f"columns are: {', '.join(header)}",
            )
        return wanted
    for c in candidates:
        if c in header:
            return c
    raise Mu2Error(
        f"no {what} column (looked for {', '.join(candidates)})",
        path=str(path),
        fix=f"name the column with an option; columns are: {', '.join(header)}",
    )


def find_one(root: Path, patterns: tuple[str, ...], what: str, option: str) -> Path:
    """The single file under ``root`` matching one of ``patterns`` (recursive)."""
    hits = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise Mu2Error(
            f"no {what} found under the folder", path=str(root), fix=f"pass {option} PATH"
        )
    names = ", ".join(str(h.relative_to(root)) for h in hits[:5])
    raise Mu2Error(
        f"several {what} files found ({names})", path=str(root), fix=f"choose one with {option}"
    )


def image_ref(image: Path, out_jsonl: Path) -> str:
    return relative_image(image, out_jsonl)


def strip_nii(name: str) -> str:
    for suffix in (".nii.gz", ".nii", ".npy", ".npz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
