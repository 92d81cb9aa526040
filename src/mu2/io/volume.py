"""The in-memory CT volume: one canonical orientation for everything downstream.

Every reader hands its voxels to :func:`canonical_volume`, so the rest of mu2 sees a
single convention: a float32 array in Hounsfield units, axis order (x, y, z) = (R, A, S),
i.e. nibabel's closest canonical RAS+ (index grows toward the patient's Right, Anterior
and Superior). The source file's layout is kept too, so maps computed on the canonical
grid (attention heat maps) can be written back aligned with the file the user gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_lib

from mu2.errors import Mu2Error

CANONICAL_ORIENTATION = "RAS"
_RAS_ORNT = ornt_lib.axcodes2ornt(tuple(CANONICAL_ORIENTATION))


@dataclass
class CTVolume:
    """A CT scan in canonical RAS orientation.

    ``array``: float32 HU, shape (X, Y, Z) with X toward Right, Y toward Anterior,
    Z toward Superior. ``spacing``: (sx, sy, sz) in mm along those axes. ``affine``: 4x4
    voxel-to-world (RAS mm) of ``array``. ``meta``: path, format, original orientation
    code, original shape, modality, series info and any warnings raised while reading.
    ``source_affine`` / ``source_shape``: the layout of the file it came from (default:
    the canonical one), used by :meth:`to_source` and :func:`save_like`.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    source_affine: np.ndarray | None = None
    source_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.source_affine is None:
            self.source_affine = np.asarray(self.affine, dtype=np.float64).copy()
        if self.source_shape is None:
            self.source_shape = tuple(int(s) for s in self.array.shape)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    def _source_ornt(self) -> np.ndarray:
        return ornt_lib.io_orientation(self.source_affine)

    def to_source(self, arr: np.ndarray) -> np.ndarray:
        """Map an array on the canonical grid (X, Y, Z) back to the source file's layout."""
        if tuple(arr.shape[:3]) != self.shape:
            raise Mu2Error(
                f"array shape {tuple(arr.shape)} does not match the canonical volume {self.shape}",
                fix="pass an array on the canonical grid of this volume",
            )
        back = ornt_lib.ornt_transform(_RAS_ORNT, self._source_ornt())
        # (X, Y, Z) canonical -> source axis order and directions
        return np.ascontiguousarray(ornt_lib.apply_orientation(arr, back))

    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
        *,
        meta: dict[str, Any] | None = None,
    ) -> CTVolume:
        """Wrap an array already in canonical (R, A, S) order, e.g. a synthetic phantom."""
        affine = np.diag([*map(float, spacing), 1.0])
        base = {"path": None, "format": "array", "orientation": CANONICAL_ORIENTATION}
        return canonical_volume(np.asarray(array), affine, {**base, **(meta or {})})


def orientation_code(affine: np.ndarray) -> str:
    """Three-letter code such as 'RAS' or 'LPS' of a voxel-to-world (RAS) affine."""
    return "".join(nib.aff2axcodes(affine))


def load_label_map(path: str | Path) -> np.ndarray:
    """Label-map file -> integer labels (X, Y, Z) on the canonical RAS grid (load_ct's), so
    it lines up with the scan it was written with (heat-map scoring, grounding)."""
    img: Any = nib.load(str(path))  # a Nifti1Image (nibabel types it as FileBasedImage)
    labels = np.asarray(img.dataobj).astype(np.float32)  # label ids are small integers: exact
    return np.rint(canonical_volume(labels, img.affine, {"path": str(path)}).array).astype(np.int32)


def load_label_mask(path: str | Path, label_ids: Sequence[int]) -> np.ndarray:
    """Label-map file -> bool mask (X, Y, Z) of ``label_ids`` on the canonical RAS grid."""
    return np.isin(load_label_map(path), list(label_ids))


def canonical_volume(data: np.ndarray, affine: np.ndarray, meta: dict[str, Any]) -> CTVolume:
    """Reorient ``data`` (source layout, world = RAS mm) to closest-canonical RAS.

    nibabel's orientation helpers do the axis bookkeeping (the same maths as
    ``nib.as_closest_canonical``) so a NIfTI in LPS, a DICOM series and a permuted-axes
    copy all end up as the same array.
    """
    affine = np.asarray(affine, dtype=np.float64)
    ornt = ornt_lib.io_orientation(affine)
    # source (i, j, k) -> (X, Y, Z) with X->R, Y->A, Z->S
    arr = ornt_lib.apply_orientation(data, ornt)
    canon_affine = affine @ ornt_lib.inv_ornt_aff(ornt, data.shape)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    spacing = tuple(float(v) for v in nib.affines.voxel_sizes(canon_affine))
    meta = dict(meta)
    meta.setdefault("orientation", orientation_code(affine))
    meta.setdefault("original_shape", [int(s) for s in data.shape])
    meta["canonical_orientation"] = CANONICAL_ORIENTATION
    meta.setdefault("warnings", [])
    return CTVolume(
        array=arr,
        spacing=spacing,  # type: ignore[arg-type]
        affine=canon_affine,
        meta=meta,
        source_affine=affine.copy(),
        source_shape=tuple(int(s) for s in data.shape),
    )


def save_like(volume: CTVolume, arr: np.ndarray, path: str | Path) -> Path:
    """Write ``arr`` (on the canonical grid) as NIfTI aligned with the source scan.

    The file gets the source file's affine and array shape, so a heat map written here
    overlays the original scan voxel for voxel in any viewer.
    """
    out = Path(path)
    src = volume.to_source(np.asarray(arr))
    if tuple(src.shape[:3]) != tuple(volume.source_shape[:3]):  # type: ignore[index]
        raise Mu2Error(
            f"array maps to shape {src.shape}, but the source has {volume.source_shape}",
            path=str(out),
        )
    img = nib.Nifti1Image(src, volume.source_affine)
    img.set_qform(volume.source_affine, code=1)
    img.set_sform(volume.source_affine, code=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out
