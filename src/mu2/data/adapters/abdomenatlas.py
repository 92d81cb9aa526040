"""AbdomenAtlas 3.0 (RadGPT): ``BDMAP_xxxxxxxx/ct.nii.gz`` folders plus a report CSV.

Layout (``IN`` is the folder holding the case folders)::

    BDMAP_00000001/ct.nii.gz
    BDMAP_00000001/segmentations/liver.nii.gz ...     (organ and lesion masks, unused here)
    AbdomenAtlas3.0.csv                               one row per case: id + report texts

The CSV's column names are looked up among common spellings (:data:`ID_COLUMNS`,
:data:`REPORT_COLUMNS`, narrative report first); ``--id-column`` / ``--report-column``
name them explicitly when a release spells them differently.
"""

from __future__ import annotations

from pathlib import Path

from mu2.data.adapters.common import (
    Conversion,
    find_one,
    image_ref,
    pick_column,
    question,
    read_csv,
)
from mu2.data.schema import Record
from mu2.errors import Mu2Error

DATASET = "abdomenatlas"
CT_NAME = "ct.nii.gz"
ID_COLUMNS: tuple[str, ...] = ("BDMAP ID", "BDMAP_ID", "bdmap_id", "Case ID", "case_id", "id")
REPORT_COLUMNS: tuple[str, ...] = (
    "narrative report",
    "Narrative Report",
    "fusion narrative report",
    "report",
    "findings",
    "structured report",
    "fusion structured report",
)


def convert_abdomenatlas(
    root: Path,
    out_jsonl: Path,
    reports: Path | None = None,
    id_column: str | None = None,
    report_column: str | None = None,
    skip_missing: bool = False,
) -> Conversion:
    """One abdomen report row per case with a CT and a non-empty report."""
    if not root.is_dir():
        raise Mu2Error("AbdomenAtlas folder not found", path=str(root))
    reports = reports or find_one(root, ("*.csv",), "report CSV", "--reports")
    rows = read_csv(reports)
    if not rows:
        raise Mu2Error("report CSV has no rows", path=str(reports))
    id_col = pick_column(rows, id_column, ID_COLUMNS, reports, "case id")
    text_col = pick_column(rows, report_column, REPORT_COLUMNS, reports, "report")
    out = Conversion()
    missing = []
    for row in rows:
        case = (row.get(id_col) or "").strip()
        text = (row.get(text_col) or "").strip()
        if not case or not text:
            out.skipped.append(f"{case or '(no id)'}: empty report")
            continue
        ct = root / case / CT_NAME
        if not ct.is_file():
            missing.append(case)
            continue
        rid = case
        out.records.append(
            Record(
                id=rid,
                case_id=case,
                image=image_ref(ct, out_jsonl),
                question=question("abdomen", rid),
                answer=text,
                region="abdomen",
                task="report",
                dataset=DATASET,
                meta={"report_column": text_col},
            )
        )
    if missing and not skip_missing:
        raise Mu2Error(
            f"{len(missing)} case(s) of the CSV have no {CT_NAME} "
            f"(first: {', '.join(missing[:3])})",
            path=str(root),
            fix="point IN at the folder of BDMAP_* cases, or pass --skip-missing",
        )
    out.skipped += [f"{c}: no {CT_NAME}" for c in missing]
    return out
