"""Checks every reader applies, so each bad file gets the same clear one-line error.

Dimension and memory checks run on header information, before any voxel is read;
the finite-value and Hounsfield checks run on the loaded voxels.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from mu2.errors import Mu2Error

# 512 x 512 x 2048 voxels: 2 GiB as float32. A whole-body thin-slice CT fits; a header
# that asks for more is treated as corrupt or too large unless the caller raises the cap.
DEFAULT_MAX_VOXELS = 512 * 512 * 2048

# Any body CT contains fat (about -100 HU) and almost always air (-1000 HU) or padding
# (-1024 / -2048 / -3024). A minimum above this means the values are not HU: MR, an
# already normalised volume, or raw scanner values whose RescaleIntercept was dropped.
HU_MIN_AT_MOST = -200.0

# Compression-bomb guard: a file whose header promises more than
# COMPRESSION_CHECK_MIN_BYTES of voxels may be at most this many times smaller than them.
# CT in HU compresses 2-10x (air padding helps), smooth synthetic phantoms about 100x; a
# gzip of one repeated value reaches about 1000x. Small volumes are never refused.
MAX_COMPRESSION_RATIO = 250.0
COMPRESSION_CHECK_MIN_BYTES = 64 * 2**20

# Peak memory of one report per input voxel (float32 volume, its clipped crop, the heat
# map on the input grid and its NIfTI copy, plus slack): what a header is costed at
# before reading, against a memory budget (`mu2 serve --max-memory-gb`).
PEAK_BYTES_PER_VOXEL = 20


def short_reason(err: BaseException, path: str = "", limit: int = 100) -> str:
    """First line of a library's error message, without the path: fits in one CLI line."""
    text = str(err).replace(path, "<file>") if path else str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else err.__class__.__name__
    return first if len(first) <= limit else first[: limit - 3] + "..."


class NotCTWarning(UserWarning):
    """The voxel values do not look like Hounsfield units."""


def spatial_shape(shape: tuple[int, ...], path: str) -> tuple[int, int, int]:
    """Return the 3-D shape, dropping trailing singleton axes; 2-D and real 4-D are errors."""
    dims = [int(s) for s in shape]
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()  # (X, Y, Z, 1) -> (X, Y, Z)
    if len(dims) > 3:
        raise Mu2Error(
            f"{len(dims)}-D volume {' x '.join(map(str, dims))}; mu2 reads one 3-D CT",
            path=path,
            fix="split it into 3-D volumes (one time point or channel per file)",
        )
    if len(dims) == 3 and max(dims) < 2:
        raise Mu2Error(
            "a single voxel (1 x 1 x 1); mu2 needs a 3-D CT volume",
            path=path,
            fix="pass the whole scan (a 3-D NIfTI or the folder of DICOM slices)",
        )
    if min(dims, default=0) < 1:
        raise Mu2Error(
            f"header has an empty axis ({' x '.join(map(str, dims))})",
            path=path,
            fix="the file is corrupt: export or convert it again",
        )
    if len(dims) < 3 or min(dims) < 2:
        raise Mu2Error(
            f"2-D image {' x '.join(map(str, dims))}; mu2 needs a 3-D CT volume",
            path=path,
            fix="pass the whole series (a 3-D NIfTI or the folder of DICOM slices)",
        )
    return dims[0], dims[1], dims[2]


def check_memory(
    shape: tuple[int, ...], max_voxels: int, path: str, max_memory_bytes: int | None = None
) -> None:
    """Refuse a header whose dimensions would need more voxels than ``max_voxels``, or
    (when given) an estimated peak above ``max_memory_bytes`` (see PEAK_BYTES_PER_VOXEL)."""
    n = math.prod(int(s) for s in shape)
    need = n * PEAK_BYTES_PER_VOXEL
    if max_memory_bytes is not None and need > max_memory_bytes:
        raise Mu2Error(
            f"header asks for {' x '.join(map(str, shape))} voxels; a report on it needs about "
            f"{need / 2**30:.1f} GiB, over the memory budget of {max_memory_bytes / 2**30:.1f} GiB",
            path=path,
            fix="send a smaller (cropped or resampled) scan, or give the server more memory "
            "(max_memory_gb)",
        )
    if n > max_voxels:
        gib = n * 4 / 2**30
        raise Mu2Error(
            f"header asks for {' x '.join(map(str, shape))} = {n:,} voxels ({gib:.1f} GiB as "
            f"float32), over the memory cap of {max_voxels:,} voxels",
            path=path,
            fix="check that the file is not corrupt, or raise the cap (--max-voxels)",
        )


