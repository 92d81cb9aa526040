"""Files for tests: every kind of bad input, and small DICOM series with known content.

Library code (not under tests/) so the tests of every command that reads a scan
(``mu2 inspect``, ``mu2 report``, ...) can check the same bad files give exit code 2.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

# A header that claims 4096^3 voxels (68.7e9, 256 GiB as float32) but holds almost no data.
HUGE_HEADER_SHAPE = (4096, 4096, 4096)


def _phantom(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Air with a soft-tissue box: valid HU values."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, -1000.0, dtype=np.float32)
    inner = tuple(slice(s // 4, s - s // 4) for s in shape[:3])
    vol[inner] = 40.0 + rng.normal(0, 10, vol[inner].shape)
    return vol


def _nifti(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), str(path))
    return path


def _huge_header(path: Path) -> Path:
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape(HUGE_HEADER_SHAPE)
    header.set_zooms((1.0, 1.0, 1.0))
    with gzip.open(path, "wb") as fh:
        header.write_to(fh)
        fh.write(b"\0" * 4 + b"\0" * 1024)  # extension flag + a few voxels
    return path


def make_bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """Write one file (or folder) per bad-input case under ``tmp_path``; name -> path."""
    root = Path(tmp_path) / "bad_inputs"
    root.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}

    good = _nifti(root / "good.nii.gz", _phantom((16, 16, 12)))
    blob = good.read_bytes()
    cases["truncated_nii_gz"] = root / "truncated.nii.gz"
    cases["truncated_nii_gz"].write_bytes(blob[: len(blob) // 2])
    good.unlink()

    cases["zero_byte"] = root / "empty.nii.gz"
    cases["zero_byte"].write_bytes(b"")

    cases["text_as_nii_gz"] = root / "notes.nii.gz"
    cases["text_as_nii_gz"].write_text("<html><body>404 Not Found</body></html>\n")

    cases["image_2d"] = _nifti(root / "slice_2d.nii.gz", _phantom((32, 32)))
    cases["volume_4d"] = _nifti(root / "volume_4d.nii.gz", _phantom((16, 16, 12, 3)))

    nan = _phantom((16, 16, 12))
    nan[8, 8, 6] = np.nan
    cases["nan_voxels"] = _nifti(root / "nan.nii.gz", nan)
    inf = _phantom((16, 16, 12))
    inf[2, 3, 4] = np.inf
    cases["inf_voxels"] = _nifti(root / "inf.nii.gz", inf)

    folder = root / "dicom_no_images"
    folder.mkdir(exist_ok=True)
    (folder / "README.txt").write_text("the export failed; no images here\n")
    cases["dicom_no_images"] = folder

    cases["over_memory_cap"] = _huge_header(root / "huge_header.nii.gz")
    cases["nonexistent"] = root / "does_not_exist.nii.gz"

    cases["unknown_extension"] = root / "scan.png"
    cases["unknown_extension"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)

    cases["non_ct_dicom"] = write_dicom_series(
        root / "mr_series", _phantom((16, 16, 6)), (1.0, 1.0, 2.0), modality="MR"
    )
    return cases


def write_dicom_series(
    folder: Path,
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = -1024.0,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    series_uid: str | None = None,
    description: str = "synthetic",
    names: list[str] | None = None,
) -> Path:
    """Write ``hu`` (X=column, Y=row, Z=slice; DICOM LPS axes) as uncompressed slices.

    Stored values are (HU - intercept) / slope, so a reader that applies the rescale
    twice, or not at all, is off by ``intercept``. ``names`` sets the file names (e.g.
    shuffled, to check that slices are sorted by position and not by name).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    stored = np.round((np.asarray(hu, np.float64) - intercept) / slope)
    if stored.min() < 0 or stored.max() > 65535:
        raise ValueError("HU values do not fit unsigned 16-bit with this slope/intercept")
    stored = stored.astype(np.uint16)
    n_slices = hu.shape[2]
    names = names or [f"slice_{i:04d}.dcm" for i in range(n_slices)]
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    for z in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(names[z], {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = description
        ds.Modality = modality
        ds.PatientID = "SYNTHETIC"
        ds.InstanceNumber = n_slices - z  # reversed on purpose: sorting must use positions
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + z * spacing[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # (row spacing, column spacing)
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[0])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = np.ascontiguousarray(stored[:, :, z].T).tobytes()  # (row, column)
        ds.save_as(folder / names[z], enforce_file_format=True)
    return folder


__all__ = ["HUGE_HEADER_SHAPE", "make_bad_inputs", "write_dicom_series"]
