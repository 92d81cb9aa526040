"""NIfTI reader (nibabel): header checks first, then voxels with the file's scaling applied."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from mu2.errors import Mu2Error
from mu2.io.checks import check_memory, short_reason, spatial_shape

_FIX_CORRUPT = "re-export or re-download the file; check that the copy finished"


def read_nifti(path: Path, max_voxels: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Return (data in file order as float32, affine, meta) for a .nii / .nii.gz file."""
    where = str(path)
    try:
        img = nib.load(where)  # reads the header only
    except (ImageFileError, gzip.BadGzipFile) as err:
        what = "not gzip data" if "gzip" in str(err) else "no NIfTI header"
        raise Mu2Error(
            f"not a NIfTI file ({what}, although named {path.name})",
            path=where,
            fix="pass a real .nii/.nii.gz volume (is it a text or HTML file saved with that name?)",
        ) from None
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise Mu2Error(
            f"NIfTI header is truncated or corrupt ({short_reason(err, where)})",
            path=where,
            fix=_FIX_CORRUPT,
        ) from None
    header_shape = tuple(int(s) for s in img.shape)
    check_memory(header_shape, max_voxels, where)
    shape = spatial_shape(header_shape, where)
    try:
        # get_fdata applies scl_slope / scl_inter exactly once.
        data = img.get_fdata(dtype=np.float32)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise Mu2Error(
            f"voxel data is truncated or corrupt ({short_reason(err, where)})",
            path=where,
            fix=_FIX_CORRUPT,
        ) from None
    data = data.reshape(shape)  # drop trailing singleton axes: (X, Y, Z, 1) -> (X, Y, Z)
    meta = {"path": where, "format": "nifti", "modality": None}
    return data, np.asarray(img.affine, dtype=np.float64), meta
