"""Painting tissues into a volume and its label map, restricted the way anatomy needs.

A shape is painted only where it may go: inside the abdominal cavity, below or above the
diaphragm, or only over certain tissues (a gallbladder over the liver, the pancreas only
into fat). What was actually painted is returned, so a finding's mask is exactly its
voxels in the image.
"""

from __future__ import annotations

import numpy as np

from mu2.data.synthetic.anatomy import LABELS, label_ids
from mu2.data.synthetic.shapes import BoxMask, Grid


class Canvas:
    """HU volume + label map being painted, with the masks painting needs."""

    def __init__(
        self,
        grid: Grid,
        hu: np.ndarray,
        labels: np.ndarray,
        cavity2d: np.ndarray,
        dome2d: np.ndarray,
    ):
        self.grid, self.hu, self.labels = grid, hu, labels
        self.cavity2d, self.dome2d = cavity2d, dome2d

    def paint(
        self,
        bm: BoxMask | None,
        name: str,
        value: float,
        *,
        only: tuple[str, ...] = (),
        cavity: bool = False,
        below_dome: bool = False,
        above_dome: bool = False,
    ) -> BoxMask | None:
        """Paint ``name``/``value`` into ``bm`` (restricted as asked); returns what was painted."""
        if bm is None:
            return None
        b = bm.box
        m = bm.mask.copy()
        if only:
            lut = np.zeros(256, dtype=bool)  # uint8 label -> allowed; faster than np.isin
            lut[label_ids(*only)] = True
            m &= lut[self.labels[b]]
        if cavity:
            m &= self.cavity2d[b[0], b[1]][:, :, None]
        if below_dome or above_dome:
            z = self.grid.axis(2, b[2])[None, None, :]
            dome = self.dome2d[b[0], b[1]][:, :, None]
            m &= (z < dome) if below_dome else (z >= dome)
        self.hu[b][m] = value
        self.labels[b][m] = LABELS[name]
        return BoxMask(b, m) if m.any() else None
