"""Voxel grid and solid shapes (ellipsoids, balls) rasterised inside their bounding box.

Shapes are evaluated only on the sub-grid around them, by broadcasting three coordinate
vectors, so drawing a 30 mm cyst into a 512 x 512 x 300 volume touches a few thousand
voxels, not 78 million. Coordinates are in mm; array axes are (x, y, z) = (R, A, S) as in
:mod:`mu2.io.volume`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """A voxel grid: voxel (i, j, k) has its centre at origin + (i, j, k) * spacing (mm)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def affine(self) -> np.ndarray:
        """4 x 4 voxel-to-world (RAS mm) matrix."""
        a = np.diag([*self.spacing, 1.0])
        a[:3, 3] = self.origin
        return a

    def axis(self, dim: int, sl: slice | None = None) -> np.ndarray:
        """Coordinates (mm) of the voxel centres along one axis, optionally a slice of it."""
        idx = np.arange(self.shape[dim], dtype=np.float32)
        if sl is not None:
            idx = idx[sl]
        return self.origin[dim] + idx * np.float32(self.spacing[dim])

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinates of a box: (X, 1, 1), (1, Y, 1), (1, 1, Z)."""
        return (
            self.axis(0, box[0])[:, None, None],
            self.axis(1, box[1])[None, :, None],
            self.axis(2, box[2])[None, None, :],
        )

    def index_of(self, point_mm: tuple[float, float, float]) -> tuple[int, int, int]:
        return tuple(  # type: ignore[return-value]
            int(round((p - o) / s))
            for p, o, s in zip(point_mm, self.origin, self.spacing, strict=True)
        )

    def box(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> Box | None:
        """Index box covering [lo, hi] mm, clipped to the grid; None when outside."""
        out = []
        for d in range(3):
            a = int(np.floor((lo_mm[d] - self.origin[d]) / self.spacing[d]))
            b = int(np.ceil((hi_mm[d] - self.origin[d]) / self.spacing[d])) + 1
            a, b = max(a, 0), min(b, self.shape[d])
            if a >= b:
                return None
            out.append(slice(a, b))
        return tuple(out)  # type: ignore[return-value]


@dataclass
class BoxMask:
    """A boolean mask that lives in a box of the full grid."""

    box: Box
    mask: np.ndarray  # (bx, by, bz) bool

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def full(self, shape: tuple[int, int, int]) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        out[self.box] = self.mask
        return out

    def values(self, volume: np.ndarray) -> np.ndarray:
        return volume[self.box][self.mask]

    def intersect(self, other: BoxMask) -> BoxMask | None:
        """Voxels in both masks (None when they do not overlap)."""
        box = tuple(
            slice(max(a.start, b.start), min(a.stop, b.stop))
            for a, b in zip(self.box, other.box, strict=True)
        )
        if any(s.start >= s.stop for s in box):
            return None

        def local(bm: BoxMask) -> np.ndarray:
            return bm.mask[
                tuple(
                    slice(s.start - o.start, s.stop - o.start)
                    for s, o in zip(box, bm.box, strict=True)
                )
            ]

        m = local(self) & local(other)
        return BoxMask(box, m) if m.any() else None  # type: ignore[arg-type]

    def paint(
        self, volume: np.ndarray, value: float | np.ndarray, where: np.ndarray | None = None
    ) -> None:
        """Set ``volume`` to ``value`` inside the mask (and where ``where`` is True)."""
        m = self.mask if where is None else self.mask & where[self.box]
        sub = volume[self.box]
        sub[m] = value if np.isscalar(value) else np.asarray(value)[self.box][m]


def ellipsoid(
    grid: Grid,
    center: tuple[float, float, float],
    radii: tuple[float, float, float],
    angle: float = 0.0,
) -> BoxMask | None:
    """Solid ellipsoid, optionally rotated by ``angle`` (radians) about the z axis."""
    c = np.asarray(center, dtype=np.float64)
    r = np.asarray(radii, dtype=np.float64)
    reach = r.copy()
    if angle:
        reach[:2] = max(r[0], r[1])
    box = grid.box(c - reach, c + reach)
    if box is None:
        return None
    x, y, z = grid.coords(box)
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    if angle:
        ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        dx, dy = ca * dx + sa * dy, -sa * dx + ca * dy
    inside = (dx / r[0]) ** 2 + (dy / r[1]) ** 2 + (dz / r[2]) ** 2 <= 1.0  # (bx, by, bz)
    if not inside.any():
        return None
    return BoxMask(box, inside)


def ball(grid: Grid, center: tuple[float, float, float], radius: float) -> BoxMask:
    """Solid ball; always holds at least the voxel nearest its centre (tiny lesions)."""
    bm = ellipsoid(grid, center, (radius, radius, radius))
    idx = grid.index_of(center)
    idx = tuple(min(max(i, 0), n - 1) for i, n in zip(idx, grid.shape, strict=True))
    if bm is None:
        box = tuple(slice(i, i + 1) for i in idx)
        return BoxMask(box, np.ones((1, 1, 1), dtype=bool))  # type: ignore[arg-type]
    local = tuple(i - s.start for i, s in zip(idx, bm.box, strict=True))
    if all(0 <= li < n for li, n in zip(local, bm.mask.shape, strict=True)):
        bm.mask[local] = True
    return bm


def tube_z(
    grid: Grid,
    cx: float,
    cy: np.ndarray,
    radius: np.ndarray,
    z_range: tuple[float, float],
) -> BoxMask | None:
    """Vertical tube; its centre ``cy`` (y, mm) and ``radius`` (mm) have one value per slice."""
    cy = np.broadcast_to(np.asarray(cy, dtype=np.float32), (grid.shape[2],))
    r = np.broadcast_to(np.asarray(radius, dtype=np.float32), (grid.shape[2],))
    rmax = float(r.max())
    if rmax <= 0:
        return None
    lo = np.array([cx - rmax, float(cy.min()) - rmax, z_range[0]])
    hi = np.array([cx + rmax, float(cy.max()) + rmax, z_range[1]])
    box = grid.box(lo, hi)
    if box is None:
        return None
    x, y, z = grid.coords(box)
    rz = r[box[2]][None, None, :]  # (1, 1, bz)
    cyz = cy[box[2]][None, None, :]
    inside = (x - cx) ** 2 + (y - cyz) ** 2 <= rz**2  # (bx, by, bz)
    inside &= (z >= z_range[0]) & (z <= z_range[1])
    return BoxMask(box, inside) if inside.any() else None


def mask_to_box(mask: np.ndarray) -> BoxMask | None:
    """The bounding box of a full-grid mask and the mask inside it (None when empty)."""
    if not mask.any():
        return None
    box = []
    for d in range(3):
        other = tuple(a for a in range(3) if a != d)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    b = tuple(box)
    return BoxMask(b, mask[b].copy())  # type: ignore[arg-type]
