"""Question-to-CT heat maps (paper Fig. 4): patch relevance -> voxels of the original scan.

The model gives relevance per ViT patch of each frame (B, T, gz, gy, gx). Upsampling it
to the prepared frame grid (T, K, H, W) and running the preprocessing mapping backwards
(``Prepared.to_input``) puts it on the canonical grid of the input volume; ``save_like``
then writes it with the input file's own affine and array order, so it overlays the
original scan in any viewer. The PNG montage is for people: hottest axial slices with the
heat over a soft-tissue window, plus a maximum-intensity projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# Soft-tissue window (level 40 HU, width 400 HU), the usual abdominal CT window.
SOFT_TISSUE_WINDOW: tuple[float, float] = (-160.0, 240.0)
DEFAULT_CMAP = "inferno"
# Heat below this fraction of the maximum is drawn fully transparent in the PNG.
OVERLAY_FLOOR = 0.15
OVERLAY_ALPHA = 0.7


def patches_to_frames(attribution: torch.Tensor, frame_shape: Sequence[int]) -> torch.Tensor:
    """Upsample patch relevance of one case to the prepared frame grid.

    attribution: (T, gz, gy, gx) relevance per ViT patch; frame_shape: (K, H, W).
    Returns (T, K, H, W) float32. Trilinear (not nearest) so that patch borders do not
    show as a chequerboard on the CT; mass stays where the patch was.
    """
    if attribution.dim() != 4:
        raise ValueError(f"attribution must be (T, gz, gy, gx), got {tuple(attribution.shape)}")
    k, h, w = (int(s) for s in frame_shape)
    # (T, gz, gy, gx) -> (T, 1, gz, gy, gx)
    x = attribution.detach().float().cpu().unsqueeze(1)
    # (T, 1, gz, gy, gx) -> (T, 1, K, H, W)
    x = F.interpolate(x, size=(k, h, w), mode="trilinear", align_corners=False)
    # (T, 1, K, H, W) -> (T, K, H, W)
    return x.squeeze(1)


def normalise_heat(heat: np.ndarray) -> np.ndarray:
    """Non-negative heat scaled to [0, 1] (all zeros stays all zeros)."""
    h = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    h = np.clip(h, 0.0, None)
    peak = float(h.max()) if h.size else 0.0
    return h / peak if peak > 0 else h


def frames_to_input(heat_frames: torch.Tensor, prepared: Any) -> np.ndarray:
    """(T, K, H, W) heat on the prepared grid -> canonical input grid, normalised to [0, 1]."""
    heat = prepared.to_input(heat_frames)
    if isinstance(heat, torch.Tensor):
        heat = heat.detach().cpu().numpy()
    return normalise_heat(heat)


def attribution_to_input(attribution: Sequence[torch.Tensor], prepared: Any) -> np.ndarray:
    """Per-question patch relevance (B, T, gz, gy, gx) -> one heat map (X, Y, Z) in [0, 1].

    Everything up to the last step runs on the prepared frame grid (T, K, H, W), a few MB:
    each question's map is upsampled there, clipped at 0 and scaled to its own peak, and
    the questions are averaged. Only the mean goes to the input grid, resampled in chunks
    straight into one float32 array and scaled to [0, 1] in place, so the peak memory of
    the heat map is 4 bytes per input voxel whatever the number of questions.
    """
    frame_shape = prepared.frames.shape[1:]  # (K, H, W)
    mean = None
    for a in attribution:  # (T, gz, gy, gx): one question
        f = patches_to_frames(a, frame_shape)  # (T, K, H, W)
        f = torch.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0).clamp_(min=0.0)
        peak = float(f.max()) if f.numel() else 0.0
        if peak > 0:
            f.div_(peak)
        mean = f if mean is None else mean.add_(f)
    if mean is None:
        raise ValueError("no attribution maps to average")
    mean.div_(len(attribution))
    heat = prepared.to_input(mean)  # (X, Y, Z) float32, the only input-sized array
    np.clip(heat, 0.0, None, out=heat)
    peak = float(heat.max()) if heat.size else 0.0
    if peak > 0:
        heat /= peak
    return heat


def save_heatmap_nifti(volume: Any, heat: np.ndarray, path: str | Path) -> Path:
    """Write heat (canonical grid) as NIfTI with the input's affine and array shape."""
    from mu2.io import save_like

    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    save_like(volume, np.asarray(heat, dtype=np.float32), path)
    return path


