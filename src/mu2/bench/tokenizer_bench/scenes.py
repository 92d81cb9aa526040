"""Synthetic frame tokens with planted lesions and region questions (see ``config``).

Hand-written because no library draws token grids with labelled lesions; everything is a few
tensor ops on a seeded ``torch.Generator``, so a (world, seed) pair always gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mu2.bench.tokenizer_bench.config import (
    LESION_BLOCKS,
    ORGANS,
    SIDES,
    TokenBenchConfig,
    size_class,
)

# Question vocabulary: padding, two function words, the organs, the sides.
PAD = 0
VOCAB: tuple[str, ...] = ("<pad>", "what", "in", *ORGANS, *SIDES)
QUESTION_LEN = 4  # "what in <organ> <side>"; organ-only questions pad the side


@dataclass
class World:
    """The fixed parts shared by every scene: textures, position code, kind signatures."""

    organ: torch.Tensor  # (T, E): one texture per organ / frame, the same on both sides
    position: torch.Tensor  # (T, gz, gy, gx, E): fixed absolute position code
    kinds: torch.Tensor  # (K, E): lesion signatures
    kernel: torch.Tensor | None  # (E, 1, 3, 3, 3) depthwise Gaussian, None for white noise


@dataclass
class Batch:
    """A batch of scenes; the metadata columns stratify the accuracy tables."""

    frames: torch.Tensor  # (B, T, N, E)
    question: torch.Tensor  # (B, L) token ids
    question_mask: torch.Tensor  # (B, L) bool
    label: torch.Tensor  # (B,) 0 = none, 1 + kind * 3 + size class
    size: torch.Tensor  # (B,) tokens of the asked region's lesion, 0 = none
    distractors: torch.Tensor  # (B,) lesions in other regions
    side_question: torch.Tensor  # (B,) bool: the question names a side


def make_world(cfg: TokenBenchConfig) -> World:
    """The world of ``cfg.world_seed``: unit-variance codes scaled by their amplitudes."""
    g = torch.Generator().manual_seed(cfg.world_seed)
    t, (gz, gy, gx), e = cfg.frames, cfg.grid, cfg.width
    organ = torch.randn(t, e, generator=g) * cfg.organ_amplitude
    position = torch.randn(t, gz, gy, gx, e, generator=g)
    # Smooth the position code along the grid so neighbours have similar codes (like a ViT's
    # learned position embeddings), then restore unit variance.
    position = _smooth(position.permute(0, 4, 1, 2, 3), 1.0).permute(0, 2, 3, 4, 1)
    position = position / position.std() * cfg.position_amplitude
    kinds = torch.randn(cfg.kinds, e, generator=g) * cfg.lesion_amplitude
    kernel = _kernel(cfg.noise_smoothing, e) if cfg.noise_smoothing > 0 else None
    return World(organ=organ, position=position, kinds=kinds, kernel=kernel)


def _kernel(sigma: float, channels: int) -> torch.Tensor:
    x = torch.arange(-1, 2, dtype=torch.float32)
    w1 = torch.exp(-(x**2) / (2 * sigma**2))
    w = w1[:, None, None] * w1[None, :, None] * w1[None, None, :]  # (3, 3, 3)
    w = w / w.square().sum().sqrt()  # unit-variance output for white input
    return w.expand(channels, 1, 3, 3, 3).contiguous()


def _smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, gz, gy, gx) -> same shape, depthwise Gaussian with replicated edges."""
    k = _kernel(sigma, x.shape[1])
    padded = F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate")
    return F.conv3d(padded, k, groups=x.shape[1])


