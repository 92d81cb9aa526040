"""Preparing a CT volume for the model: frames (T, K, H, W) in [0, 1] and the way back.

``prepare(volume, cfg)`` -> :class:`Prepared` with ``frames`` and a ``mapping`` that puts
maps on the frames (attention heat maps) back on the input grid. Frame axes: K along
inferior -> superior, H anterior -> posterior (anterior up), W patient's right -> left
(radiological display); see :mod:`mu2.preprocess.mapping`. ``augment`` is for training
only: the caller decides (inference never calls it).
"""

from mu2.preprocess.augment import AugmentConfig, augment
from mu2.preprocess.config import (
    PAPER_CLIP_HU,
    PAPER_FRAME_SLICES,
    PAPER_MAX_FRAMES,
    PAPER_SIZE,
    REF_CODE_PERCENTILES,
    SOFT_TISSUE_WINDOW_HU,
    PrepConfig,
    prep_config,
    prep_size,
)
from mu2.preprocess.mapping import PrepMapping
from mu2.preprocess.prepare import Prepared, foreground_box, hu_range, prepare

__all__ = [
    "PAPER_CLIP_HU",
    "PAPER_FRAME_SLICES",
    "PAPER_MAX_FRAMES",
    "PAPER_SIZE",
    "REF_CODE_PERCENTILES",
    "SOFT_TISSUE_WINDOW_HU",
    "AugmentConfig",
    "PrepConfig",
    "PrepMapping",
    "Prepared",
    "augment",
    "foreground_box",
    "hu_range",
    "prep_config",
    "prep_size",
    "prepare",
]
