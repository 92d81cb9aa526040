"""AbdomenAtlas 3.0 (RadGPT): ``BDMAP_xxxxxxxx/ct.nii.gz`` folders plus a report CSV.

Layouts (``IN`` is the folder given to ``mu2 data convert``)::

    BDMAP_00000001/ct.nii.gz                          case folders directly under IN
    BDMAP_00000001/segmentations/liver.nii.gz ...     (organ and lesion masks, unused here)
    AbdomenAtlas3.0.csv                               one row per case: id + report texts

or the AbdomenAtlas 3.0 Mini download (the data set's own download script)::

    AbdomenAtlas3.0MiniWithMeta.csv                   "BDMAP ID", "narrative report", ...
    TrainTestIDS/IID_train.csv, IID_test.csv, ...     split lists (ids only: not reports)
    image_only/BDMAP_00000001/ct.nii.gz
    mask_only/BDMAP_00000001/segmentations/...

The report CSV is the one CSV whose header has both a case-id and a report column, so
split lists beside it are not mistaken for it.

The CSV's column names are looked up among common spellings (:data:`ID_COLUMNS`,
:data:`REPORT_COLUMNS`, narrative report first); ``--id-column`` / ``--report-column``
name them explicitly when a release spells them differently.
"""

from __future__ import annotations

from pathlib import Path

from mu2.data.adapters.common import (
    Conversion,
    csv_header,
    image_ref,
    pick_column,
    question,
    read_csv,
)
from mu2.data.schema import Record
from mu2.errors import Mu2Error

DATASET = "abdomenatlas"
CT_NAME = "ct.nii.gz"
CT_FOLDERS: tuple[str, ...] = ("", "image_only")  # where case folders sit under IN
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
    reports = reports or _report_csv(root, id_column, report_column)
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
        found = [root / sub / case / CT_NAME for sub in CT_FOLDERS]
        ct = next((p for p in found if p.is_file()), None)
        if ct is None:
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


def _report_csv(root: Path, id_column: str | None, report_column: str | None) -> Path:
    """The single CSV under ``root`` with a case-id and a report column in its header."""
    ids = (id_column,) if id_column else ID_COLUMNS
    texts = (report_column,) if report_column else REPORT_COLUMNS
    every = sorted(root.rglob("*.csv"))
    found = []
    for path in every:
        header = csv_header(path)
        if any(c in header for c in ids) and any(c in header for c in texts):
            found.append(path)
    if len(found) == 1:
        return found[0]
    if not found and len(every) == 1:
        return every[0]  # the only CSV: its columns are checked (and named) by pick_column
    if not found:
        raise Mu2Error(
            "no report CSV (a CSV with a case-id and a report column) under the folder",
            path=str(root),
            fix="pass --reports PATH (and --id-column / --report-column if named otherwise)",
        )
    names = ", ".join(str(p.relative_to(root)) for p in found[:5])
    raise Mu2Error(
        f"several report CSV files found ({names})", path=str(root), fix="choose one with --reports"
    )
