"""DICOM reader: headers with pydicom, pixels with SimpleITK (GDCM decodes every codec).

Headers decide which files form the volume: files are grouped into series, the largest
series wins (the choice is logged and kept in ``meta['series']``), slices are sorted by
their position along the slice normal (ImagePositionPatient, not file names or
InstanceNumber) and the geometry is built from those positions. SimpleITK then decodes
the pixels of exactly that ordered file list and applies RescaleSlope/Intercept once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mu2.errors import Mu2Error
from mu2.io.checks import check_geometry, check_memory, short_reason

if TYPE_CHECKING:
    import SimpleITK as sitk

log = logging.getLogger(__name__)

# Slice gaps that differ by more than this fraction from the median are reported.
UNEVEN_SPACING_TOLERANCE = 0.1
# LPS (DICOM patient coordinates) -> RAS (nibabel world coordinates).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_FIX_FOLDER = "pass the folder that holds the .dcm slices of one CT series"


@dataclass
class _Slice:
    path: Path
    header: pydicom.Dataset


@dataclass
class _Series:
    key: tuple
    slices: list[_Slice] = field(default_factory=list)

    @property
    def first(self) -> pydicom.Dataset:
        return self.slices[0].header

    def summary(self) -> dict[str, Any]:
        return {
            "series_uid": str(self.first.get("SeriesInstanceUID", "")),
            "description": str(self.first.get("SeriesDescription", "")),
            "modality": str(self.first.get("Modality", "")),
            "n_files": len(self.slices),
            # for the FHIR export: the study to link, and when the scan was taken
            "study_uid": str(self.first.get("StudyInstanceUID", "")),
            "study_datetime": _study_datetime(self.first),
        }


def _study_datetime(ds: pydicom.Dataset) -> str | None:
    """StudyDate (+ StudyTime) as ISO 8601 ('2020-01-31T10:22:05'), None when absent."""
    d = str(ds.get("StudyDate", "") or ds.get("SeriesDate", "") or "").strip()
    if len(d) != 8 or not d.isdigit():
        return None
    out = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
    t = str(ds.get("StudyTime", "") or "").split(".")[0].strip()
    if len(t) >= 4 and t.isdigit():
        t = (t + "00")[:6]
        out += f"T{t[:2]}:{t[2:4]}:{t[4:6]}"
    return out


def _read_header(path: Path) -> pydicom.Dataset | None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError):
        return None
    return ds if "Rows" in ds and "Columns" in ds else None  # images only (no DICOMDIR, SR)


def _series_key(ds: pydicom.Dataset) -> tuple:
    iop = tuple(np.round(np.asarray(ds.get("ImageOrientationPatient", [0] * 6), float), 3))
    return (str(ds.get("SeriesInstanceUID", "")), iop, int(ds.Rows), int(ds.Columns))


def _collect(folder: Path, recursive: bool = True) -> tuple[list[_Series], int]:
    found = folder.rglob("*") if recursive else folder.glob("*")
    files = sorted(p for p in found if p.is_file() and not p.name.startswith("."))
    groups: dict[tuple, _Series] = {}
    for path in files:
        ds = _read_header(path)
        if ds is None:
            continue
        key = _series_key(ds)
        groups.setdefault(key, _Series(key)).slices.append(_Slice(path, ds))
    return list(groups.values()), len(files)


@contextlib.contextmanager
def _quiet_itk() -> Iterator[None]:
    """ITK prints its own warnings to stderr; mu2 reports problems itself, once."""
    import SimpleITK as sitk  # imported on first DICOM decode: NIfTI / .npy users never pay it

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def itk_reason(err: BaseException, where: str = "") -> str:
    """The reason in an ITK exception: its first line only names the C++ source file, the
    words that matter follow 'ERROR:' (or sit on the last line)."""
    text = str(err).replace(where, "<file>") if where else str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR:" in ln:
            return short_reason(RuntimeError(ln.split("ERROR:", 1)[1].strip()), limit=160)
    return short_reason(RuntimeError(lines[-1] if lines else type(err).__name__), limit=160)


def _sitk_read(files: list[Path], where: str) -> np.ndarray:
    """Decode pixels (rescale applied by GDCM) -> float32 array (X, Y, Z)."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as err:
        raise Mu2Error(
            f"could not decode DICOM pixel data ({itk_reason(err, where)})",
            path=where,
            fix="check the files are complete; re-export the series uncompressed if it persists",
        ) from None
    # (Z, Y, X) -> (X, Y, Z)
    return np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))


