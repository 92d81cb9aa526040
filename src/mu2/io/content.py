"""Is this volume a CT at all? Content checks before a report is written.

The readers accept any 3-D volume (``mu2 inspect`` must describe an MR or a label map);
a *report* is only written on a CT in Hounsfield units. These checks look at the voxel
values alone, so they hold for NIfTI and NumPy files that carry no modality:

* blank or constant volumes (nothing to report on);
* physically impossible values (outside every CT scale, e.g. 1e31 "HU");
* label maps / segmentations: few distinct non-negative integers;
* MR or normalised volumes: no air or fat (nothing at or below ``HU_MIN_AT_MOST``);
* a DICOM whose Modality tag is not CT (read with ``allow_non_ct``).

``allow_non_ct`` lets such a volume through; the reason then becomes a warning that every
output carries (JSON ``warnings``, text, FHIR, PNG title, web page).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mu2.errors import Mu2Error
from mu2.io.checks import HU_MIN_AT_MOST, NotCTWarning

# The widest CT scale in use: 16-bit signed storage, extended-range (metal) reconstructions
# up to about 30,000 HU. Values outside it are not Hounsfield units.
CT_VALUE_RANGE: tuple[float, float] = (-32768.0, 32767.0)
# A segmentation holds a handful of labels (TotalSegmentator: 117); a CT thousands of values.
LABEL_MAP_MAX_VALUES = 256
_SAMPLE_VOXELS = 2_000_000  # distinct-value count on a strided sample (speed on big scans)
FIX = "pass a CT in Hounsfield units, or add --allow-non-ct to report on it anyway"


def _sample(array: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil((array.size / _SAMPLE_VOXELS) ** (1 / 3))))
    return array[::step, ::step, ::step]


def non_ct_reason(array: np.ndarray, modality: str | None = None) -> str | None:
    """What the volume looks like when it does not look like a CT (None when it does)."""
    if modality is not None and modality != "CT":
        return f"its DICOM Modality is '{modality}', not CT"
    lo, hi = float(array.min()), float(array.max())
    if hi - lo < 1.0:
        return f"it is blank: every voxel is {lo:g}"
    if lo < CT_VALUE_RANGE[0] or hi > CT_VALUE_RANGE[1]:
        return (
            f"its values {lo:.3g}..{hi:.3g} are outside any CT scale "
            f"({CT_VALUE_RANGE[0]:g}..{CT_VALUE_RANGE[1]:g} HU)"
        )
    if modality == "CT":
        return None
    sample = _sample(array)
    if lo >= 0 and np.array_equal(sample, np.round(sample)):
        n = len(np.unique(sample))
        if n <= LABEL_MAP_MAX_VALUES:
            return (
                f"it looks like a label map (segmentation): {n} distinct integer values "
                f"{lo:g}..{hi:g}, no air at -1000 HU"
            )
    if lo > HU_MIN_AT_MOST:
        return (
            f"its values {lo:g}..{hi:g} have no air (-1000 HU) or fat (-100 HU): "
            "it looks like MR or an already normalised volume"
        )
    return None


def check_ct_content(volume: Any, *, allow_non_ct: bool = False) -> str | None:
    """Refuse a volume that is not a CT (:class:`Mu2Error`, one line naming the file, what
    it looks like and the fix), or with ``allow_non_ct`` return the warning line, also
    kept in ``volume.meta['warnings']`` and ``meta['non_ct']`` (once per volume)."""
    meta = volume.meta
    if "non_ct" in meta:  # already checked and allowed
        return meta["non_ct"]
    reason = non_ct_reason(volume.array, meta.get("modality"))
    if reason is None:
        return None
    where = meta.get("path") or "the volume"
    if not allow_non_ct:
        raise Mu2Error(f"not a CT: {reason}", path=str(where), fix=FIX)
    message = f"{where}: not a CT ({reason}); reported anyway because of --allow-non-ct"
    meta["non_ct"] = message
    meta.setdefault("warnings", []).append(message)
    warnings.warn(message, NotCTWarning, stacklevel=2)
    return message