def check_dtype(dtype: np.dtype, path: str) -> None:
    """Voxels must be real numbers: RGB (structured), complex and text dtypes are refused."""
    dtype = np.dtype(dtype)
    if dtype.names is not None or (dtype.kind == "u" and dtype.itemsize == 1 and dtype.shape):
        raise Mu2Error(
            f"voxels are colour (RGB) values ({dtype}), not CT intensities",
            path=path,
            fix="export the original grey-scale CT (Hounsfield units), not a rendered image",
        )
    if dtype.kind == "c":
        raise Mu2Error(
            f"voxels are complex numbers ({dtype}), not CT intensities",
            path=path,
            fix="pass the magnitude image in Hounsfield units",
        )
    if dtype.kind not in "iufb":
        raise Mu2Error(
            f"voxels have data type {dtype}, not numbers",
            path=path,
            fix="save the volume with a numeric data type (int16 or float32 HU)",
        )


def check_geometry(affine: np.ndarray, path: str, what: str = "affine") -> None:
    """The voxel-to-world matrix must be finite and invertible (every spacing > 0), else
    reorienting to RAS fails (or silently collapses an axis)."""
    a = np.asarray(affine, dtype=np.float64)
    fix = "repair the geometry (e.g. set a valid qform/sform or PixelSpacing) and export again"
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise Mu2Error(f"{what} is not a finite 4x4 matrix", path=path, fix=fix)
    spacing = np.sqrt((a[:3, :3] ** 2).sum(axis=0))  # length of each voxel axis in mm
    if (spacing <= 1e-6).any():
        shown = " x ".join(f"{v:g}" for v in spacing)
        raise Mu2Error(f"voxel spacing {shown} mm has a zero axis ({what})", path=path, fix=fix)
    if abs(np.linalg.det(a[:3, :3])) <= 1e-9 * float(np.prod(spacing)):
        raise Mu2Error(f"{what} is singular: two voxel axes point the same way", path=path, fix=fix)


def check_compression(stored_bytes: int, voxel_bytes: int, path: str) -> None:
    """Refuse a compressed file that would inflate beyond MAX_COMPRESSION_RATIO (a bomb, or
    a header that lies about the data behind it), before anything is decompressed."""
    if voxel_bytes < COMPRESSION_CHECK_MIN_BYTES:
        return
    ratio = voxel_bytes / max(int(stored_bytes), 1)
    if ratio > MAX_COMPRESSION_RATIO:
        raise Mu2Error(
            f"{stored_bytes:,}-byte file claims {voxel_bytes / 2**20:,.0f} MiB of voxels "
            f"({ratio:,.0f}x compression, over the {MAX_COMPRESSION_RATIO:g}x accepted): "
            "a truncated file, a corrupt header or a compression bomb",
            path=path,
            fix="check the file is a complete CT export; re-export it if the header is wrong",
        )


def check_finite(array: np.ndarray, path: str) -> None:
    """NaN or Inf voxels would poison every later step; refuse them with a count."""
    finite = np.isfinite(array)
    if finite.all():
        return
    n_nan = int(np.isnan(array).sum())
    n_inf = int(array.size - finite.sum()) - n_nan
    raise Mu2Error(
        f"{n_nan:,} NaN and {n_inf:,} Inf voxels",
        path=path,
        fix="replace them (e.g. with -1024 HU, air) before passing the file to mu2",
    )


def hu_warning(array: np.ndarray, path: str) -> str | None:
    """Return a warning line when the value range does not look like HU (None if it does)."""
    lo, hi = float(array.min()), float(array.max())
    if lo <= HU_MIN_AT_MOST:
        return None
    return (
        f"{path}: values range {lo:g}..{hi:g}, which does not look like CT Hounsfield units "
        f"(no air or fat below {HU_MIN_AT_MOST:g}); is this MR or an already normalised volume?"
    )


def warn_if_not_hu(array: np.ndarray, path: str, meta: dict) -> None:
    """Record and emit the not-HU warning (the CLI prints it; the library never hides it)."""
    message = hu_warning(array, path)
    if message is not None:
        meta.setdefault("warnings", []).append(message)
        warnings.warn(message, NotCTWarning, stacklevel=3)