def _sitk_affine(image: sitk.Image) -> np.ndarray:
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing(), float)
    lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ lps


def _series_volume(series: _Series, where: str, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Sort slices by position, build the RAS affine, read pixels in that order."""
    for s in series.slices:
        missing = [
            tag
            for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
            if tag not in s.header
        ]
        if missing:
            raise Mu2Error(
                f"slice {s.path.name} has no {'/'.join(missing)}; cannot place it in 3-D",
                path=where,
                fix="export the series with its geometry tags (a CT scanner or PACS export "
                "keeps them; an anonymiser may have removed them)",
            )
    samples = int(series.first.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise Mu2Error(
            f"slices hold colour pixels ({samples} samples per pixel, "
            f"{series.first.get('PhotometricInterpretation', '?')}), not CT intensities",
            path=where,
            fix="export the original grey-scale CT series, not screenshots or a rendered image",
        )
    try:
        iop = np.asarray(series.first.ImageOrientationPatient, float).reshape(6)
        pos = np.array([np.asarray(s.header.ImagePositionPatient, float) for s in series.slices])
        dy, dx = (float(v) for v in series.first.PixelSpacing)  # (row, column spacing)
    except (ValueError, TypeError):
        raise Mu2Error(
            "ImageOrientationPatient / ImagePositionPatient / PixelSpacing are not 6 / 3 / 2 "
            "numbers",
            path=where,
            fix="re-export the series; its geometry tags are malformed",
        ) from None
    if pos.shape[1:] != (3,) or not (dx > 0 and dy > 0):
        raise Mu2Error(
            f"PixelSpacing is {dy:g}\\{dx:g} mm; both must be > 0"
            if pos.shape[1:] == (3,)
            else "ImagePositionPatient is not 3 numbers",
            path=where,
            fix="re-export the series with its real pixel spacing (or fix the tag with pydicom)",
        )
    row_dir, col_dir = iop[:3], iop[3:]  # direction of increasing column / row index
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 1e-3:
        raise Mu2Error(
            f"ImageOrientationPatient {[float(v) for v in iop]} does not give two independent "
            "directions",
            path=where,
            fix="re-export the series; its orientation tag is corrupt",
        )
    order = np.argsort(pos @ normal, kind="stable")
    slices = [series.slices[i] for i in order]
    pos = pos[order]
    depth = pos @ normal
    keep = np.concatenate([[True], np.diff(depth) > 1e-3])
    if keep.sum() < 2:
        raise Mu2Error(
            f"all {len(slices)} slices share one position along the slice normal"
            if len(slices) > 1
            else "2-D image: the series has one slice",
            path=where,
            fix=_FIX_FOLDER + " (one slice per position)",
        )
    if not keep.all():
        message = f"{where}: {int((~keep).sum())} slices repeat a position; kept the first of each"
        meta["warnings"].append(message)
        log.warning(message)
        slices, pos, depth = (
            [s for s, k in zip(slices, keep, strict=True) if k],
            pos[keep],
            depth[keep],
        )
    gaps = np.diff(depth)
    median_gap = float(np.median(gaps))
    if np.abs(gaps - median_gap).max() > UNEVEN_SPACING_TOLERANCE * median_gap:
        message = (
            f"{where}: uneven slice gaps ({gaps.min():.3g}..{gaps.max():.3g} mm); missing "
            f"slices? spacing taken as the mean"
        )
        meta["warnings"].append(message)
        log.warning(message)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dx
    lps[:3, 1] = col_dir * dy
    lps[:3, 2] = (pos[-1] - pos[0]) / (len(slices) - 1)  # slice step, tilt included
    lps[:3, 3] = pos[0]
    check_geometry(lps, where, "the slice geometry")
    _check_pixel_sizes(slices, where)
    data = _sitk_read([s.path for s in slices], where)
    meta["series"]["n_slices"] = len(slices)
    return data, LPS_TO_RAS @ lps


def _check_pixel_sizes(slices: list[_Slice], where: str) -> None:
    """An uncompressed slice smaller than its pixels is truncated: GDCM would pad it with
    zeros without a word, so it is refused here (compressed slices fail in the decoder)."""
    for s in slices:
        ts = getattr(getattr(s.header, "file_meta", None), "TransferSyntaxUID", None)
        if ts is None or ts.is_compressed:
            continue
        h = s.header
        need = int(h.Rows) * int(h.Columns) * (int(h.get("BitsAllocated", 16)) // 8)
        need *= int(h.get("SamplesPerPixel", 1) or 1)
        try:  # the pixel element's length, without loading its bytes
            elem = pydicom.dcmread(s.path, defer_size=256).get_item("PixelData")
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError):
            elem = None
        size = 0 if elem is None else int(getattr(elem, "length", None) or len(elem.value or b""))
        if size < need:
            raise Mu2Error(
                f"slice {s.path.name} holds {size:,} bytes of pixel data, fewer than its "
                f"{need:,} (truncated)",
                path=where,
                fix="copy or export the series again; check that the transfer finished",
            )


def _check_modality(ds: pydicom.Dataset, allow_non_ct: bool, where: str) -> str:
    modality = str(ds.get("Modality", "")).upper()
    if modality != "CT" and not allow_non_ct:
        raise Mu2Error(
            f"DICOM Modality is '{modality or 'missing'}', not CT",
            path=where,
            fix="pass a CT series, or add --allow-non-ct to read it anyway",
        )
    return modality


def read_dicom(
    path: Path, max_voxels: int, allow_non_ct: bool, max_memory_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Return (data (X=column, Y=row, Z=slice) float32 HU, RAS affine, meta)."""
    import SimpleITK as sitk

    where = str(path)
    folder = path if path.is_dir() else path.parent
    single = None if path.is_dir() else _read_header(path)
    if not path.is_dir() and single is None:
        raise Mu2Error("not a DICOM image file", path=where, fix=_FIX_FOLDER)
    meta: dict[str, Any] = {"path": where, "format": "dicom", "warnings": []}

    if single is not None and int(single.get("NumberOfFrames", 1) or 1) > 1:
        # One multi-frame file (enhanced CT): GDCM knows its per-frame geometry.
        modality = _check_modality(single, allow_non_ct, where)
        shape = (int(single.Columns), int(single.Rows), int(single.NumberOfFrames))
        check_memory(shape, max_voxels, where, max_memory_bytes)
        try:
            with _quiet_itk():
                image = sitk.Cast(sitk.ReadImage(where), sitk.sitkFloat32)
        except RuntimeError as err:
            raise Mu2Error(
                f"could not decode DICOM ({itk_reason(err, where)})",
                path=where,
                fix="check the file is complete; re-export it if it persists",
            ) from None
        data = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
        meta.update(modality=modality, series={"n_slices": shape[2], "multi_frame": True})
        affine = _sitk_affine(image)
        check_geometry(affine, where, "the multi-frame geometry")
        return data, affine, meta

    # a folder: its whole tree; one slice: the other files beside it
    series_list, n_files = _collect(folder, recursive=single is None)
    if single is not None:
        key = _series_key(single)
        series_list = [s for s in series_list if s.key == key]
    if not series_list:
        raise Mu2Error(
            f"no DICOM images in this folder (files looked at: {n_files})",
            path=where,
            fix=_FIX_FOLDER,
        )
    series_list.sort(key=lambda s: len(s.slices), reverse=True)
    chosen, others = series_list[0], series_list[1:]
    meta["series"] = {
        **chosen.summary(),
        "chosen_because": "largest series in the folder" if others else "only series",
        "others": [s.summary() for s in others],
    }
    if single is not None:
        meta["series"]["chosen_because"] = f"the series that {path.name} belongs to"
    if others:
        log.info(
            "%s: %d series; read the largest (%d files), skipped %s",
            where,
            len(series_list),
            len(chosen.slices),
            ", ".join(
                f"{o.summary()['description'] or o.key[0]} ({len(o.slices)})" for o in others
            ),
        )
    meta["modality"] = _check_modality(chosen.first, allow_non_ct, where)
    check_memory(
        (int(chosen.first.Columns), int(chosen.first.Rows), len(chosen.slices)),
        max_voxels,
        where,
        max_memory_bytes,
    )
    data, affine = _series_volume(chosen, where, meta)
    return data, affine, meta
