"""CT-RATE: chest CT volumes, a reports CSV and a metadata CSV keyed by ``VolumeName``.

Layout (``IN`` is the data set root)::

    dataset/train/train_1/train_1_a/train_1_a_1.nii.gz      v1 volumes: raw stored values
    dataset/train_fixed/...                                  v2 volumes: already in HU
    dataset/radiology_text_reports/train_reports.csv         VolumeName, Findings_EN, Impressions_EN
    dataset/metadata/train_metadata.csv                      VolumeName, XYSpacing, ZSpacing,
                                                             RescaleSlope, RescaleIntercept

The download holds a reports and a metadata CSV per split (``train_*``, ``validation_*``);
without ``--reports`` / ``--metadata`` all of them are read, and each row is matched to
its metadata by ``VolumeName``. A findings or impression text that only says "Not given."
(how the release marks a missing section) counts as empty.

Never rescale twice: a volume is marked ``hu_already`` when it comes from the v2
(``*_fixed``) layout, or, with ``hu="auto"``, when its voxel values read as HU fit a CT
better than the values after applying slope/intercept (air at -1000, soft tissue near 0).
The rows record slope, intercept and ``hu_already``; :mod:`mu2.data.volume_io` applies
the rescale exactly when ``hu_already`` is false.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from mu2.data.adapters.common import Conversion, image_ref, question, read_csv, strip_nii
from mu2.data.schema import Record
from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

DATASET = "ct-rate"
AIR_HU = (-1100.0, -900.0)
SOFT_TISSUE_HU = (-150.0, 150.0)
V2_SUFFIX = "_fixed"  # CT-RATE v2 folders: train_fixed, valid_fixed
SUBSAMPLE = (4, 4, 2)  # voxel stride when reading values to decide HU vs raw
NOT_GIVEN = "not given"  # the release's text for a missing report section


def _section(row: dict[str, str], key: str) -> str:
    """A report section's text; '' when missing or only "Not given." ."""
    text = (row.get(key) or "").strip()
    return "" if text.rstrip(".").strip().lower() == NOT_GIVEN else text


def _csvs(root: Path, given: Path | None, pattern: str, what: str, option: str) -> list[Path]:
    """``given``, else every CSV under ``root`` whose name matches ``pattern``."""
    if given is not None:
        return [given]
    found = sorted(p for p in root.rglob(pattern) if p.is_file())
    if not found:
        raise Mu2Error(
            f"no {what} found under the folder", path=str(root), fix=f"pass {option} PATH"
        )
    return found


def _ct_fit(values: np.ndarray) -> float:
    """Share of voxels at air or soft-tissue attenuation: how CT-like a reading is."""
    air = (values >= AIR_HU[0]) & (values <= AIR_HU[1])
    soft = (values >= SOFT_TISSUE_HU[0]) & (values <= SOFT_TISSUE_HU[1])
    return float((air | soft).mean())


def looks_like_hu(stored: np.ndarray, slope: float, intercept: float) -> bool:
    """True if ``stored`` values are HU already (rescaling them would be a second time)."""
    if slope == 1.0 and intercept == 0.0:
        return True
    v = stored.astype(np.float32).ravel()
    return _ct_fit(v) >= _ct_fit(v * np.float32(slope) + np.float32(intercept))


def _float(row: dict[str, str], key: str, default: float, where: str) -> float:
    raw = (row.get(key) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise Mu2Error(f"{key} is '{raw}', not a number ({where})") from None


def _spacing(row: dict[str, str], where: str) -> list[float] | None:
    xy, z = (row.get("XYSpacing") or "").strip(), (row.get("ZSpacing") or "").strip()
    if not xy or not z:
        return None
    try:
        xy_v = ast.literal_eval(xy)
        xy_v = [float(v) for v in (xy_v if isinstance(xy_v, (list, tuple)) else [xy_v, xy_v])]
        return [xy_v[0], xy_v[1], float(z)]
    except (ValueError, SyntaxError, IndexError):
        raise Mu2Error(f"XYSpacing '{xy}' / ZSpacing '{z}' unreadable ({where})") from None


def convert_ct_rate(
    root: Path,
    out_jsonl: Path,
    reports: Path | None = None,
    metadata: Path | None = None,
    hu: str = "auto",
    skip_missing: bool = False,
) -> Conversion:
    """One chest report row per volume; ``hu``: auto (detect), yes (all HU) or no (all raw)."""
    if hu not in ("auto", "yes", "no"):
        raise Mu2Error(f"--hu is '{hu}'", fix="use auto, yes or no")
    if not root.is_dir():
        raise Mu2Error("CT-RATE root folder not found", path=str(root))
    report_rows: list[dict[str, str]] = []
    for path in _csvs(root, reports, "*reports*.csv", "reports CSV", "--reports"):
        rows = read_csv(path)
        for col in ("VolumeName", "Findings_EN"):
            if rows and col not in rows[0]:
                raise Mu2Error(f"reports CSV has no '{col}' column", path=str(path))
        report_rows += rows
    metadata_paths = _csvs(root, metadata, "*metadata*.csv", "metadata CSV", "--metadata")
    meta_rows = {r.get("VolumeName", ""): r for p in metadata_paths for r in read_csv(p)}
    volumes = {p.name: p for p in sorted(root.rglob("*.nii.gz"))}
    out = Conversion()
    missing: list[str] = []
    for row in report_rows:
        name = (row.get("VolumeName") or "").strip()
        text = _section(row, "Findings_EN")
        if not name or not text:
            out.skipped.append(f"{name or '(no VolumeName)'}: empty findings")
            continue
        path = volumes.get(name)
        if path is None:
            missing.append(name)
            continue
        m = meta_rows.get(name)
        if m is None:
            raise Mu2Error(f"no metadata row for {name}", path=str(metadata_paths[0]))
        slope = _float(m, "RescaleSlope", 1.0, name)
        intercept = _float(m, "RescaleIntercept", 0.0, name)
        if any(part.endswith(V2_SUFFIX) for part in path.relative_to(root).parts[:-1]):
            already, how = True, "v2 layout"
        elif hu != "auto":
            already, how = hu == "yes", "forced"
        else:
            stored = np.asarray(nib.load(path).dataobj)[
                tuple(slice(None, None, s) for s in SUBSAMPLE)
            ]
            already, how = looks_like_hu(stored, slope, intercept), "values"
        case = strip_nii(name)
        meta = {
            "rescale_slope": slope,
            "rescale_intercept": intercept,
            "hu_already": already,
            "hu_check": how,
        }
        spacing = _spacing(m, name)
        if spacing:
            meta["spacing"] = spacing
        impression = _section(row, "Impressions_EN")
        if impression:
            meta["impression"] = impression
        out.records.append(
            Record(
                id=case,
                case_id=case,
                image=image_ref(path, out_jsonl),
                question=question("chest", case),
                answer=text,
                region="chest",
                task="report",
                dataset=DATASET,
                meta=meta,
            )
        )
    if missing and not skip_missing:
        raise Mu2Error(
            f"{len(missing)} volume(s) of the reports CSV not found under the root "
            f"(first: {', '.join(missing[:3])})",
            path=str(root),
            fix="point IN at the data set root, or pass --skip-missing",
        )
    out.skipped += [f"{n}: volume not found" for n in missing]
    return out
