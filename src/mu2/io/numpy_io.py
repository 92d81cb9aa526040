"""NumPy readers: ``.npy`` (array only) and ``.npz`` (array plus optional ``spacing``).

Convention (documented in ``mu2.io``): the array is (x, y, z) already in RAS order.
A ``.npy`` carries no geometry, so its spacing is taken as 1 mm on every axis; an
``.npz`` may add a ``spacing`` entry of three numbers in mm. The array entry of an
``.npz`` is ``array`` (or ``image``, or the only entry besides ``spacing``).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mu2.errors import Mu2Error
from mu2.io.checks import check_compression, check_dtype, check_memory, short_reason, spatial_shape

NPY_DEFAULT_SPACING_MM = (1.0, 1.0, 1.0)
NPZ_ARRAY_KEYS = ("array", "image")
_FIX = "save the volume with numpy.save / numpy.savez(path, array=..., spacing=...)"


def _npy_header(fileobj: Any, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read shape and dtype from a .npy header without reading the data."""
    try:
        version = np.lib.format.read_magic(fileobj)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fileobj)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fileobj)
    except (ValueError, OSError, EOFError) as err:
        reason = short_reason(err, where)
        raise Mu2Error(f"not a readable .npy array ({reason})", path=where, fix=_FIX) from None
    return tuple(int(s) for s in shape), dtype


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind == "O":
        raise Mu2Error(
            "array holds Python objects (a pickle), which mu2 never loads", path=where, fix=_FIX
        )
    check_dtype(dtype, where)


def _npz_key(names: list[str], where: str) -> str:
    for key in NPZ_ARRAY_KEYS:
        if key in names:
            return key
    rest = [n for n in names if n != "spacing"]
    if len(rest) == 1:
        return rest[0]
    raise Mu2Error(
        f".npz holds {names or 'no arrays'}; cannot tell which is the volume",
        path=where,
        fix="name the volume entry 'array' (numpy.savez(path, array=vol, spacing=(sx, sy, sz)))",
    )


def read_numpy(
    path: Path, max_voxels: int, max_memory_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Return (data as float32 (X, Y, Z), affine from spacing, meta) for .npy / .npz."""
    where = str(path)
    spacing: tuple[float, ...] = NPY_DEFAULT_SPACING_MM
    has_spacing = False
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as fh:
            shape, dtype = _npy_header(fh, where)
        _check_dtype(dtype, where)
        check_memory(shape, max_voxels, where, max_memory_bytes)
        dims = spatial_shape(shape, where)
        need = math.prod(shape) * dtype.itemsize
        if path.stat().st_size < need:
            raise Mu2Error(
                f"file holds {path.stat().st_size:,} bytes but its header needs more than "
                f"{need:,} (truncated)",
                path=where,
                fix=_FIX,
            )
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            reason = short_reason(err, where)
            raise Mu2Error(f"truncated or corrupt .npy ({reason})", path=where, fix=_FIX) from None
        fmt, spacing_source = "npy", "assumed 1 mm (a .npy file has no spacing)"
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as err:
            reason = short_reason(err, where)
            raise Mu2Error(
                f"not a readable .npz archive ({reason})", path=where, fix=_FIX
            ) from None
        with zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            key = _npz_key(names, where)
            with zf.open(key + ".npy") as fh:
                shape, dtype = _npy_header(fh, where)
            _check_dtype(dtype, where)
            check_memory(shape, max_voxels, where, max_memory_bytes)
            dims = spatial_shape(shape, where)
            info = zf.getinfo(key + ".npy")
            check_compression(info.compress_size, math.prod(shape) * dtype.itemsize, where)
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = npz[key]
                has_spacing = "spacing" in npz.files
                if has_spacing:
                    spacing = tuple(float(v) for v in np.asarray(npz["spacing"]).ravel())
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            reason = short_reason(err, where)
            raise Mu2Error(f"corrupt .npz entry ({reason})", path=where, fix=_FIX) from None
        if len(spacing) != 3 or min(spacing) <= 0:
            raise Mu2Error(
                f"'spacing' is {list(spacing)}; expected three positive numbers in mm",
                path=where,
                fix=_FIX,
            )
        fmt = "npz"
        spacing_source = (
            "from the 'spacing' entry" if has_spacing else "assumed 1 mm (no 'spacing' entry)"
        )
    data = np.asarray(data, dtype=np.float32).reshape(dims)  # (X, Y, Z[, 1]) -> (X, Y, Z)
    affine = np.diag([*spacing, 1.0])
    meta = {
        "path": where,
        "format": fmt,
        "modality": None,
        "orientation": "RAS",
        "orientation_note": "assumed: arrays are read as (x, y, z) in RAS order",
        "spacing_source": spacing_source,
    }
    return data, affine, meta
