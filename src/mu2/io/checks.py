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
    if len(dims) < 3 or min(dims) < 2:
        raise Mu2Error(
            f"2-D image {' x '.join(map(str, dims))}; mu2 needs a 3-D CT volume",
            path=path,
            fix="pass the whole series (a 3-D NIfTI or the folder of DICOM slices)",
        )
    return dims[0], dims[1], dims[2]


def check_memory(shape: tuple[int, ...], max_voxels: int, path: str) -> None:
    """Refuse a header whose dimensions would need more voxels than ``max_voxels``."""
    n = math.prod(int(s) for s in shape)
    if n > max_voxels:
        gib = n * 4 / 2**30
        raise Mu2Error(
            f"header asks for {' x '.join(map(str, shape))} = {n:,} voxels ({gib:.1f} GiB as "
            f"float32), over the memory cap of {max_voxels:,} voxels",
            path=path,
            fix="check that the file is not corrupt, or raise the cap (--max-voxels)",
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
