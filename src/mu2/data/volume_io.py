"""Reading the image of a unified row, applying what its ``meta`` says exactly once.

Most rows point to a CT in HU that :func:`mu2.io.load_ct` reads as is. Two adapters
record more: CT-RATE v1 volumes hold raw stored values and the rescale slope/intercept
sit in a metadata CSV (``meta.hu_already = false``: rescaled here, once; v2 volumes are
already HU and are never rescaled again), and M3D-Cap ships arrays already scaled to
[0, 1] as (1, D, H, W) (``meta.intensity = "unit"``: returned as unit intensities).

This is the one reader of a row's image: training, preference sampling, prediction,
``mu2 data check`` and evaluation all go through :func:`load_record_image` /
:func:`prepare_record`, so no path can read a row's voxels without its ``meta``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mu2.data.schema import Record, resolve_image
from mu2.errors import Mu2Error
from mu2.io import CTVolume, NotCTWarning, load_ct
from mu2.preprocess import Prepared, PrepConfig, prepare

UNIT_RANGE = (0.0, 1.0)
"""Values of a unit-intensity array that become 0 and 1: already scaled, kept as they are."""


@dataclass
class RecordImage:
    """``array``: float32 (X, Y, Z); ``intensity``: "hu" or "unit" (already in [0, 1])."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    intensity: str
    path: Path


def load_unit_npy(path: Path, spacing: Any = None) -> RecordImage:
    """An M3D-style array, (1, D, H, W) or (D, H, W) in [0, 1], as (X, Y, Z) = (W, H, D)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise Mu2Error(f"not a readable .npy array ({err})", path=str(path)) from None
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]  # (1, D, H, W) -> (D, H, W)
    if arr.ndim != 3:
        raise Mu2Error(f"expected (1, D, H, W) or (D, H, W), got shape {arr.shape}", path=str(path))
    arr = np.ascontiguousarray(arr.transpose(2, 1, 0), dtype=np.float32)  # (D, H, W) -> (W, H, D)
    if not np.isfinite(arr).all():
        raise Mu2Error("array holds NaN or Inf values", path=str(path))
    sp = tuple(float(s) for s in spacing) if spacing else (1.0, 1.0, 1.0)
    return RecordImage(arr, sp, "unit", path)  # type: ignore[arg-type]


def load_record_image(
    record: Record | Mapping[str, Any], jsonl_path: str | Path
) -> RecordImage:
    """The row's image as float32 (X, Y, Z), in HU unless ``meta.intensity`` is "unit".

    ``record``: a :class:`Record` or a plain JSONL row (``{"image", "meta"?, ...}``).
    """
    path = resolve_image(record, jsonl_path)  # type: ignore[arg-type]
    meta = record.meta if isinstance(record, Record) else (record.get("meta") or {})
    if not isinstance(meta, Mapping):
        raise Mu2Error('"meta" must be an object', path=str(jsonl_path))
    if meta.get("intensity") == "unit":
        return load_unit_npy(path, meta.get("spacing"))
    raw = meta.get("hu_already") is False
    with warnings.catch_warnings():
        if raw:  # stored values before rescaling do not look like HU: expected here
            warnings.simplefilter("ignore", NotCTWarning)
        vol = load_ct(path)
    arr = vol.array
    if raw:
        slope = float(meta.get("rescale_slope", 1.0))
        intercept = float(meta.get("rescale_intercept", 0.0))
        arr = arr * np.float32(slope) + np.float32(intercept)
    return RecordImage(arr, vol.spacing, "hu", path)


def prepare_record(
    record: Record | Mapping[str, Any], jsonl_path: str | Path, cfg: PrepConfig
) -> Prepared:
    """The row's image as model frames (T, K, H, W) in [0, 1], its ``meta`` applied once.

    HU rows (CT-RATE v1 rescaled here) go through ``cfg`` as any CT. A unit-intensity
    array (M3D-Cap) is already scaled by its producer: it is cropped, resized and padded
    like any volume but its values map 0 -> 0 and 1 -> 1 whatever ``cfg.scaling`` says
    (windowing [0, 1] values as HU would flatten them to a constant).
    """
    image = load_record_image(record, jsonl_path)
    volume = CTVolume.from_array(image.array, image.spacing, meta={"path": str(image.path)})
    if image.intensity == "unit":
        cfg = replace(cfg, scaling="window", window_hu=UNIT_RANGE)
    return prepare(volume, cfg)