def hottest_slices(heat: np.ndarray, n: int, min_gap: int | None = None) -> list[int]:
    """Indices of up to ``n`` axial slices (last axis) with the highest heat, spread apart.

    Greedy: take the hottest slice, skip its neighbours within ``min_gap``, repeat; so a
    single hot lesion does not fill the whole montage.
    """
    depth = heat.shape[-1]
    n = max(1, min(n, depth))
    gap = max(1, depth // (2 * n)) if min_gap is None else max(0, min_gap)
    # (X, Y, Z) -> (Z,): slice score = its peak heat plus a little of its mean (tie-break).
    score = heat.reshape(-1, depth).max(axis=0) + 0.1 * heat.reshape(-1, depth).mean(axis=0)
    picked: list[int] = []
    for z in np.argsort(-score, kind="stable"):
        if all(abs(int(z) - p) > gap for p in picked):
            picked.append(int(z))
        if len(picked) == n:
            break
    return sorted(picked)


def _window(ct: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    return np.clip((ct - lo) / (hi - lo), 0.0, 1.0)


def _windowed_mean_over_y(
    ct: np.ndarray, window: tuple[float, float], chunk: int = 32
) -> np.ndarray:
    """Mean over Y of the windowed CT, (X, Y, Z) -> (X, Z), a few slices at a time."""
    out = np.empty((ct.shape[0], ct.shape[2]), dtype=np.float32)
    for z0 in range(0, ct.shape[2], chunk):
        out[:, z0 : z0 + chunk] = _window(ct[:, :, z0 : z0 + chunk], window).mean(axis=1)
    return out


def _axial(a: np.ndarray) -> np.ndarray:
    # Canonical RAS (X, Y, Z) slice (X, Y) -> image rows = Y (anterior up with
    # origin='lower'), columns = X flipped so the patient's right is on the viewer's left
    # (radiological convention).
    return a.T[:, ::-1]


def _coronal(a: np.ndarray) -> np.ndarray:
    # (X, Z) -> rows = Z (superior up with origin='lower'), columns = X flipped (radiological).
    return a.T[:, ::-1]


def _overlay(
    ax: Any,
    ct_img: np.ndarray,
    heat_img: np.ndarray,
    cmap: str,
    aspect: float,
    vrange: tuple[float, float],
) -> None:
    lo, hi = vrange
    ax.imshow(ct_img, cmap="gray", vmin=0.0, vmax=1.0, origin="lower", aspect=aspect)
    rel = np.clip((heat_img - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    alpha = np.clip((rel - OVERLAY_FLOOR) / (1.0 - OVERLAY_FLOOR), 0.0, 1.0) * OVERLAY_ALPHA
    ax.imshow(heat_img, cmap=cmap, vmin=lo, vmax=hi, alpha=alpha, origin="lower", aspect=aspect)
    ax.set_xticks([])
    ax.set_yticks([])


def display_range(heat: np.ndarray) -> tuple[float, float]:
    """Colour range of the PNG: median of the positive heat to its maximum.

    Relevance spreads over every patch of the scan, so on a [0, max] scale the contrast
    between "somewhat" and "most" relevant would be lost; the NIfTI keeps the raw values.
    """
    positive = heat[heat > 0]
    if positive.size == 0:
        return 0.0, 1.0
    lo, hi = float(np.median(positive)), float(positive.max())
    return (lo, hi) if hi > lo else (0.0, max(hi, 1e-12))


def save_heatmap_png(
    ct: np.ndarray,
    heat: np.ndarray,
    spacing: Sequence[float],
    path: str | Path,
    n_slices: int = 6,
    window: tuple[float, float] = SOFT_TISSUE_WINDOW,
    cmap: str = DEFAULT_CMAP,
    title: str | None = None,
) -> Path:
    """Montage: hottest axial slices with heat over the CT, plus a coronal heat MIP.

    ``ct`` (HU) and ``heat`` ([0, 1]) share the canonical (X, Y, Z) RAS grid with voxel
    ``spacing`` (mm), so slices are drawn with their true aspect ratio.
    """
    # A bare Figure renders with Agg and never touches pyplot's global state.
    from matplotlib import cm, colors
    from matplotlib.figure import Figure

    if ct.shape != heat.shape:
        raise ValueError(f"CT {ct.shape} and heat {heat.shape} must share one grid")
    sx, sy, sz = (float(s) for s in spacing)
    slices = hottest_slices(heat, n_slices)
    vrange = display_range(heat)
    panels = len(slices) + 1
    cols = min(4, panels)
    rows = int(np.ceil(panels / cols))
    title_in = 0.2 * ((title or "").count("\n") + 1)  # room for a multi-line title
    height = 3.4 * rows + title_in
    fig = Figure(figsize=(3.2 * cols + 0.8, height))
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(top=1.0 - (title_in + 0.35) / height)
    flat = axes.ravel()
    for ax, z in zip(flat, slices, strict=False):
        ct_z = _window(ct[:, :, z], window)  # one slice at a time: no windowed copy of the CT
        _overlay(ax, _axial(ct_z), _axial(heat[:, :, z]), cmap, sy / sx, vrange)
        ax.set_title(f"axial z={z} ({z * sz:.0f} mm)", fontsize=9)
    # Coronal view: CT as a mean projection over Y (radiograph-like), heat as its MIP.
    mip_ax = flat[len(slices)]
    _overlay(
        mip_ax,
        _coronal(_windowed_mean_over_y(ct, window)),
        _coronal(heat.max(axis=1)),
        cmap,
        sz / sx,
        vrange,
    )
    for z in slices:
        mip_ax.axhline(z, color="cyan", lw=0.6, alpha=0.6)
    mip_ax.set_title("coronal heat MIP (lines: slices)", fontsize=9)
    for ax in flat[panels:]:
        ax.axis("off")
    mappable = cm.ScalarMappable(norm=colors.Normalize(*vrange), cmap=cmap)
    fig.colorbar(
        mappable, ax=list(flat[:panels]), fraction=0.025, pad=0.02, label="relevance (1 = peak)"
    )
    fig.suptitle(title or "question-to-CT relevance", fontsize=10)
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    # the title (question, model card, warnings) also as PNG text, for readers and tests
    meta = {"Title": title} if title and path.suffix.lower() == ".png" else None
    fig.savefig(path, dpi=110, metadata=meta)
    return path
