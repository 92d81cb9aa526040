"""NIfTI reader (nibabel): header checks first, then voxels with the file's scaling applied."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from mu2.errors import Mu2Error
from mu2.io.checks import (
    check_compression,
    check_dtype,
    check_geometry,
    check_memory,
    short_reason,
    spatial_shape,
)

_FIX_CORRUPT = "re-export or re-download the file; check that the copy finished"


def _check_stored_size(img: Any, path: Path, shape: tuple[int, ...]) -> None:
    """Header against file size, before any voxel is read: a truncated .nii, or a .nii.gz
    that would inflate too far (see :func:`mu2.io.checks.check_compression`)."""
    where = str(path)
    voxel_bytes = math.prod(shape) * img.get_data_dtype().itemsize
    stored = path.stat().st_size
    if path.name.lower().endswith(".gz"):
        check_compression(stored, voxel_bytes, where)
        return
    # the voxel offset read from the file (nibabel keeps it on the data proxy; the in-memory
    # header's vox_offset reads 0 for a loaded single-file .nii)
    offset = int(img.dataobj.offset)
    if stored < offset + voxel_bytes:
        raise Mu2Error(
            f"file holds {stored:,} bytes but its header needs {offset + voxel_bytes:,} "
            "(truncated)",
            path=where,
            fix=_FIX_CORRUPT,
        )


# Slices read per step: the file's int16 (or whatever) values of a slab at a time.
READ_SLAB_SLICES = 32


def _read_slabs(img: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """Voxels (X, Y, Z) as C-ordered float32, scl_slope / scl_inter applied exactly once.

    Read slab by slab into one array (the file order is Fortran, so each slab is one run
    of the file): ``get_fdata`` would hold the stored dtype and a Fortran-ordered float
    copy at once, and the C-ordered copy made downstream would be a third.
    """
    out = np.empty(shape, dtype=np.float32)
    extra = (0,) * (len(img.shape) - 3)  # trailing singleton axes: (X, Y, Z, 1)
    for z0 in range(0, shape[2], READ_SLAB_SLICES):
        z1 = min(shape[2], z0 + READ_SLAB_SLICES)
        out[:, :, z0:z1] = img.dataobj[(slice(None), slice(None), slice(z0, z1), *extra)]
    return out


def read_nifti(
    path: Path, max_voxels: int, max_memory_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Return (data in file order as float32, affine, meta) for a .nii / .nii.gz file.

    Header checks (dtype, geometry, size against the memory caps and the file's own size)
    all run before the voxels are read.
    """
    where = str(path)
    try:
        img: Any = nib.load(where, keep_file_open=True)  # reads the header; one handle for slabs
    except (ImageFileError, gzip.BadGzipFile):
        with open(where, "rb") as fh:
            is_gzip = fh.read(2) == b"\x1f\x8b"
        named_gz = path.name.lower().endswith(".gz")
        what = (
            "no NIfTI header"
            if is_gzip == named_gz
            else ("not gzip data" if named_gz else "gzip data, but not named .gz")
        )
        raise Mu2Error(
            f"not a NIfTI file ({what}, although named {path.name})",
            path=where,
            fix="pass a real .nii/.nii.gz volume (is it a text or HTML file saved with that name?)",
        ) from None
    except (OSError, EOFError, zlib.error, ValueError, HeaderDataError) as err:
        # HeaderDataError: nibabel's check of the header fields (a corrupt dim[0] flips the
        # byte order it reads, and the rest of the header then fails its checks)
        raise Mu2Error(
            f"NIfTI header is truncated or corrupt ({short_reason(err, where)})",
            path=where,
            fix=_FIX_CORRUPT,
        ) from None
    header_shape = tuple(int(s) for s in img.shape)
    check_dtype(img.get_data_dtype(), where)
    check_memory(header_shape, max_voxels, where, max_memory_bytes)
    shape = spatial_shape(header_shape, where)
    check_geometry(img.affine, where, "the qform/sform affine")
    _check_stored_size(img, path, header_shape)
    try:
        data = _read_slabs(img, shape)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise Mu2Error(
            f"voxel data is truncated or corrupt ({short_reason(err, where)})",
            path=where,
            fix=_FIX_CORRUPT,
        ) from None
    meta = {"path": where, "format": "nifti", "modality": None}
    return data, np.asarray(img.affine, dtype=np.float64), meta
