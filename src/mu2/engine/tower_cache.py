"""Outputs of a frozen vision tower, kept per volume for the length of a training run.

With the tower frozen, deterministic (no dropout) and no augmentation, a volume's tower
output is the same at every draw, and at tiny scale the tower is about a quarter of an SFT
step (BENCHMARKS.md). Volumes are keyed by the bytes of their real frames, so the rows
that share a scan (a report per region, VQA rows) share one entry. Written by hand: no
library caches module outputs by input content.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn


class TowerCache:
    """Maps a volume's frames to its tower output (T_b, N0, E_v)."""

    def __init__(self) -> None:
        self.store: dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(frames: torch.Tensor) -> str:
        return hashlib.sha1(frames.detach().cpu().contiguous().numpy().tobytes()).hexdigest()

    @torch.no_grad()
    def patches(
        self, tower: nn.Module, pixel_values: torch.Tensor, frame_mask: torch.Tensor
    ) -> torch.Tensor:
        """pixel_values (B, T, K, H, W), frame_mask (B, T) -> (F, N0, E_v) for the real
        frames in batch order (what ``encode_images`` takes as ``patches``)."""
        if any(m.training and getattr(m, "p", 0.0) > 0 for m in tower.modules()):
            raise ValueError("TowerCache needs a deterministic tower (dropout in training mode)")
        dtype = next(tower.parameters()).dtype
        volumes = [pixel_values[b][frame_mask[b].bool()] for b in range(pixel_values.shape[0])]
        keys = [self.key(v) for v in volumes]  # one per row: its (T_b, K, H, W) frames
        missing = list(dict.fromkeys(k for k in keys if k not in self.store))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            first = {k: volumes[keys.index(k)] for k in missing}
            frames = torch.cat([first[k] for k in missing])[:, None].to(dtype)  # (F', 1, K, H, W)
            out = tower(frames)  # (F', N0, E_v)
            sizes = [first[k].shape[0] for k in missing]
            for k, part in zip(missing, out.split(sizes), strict=True):
                self.store[k] = part
        return torch.cat([self.store[k] for k in keys])  # (F, N0, E_v)
