"""The geometry between a canonical CT grid (X, Y, Z) and model frames (T, K, H, W).

Axis convention of the frames (radiological display, as the M3D data the vision tower
was pretrained on): K runs along Z from inferior to superior; H runs along Y from
anterior (row 0, displayed at the top) to posterior; W runs along X from the patient's
right (column 0, displayed on the left) to the patient's left. So one slice
``frames[t, k]`` is the axial image as a radiologist reads it.

The same steps map either way: crop -> resize (trilinear) -> reorient -> centred zero
padding forward, and the inverse for heat maps. Resizing commutes with the flips and
axis permutation, so the forward path resizes on the input layout and reorients the
smaller result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def resize_xyz(block: torch.Tensor, size: tuple[int, int, int], mode: str) -> torch.Tensor:
    """Resize a 3-D block (trilinear or nearest); identity when the size already matches."""
    if tuple(block.shape) == tuple(size):
        return block
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    # (X, Y, Z) -> (1, 1, X, Y, Z) -> resized -> (X', Y', Z')
    return F.interpolate(block[None, None], size=size, mode=mode, **kwargs)[0, 0]


# Output slices per step of the chunked trilinear resample in ``PrepMapping.to_input``.
TO_INPUT_CHUNK_SLICES = 16


def trilinear_z_chunks(
    block: torch.Tensor,
    size: tuple[int, int, int],
    chunk_slices: int,
    clip: tuple[float, float] | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Trilinear resize of ``block`` (X', Y', Z') to ``size`` (X, Y, Z), in chunks along Z.

    Yields (output z slice, (X, Y, n) chunk). Trilinear interpolation is separable: each
    chunk is a bilinear in-plane resize (torch) of the few source slices it needs, blended
    along Z with PyTorch's own ``align_corners=False`` source index (src = (z + 0.5) *
    D / Z - 0.5, clamped at 0), so the chunks equal one ``F.interpolate`` call up to float
    rounding. Written out here because torch offers no chunked or streamed resize.
    ``clip`` (lo, hi) clamps the source slices first (as clipping the whole block would),
    so ``block`` may be a view of the caller's array: it is never copied whole.
    """
    xs, ys, zs = (int(v) for v in block.shape)
    xo, yo, zo = (int(v) for v in size)
    scale = zs / zo
    for start in range(0, zo, max(1, chunk_slices)):
        stop = min(zo, start + max(1, chunk_slices))
        src = ((torch.arange(start, stop, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
        i0 = src.floor().long().clamp(max=zs - 1)
        i1 = (i0 + 1).clamp(max=zs - 1)
        lam = (src - i0).to(torch.float32)  # (n,)
        used = torch.unique(torch.cat([i0, i1]))  # sorted source slices this chunk reads
        # (X', Y', k) -> (k, 1, X', Y') -> bilinear -> (k, 1, X, Y) -> (X, Y, k)
        planes = block.index_select(2, used).permute(2, 0, 1)[:, None]
        if clip is not None:
            planes = planes.clamp(*clip)  # a copy of these few slices only
        if (xs, ys) != (xo, yo):
            planes = F.interpolate(planes, size=(xo, yo), mode="bilinear", align_corners=False)
        planes = planes[:, 0].permute(1, 2, 0)
        a = planes[:, :, torch.searchsorted(used, i0)]  # (X, Y, n)
        b = planes[:, :, torch.searchsorted(used, i1)]
        yield slice(start, stop), a + (b - a) * lam


def resize_clipped(
    block: torch.Tensor,
    size: tuple[int, int, int],
    clip: tuple[float, float],
    chunk_slices: int = TO_INPUT_CHUNK_SLICES,
) -> torch.Tensor:
    """``resize_xyz(block.clamp(*clip), size, "trilinear")`` without a clipped copy of the
    whole block: (X', Y', Z') view -> (X, Y, Z) float32, built a few output slices at a time."""
    out = torch.empty(size, dtype=torch.float32)
    for zs, chunk in trilinear_z_chunks(block, size, chunk_slices, clip):
        out[:, :, zs] = chunk
    return out


@dataclass(frozen=True)
class PrepMapping:
    """Where the input went: crop box, resized size, padding offsets and frame layout."""

    input_shape: tuple[int, int, int]
    """(X, Y, Z) of the canonical input array."""
    crop: Box
    """((x0, x1), (y0, y1), (z0, z1)), end exclusive, on the input grid."""
    resized: tuple[int, int, int]
    """(D, H', W') of the cropped block after resizing, before padding."""
    offset: tuple[int, int, int]
    """(d, h, w) start of the resized block inside the padded (T*K, H, W) block."""
    frames: int
    """T."""
    frame_slices: int
    """K."""
    size: int
    """H = W."""

    @property
    def crop_shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in self.crop)  # type: ignore[return-value]

    @property
    def frames_shape(self) -> tuple[int, int, int, int]:
        return (self.frames, self.frame_slices, self.size, self.size)

    def place(self, resized_xyz: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Reorient a resized (W', H', D) block and pad it into frames (T, K, H, W)."""
        d, h, w = self.resized
        od, oh, ow = self.offset
        block = resized_xyz.contiguous().numpy()  # (W', H', D), shares memory
        out = np.full((self.frames * self.frame_slices, self.size, self.size), fill, np.float32)
        # The axis reversal (W', H', D) -> (D, H', W') as one 2-D transpose plus a copy of
        # whole rows: a direct 3-D permute copy is several times slower (cache misses).
        hdw = np.ascontiguousarray(block.reshape(w, h * d).T).reshape(h, d, w)  # (H', D, W')
        # (H', D, W') -> (D, H', W'), flipped so row 0 is anterior and column 0 is the
        # patient's right; negative strides, no copy until the write into the padding
        out[od : od + d, oh : oh + h, ow : ow + w] = hdw.transpose(1, 0, 2)[:, ::-1, ::-1]
        # (T*K, H, W) -> (T, K, H, W)
        return torch.from_numpy(out).view(self.frames, self.frame_slices, self.size, self.size)

    def to_frames(self, arr: np.ndarray | torch.Tensor, mode: str = "trilinear") -> torch.Tensor:
        """Map an array on the input grid (X, Y, Z) to frames (T, K, H, W); e.g. organ masks.

        ``mode`` 'nearest' keeps label values; 'trilinear' matches what ``prepare`` does.
        """
        t = torch.as_tensor(np.asarray(arr), dtype=torch.float32)
        (x0, x1), (y0, y1), (z0, z1) = self.crop
        d, h, w = self.resized
        block = resize_xyz(t[x0:x1, y0:y1, z0:z1], (w, h, d), mode)
        return self.place(block)

    def to_input(
        self,
        heat: np.ndarray | torch.Tensor,
        mode: str = "trilinear",
        chunk_slices: int = TO_INPUT_CHUNK_SLICES,
    ) -> np.ndarray:
        """Map frames (T, K, H, W), e.g. an attention heat map, back to the input grid (X, Y, Z).

        Padding is dropped and voxels outside the crop box get 0. Trilinear maps are
        resampled ``chunk_slices`` output slices at a time, so peak memory is the output
        array plus a few slices.
        """
        h_t = torch.as_tensor(np.asarray(heat), dtype=torch.float32)
        if tuple(h_t.shape) != self.frames_shape:
            raise ValueError(f"heat map shape {tuple(h_t.shape)} != frames {self.frames_shape}")
        d, h, w = self.resized
        od, oh, ow = self.offset
        # (T, K, H, W) -> (T*K, H, W) -> unpadded (D, H', W')
        block = h_t.reshape(-1, self.size, self.size)[od : od + d, oh : oh + h, ow : ow + w]
        # undo the display flips and axis order: (D, H', W') -> (X', Y', Z')
        block = block.flip(1, 2).permute(2, 1, 0).contiguous()
        out = np.zeros(self.input_shape, dtype=np.float32)
        (x0, x1), (y0, y1), (z0, z1) = self.crop
        if mode != "trilinear":
            out[x0:x1, y0:y1, z0:z1] = resize_xyz(block, self.crop_shape, mode).numpy()
            return out
        # Written straight into ``out`` a few slices at a time: a whole-volume interpolate
        # needs several float32 copies of the input grid (gigabytes for a 512 x 512 x 1024
        # scan); this needs one.
        for zs, chunk in trilinear_z_chunks(block, self.crop_shape, chunk_slices):
            out[x0:x1, y0:y1, z0 + zs.start : z0 + zs.stop] = chunk.numpy()
        return out