def _noise(world: World, b: int, t: int, grid: tuple[int, int, int], e: int, g: torch.Generator):
    """(B, T, gz, gy, gx, E) correlated noise of unit variance per channel."""
    x = torch.randn(b * t, e, *grid, generator=g)  # (B*T, E, gz, gy, gx)
    if world.kernel is not None:
        x = F.conv3d(F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate"), world.kernel, groups=e)
    return x.view(b, t, e, *grid).permute(0, 1, 3, 4, 5, 2)


def sample_batch(cfg: TokenBenchConfig, world: World, b: int, g: torch.Generator) -> Batch:
    """``b`` scenes: background, asked region, target lesion, distractors, question tokens."""
    t, (gz, gy, gx), e = cfg.frames, cfg.grid, cfg.width
    half = gx // 2
    tokens = _noise(world, b, t, (gz, gy, gx), e, g)  # (B, T, gz, gy, gx, E)
    tokens = tokens + world.organ[None, :, None, None, None, :] + world.position[None]
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    question = np.full((b, QUESTION_LEN), PAD, dtype=np.int64)
    label = np.zeros(b, dtype=np.int64)
    size = np.zeros(b, dtype=np.int64)
    n_distract = np.zeros(b, dtype=np.int64)
    side_q = rng.random(b) < cfg.side_question_prob
    # Lesion stamps: (item, frame, z0, y0, x0, size, kind, amplitude).
    stamps: list[tuple[int, int, int, int, int, int, int, float]] = []
    regions = [(o, s) for o in range(t) for s in range(2)]
    for i in range(b):
        organ = int(rng.integers(t))
        side = int(rng.integers(2))
        question[i, :3] = (1, 2, 3 + organ)
        if side_q[i]:
            question[i, 3] = 3 + len(ORGANS) + side
            asked = {(organ, side)}
        else:
            asked = {(organ, 0), (organ, 1)}
        if rng.random() < cfg.present_prob:
            kind, sz = int(rng.integers(cfg.kinds)), int(rng.choice(cfg.sizes))
            stamps.append(_stamp(rng, i, organ, side, sz, kind, cfg, half))
            label[i], size[i] = 1 + kind * 3 + size_class(sz), sz
        free = [r for r in regions if r not in asked]
        d = int(rng.integers(cfg.max_distractors + 1))
        n_distract[i] = d
        for j in rng.permutation(len(free))[:d]:
            o, s = free[j]
            kind, sz = int(rng.integers(cfg.kinds)), int(rng.choice(cfg.sizes))
            stamps.append(_stamp(rng, i, o, s, sz, kind, cfg, half))
    for i, f, z0, y0, x0, sz, kind, amp in stamps:
        dz, dy, dx = LESION_BLOCKS[sz]
        tokens[i, f, z0 : z0 + dz, y0 : y0 + dy, x0 : x0 + dx] += amp * world.kinds[kind]
    q = torch.from_numpy(question)
    return Batch(
        frames=tokens.reshape(b, t, gz * gy * gx, e),  # (B, T, gz, gy, gx, E) -> (B, T, N, E)
        question=q,
        question_mask=q != PAD,
        label=torch.from_numpy(label),
        size=torch.from_numpy(size),
        distractors=torch.from_numpy(n_distract),
        side_question=torch.from_numpy(side_q),
    )


def _stamp(
    rng: np.random.Generator,
    item: int,
    organ: int,
    side: int,
    size: int,
    kind: int,
    cfg: TokenBenchConfig,
    half: int,
) -> tuple[int, int, int, int, int, int, int, float]:
    """A random place for a ``size`` block inside region (organ, side)."""
    gz, gy, _ = cfg.grid
    dz, dy, dx = LESION_BLOCKS[size]
    z0 = int(rng.integers(gz - dz + 1))
    y0 = int(rng.integers(gy - dy + 1))
    x0 = side * half + int(rng.integers(half - dx + 1))
    j = cfg.amplitude_jitter
    amp = float(rng.uniform(1 - j, 1 + j))
    return item, organ, z0, y0, x0, size, kind, amp


def question_text(question: torch.Tensor) -> str:
    """The words of one question row (for logs and tests)."""
    return " ".join(VOCAB[int(i)] for i in question if int(i) != PAD)
