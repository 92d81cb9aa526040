"""``load_ct``: the one entry point that turns any supported CT file into a CTVolume."""

from __future__ import annotations

import errno
import logging
import os
import zipfile
import zlib
from pathlib import Path

import pydicom

from mu2.errors import Mu2Error
from mu2.io.checks import (
    DEFAULT_MAX_VOXELS,
    check_finite,
    check_geometry,
    short_reason,
    warn_if_not_hu,
)
from mu2.io.dicom import read_dicom
from mu2.io.nifti import read_nifti
from mu2.io.numpy_io import read_numpy
from mu2.io.volume import CTVolume, canonical_volume

log = logging.getLogger(__name__)

SUPPORTED = ".nii, .nii.gz, .npy, .npz, a DICOM file (.dcm) or a folder of DICOM slices"
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir():
        return "dicom"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".npy", ".npz")):
        return "numpy"
    if name.endswith(DICOM_SUFFIXES) or path.suffix == "" or pydicom.misc.is_dicom(path):
        return "dicom"
    raise Mu2Error(
        f"unknown file type '{''.join(path.suffixes) or path.name}'",
        path=str(path),
        fix=f"pass one of: {SUPPORTED}",
    )


def _check_exists(p: Path, where: str) -> None:
    """A missing path, a dangling link and a link loop get their own message."""
    try:
        os.stat(p)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Mu2Error(
                "symbolic link loop (the link points back to itself)",
                path=where,
                fix="point the link at the real file, or pass the file itself",
            ) from None
        if p.is_symlink():
            raise Mu2Error(
                f"symbolic link to a missing file ({os.readlink(p)})",
                path=where,
                fix="point the link at the real file, or pass the file itself",
            ) from None
        if err.errno == errno.EACCES:
            raise Mu2Error("permission denied", path=where, fix="make the file readable") from None
        raise Mu2Error(
            "no such file or folder", path=where, fix="check the path and spelling"
        ) from None


def load_ct(
    path: str | Path,
    *,
    allow_non_ct: bool = False,
    max_voxels: int | None = None,
    max_memory_bytes: int | None = None,
) -> CTVolume:
    """Read a CT scan into canonical RAS orientation, float32 Hounsfield units.

    ``max_voxels`` caps the header dimensions accepted (default
    :data:`mu2.io.checks.DEFAULT_MAX_VOXELS`); ``max_memory_bytes`` (default: none) caps the
    estimated peak memory of a report on the volume. Both, and the dtype, geometry and
    compression checks, run on the header before any voxel is read.
    ``allow_non_ct`` accepts a DICOM whose Modality is not CT. A NIfTI or NumPy volume
    whose values do not look like HU is read with a :class:`NotCTWarning` (also kept in
    ``meta['warnings']``).
    """
    p = Path(path)
    where = str(p)
    cap = DEFAULT_MAX_VOXELS if max_voxels is None else int(max_voxels)
    _check_exists(p, where)
    if p.is_file() and p.stat().st_size == 0:
        raise Mu2Error("file is empty (0 bytes)", path=where, fix="copy or export it again")
    fmt = _format_of(p)
    readers = {
        "nifti": lambda: read_nifti(p, cap, max_memory_bytes),
        "numpy": lambda: read_numpy(p, cap, max_memory_bytes),
        "dicom": lambda: read_dicom(p, cap, allow_non_ct, max_memory_bytes),
    }
    try:
        data, affine, meta = readers[fmt]()
    except MemoryError:
        raise Mu2Error(
            "not enough memory to read this volume",
            path=where,
            fix="free memory, or lower the cap (--max-voxels) to refuse such files early",
        ) from None
    except (OSError, EOFError, ValueError, RuntimeError, zlib.error, zipfile.BadZipFile) as err:
        # Readers turn the failures they know into clear messages; this keeps any other
        # library error on a corrupt file to one line as well (e.g. a .npz member whose
        # CRC does not match: zipfile raises BadZipFile while numpy reads its header).
        raise Mu2Error(
            f"could not read the {fmt} file ({err.__class__.__name__}: {short_reason(err, where)})",
            path=where,
            fix="check the file is complete and in a supported format: " + SUPPORTED,
        ) from None
    check_finite(data, where)
    check_geometry(affine, where)
    volume = canonical_volume(data, affine, meta)
    if volume.meta.get("modality") is None:
        warn_if_not_hu(volume.array, where, volume.meta)
    log.debug("read %s: %s %s", where, volume.shape, volume.meta.get("orientation"))
    return volume
