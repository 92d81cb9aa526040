"""mu2's preparation as a MONAI dictionary transform, for MONAI pipelines and data loaders.

    from monai.transforms import Compose, LoadImaged, Orientationd
    from mu2.preprocess.monai_transform import Mu2Prepared

    pipeline = Compose([
        LoadImaged("image", ensure_channel_first=True),
        Orientationd("image", axcodes="RAS"),       # optional: any orientation works
        Mu2Prepared("image", prep="paper"),          # -> image: frames (T, K, H, W)
    ])

The transform reads the voxels and the affine of a MONAI ``MetaTensor`` (channel first,
one channel, world in RAS mm as MONAI's readers give it), reorients them to mu2's
canonical RAS grid with the same code as ``mu2.io.load_ct``, and calls ``prepare``, so the
frames equal ``prepare(load_ct(path), cfg).frames``. The ``Prepared`` record (mapping back
to the input grid for heat maps, HU range) is kept under ``<key>_prepared``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from mu2.errors import Mu2Error
from mu2.io.volume import canonical_volume
from mu2.preprocess.config import PrepConfig, prep_config
from mu2.preprocess.prepare import prepare

PREPARED_SUFFIX = "_prepared"


class Mu2Prepared(MapTransform):
    """``data[key]`` (1, X, Y, Z) HU image with an affine -> frames (T, K, H, W) in [0, 1]."""

    def __init__(
        self,
        keys: KeysCollection = "image",
        prep: str | PrepConfig = "paper",
        keep_prepared: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.cfg = prep if isinstance(prep, PrepConfig) else prep_config(prep)
        self.keep_prepared = keep_prepared

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            volume = canonical_volume(*_array_and_affine(d[key], key), {"format": "monai"})
            prepared = prepare(volume, self.cfg)
            d[key] = prepared.frames  # (T, K, H, W)
            if self.keep_prepared:
                d[f"{key}{PREPARED_SUFFIX}"] = prepared
        return d


def _array_and_affine(img: Any, key: Hashable) -> tuple[np.ndarray, np.ndarray]:
    """(1, X, Y, Z) MetaTensor -> (X, Y, Z) float32 HU array and its 4x4 affine (RAS mm)."""
    affine = getattr(img, "affine", None)
    if affine is None:
        raise Mu2Error(
            f"'{key}' carries no affine (not a MONAI MetaTensor)",
            fix="load it with LoadImaged(..., ensure_channel_first=True)",
        )
    arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    shape: Sequence[int] = arr.shape
    if arr.ndim != 4 or shape[0] != 1:
        raise Mu2Error(
            f"'{key}' has shape {tuple(shape)}; Mu2Prepared takes one channel first (1, X, Y, Z)",
            fix="use LoadImaged(..., ensure_channel_first=True) or EnsureChannelFirstd",
        )
    affine = affine.detach().cpu().numpy() if isinstance(affine, torch.Tensor) else affine
    return arr[0].astype(np.float32, copy=False), np.asarray(affine, dtype=np.float64)
