"""ViT3D forward + backward with MONAI's eager attention vs fused SDPA, in one run.

Usage::

    .venv/bin/python benchmarks/bench_vit_attention.py --size tiny --frames 48
    .venv/bin/python benchmarks/bench_vit_attention.py --size paper --frames 2

Both towers hold the same weights; prints the median time of each and their ratio, and
the largest difference of the outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from mu2.model.builders import vision_config
from mu2.model.vision import VisionTower


def timed(tower: VisionTower, x: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        t0 = time.perf_counter()
        tower(x).square().mean().backward()
        times.append(time.perf_counter() - t0)
        tower.zero_grad(set_to_none=True)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("tiny", "paper"), default="tiny")
    ap.add_argument("--frames", type=int, default=48, help="frames per batch (F)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = vision_config(args.size)
    torch.manual_seed(0)
    fused = VisionTower(dataclasses.replace(cfg, sdpa=True))
    eager = VisionTower(dataclasses.replace(cfg, sdpa=False))
    eager.load_state_dict(fused.state_dict())
    x = torch.rand(args.frames, 1, *cfg.img_size)  # (F, 1, K, H, W)
    with torch.no_grad():
        diff = (fused(x) - eager(x)).abs().max().item()
    t_eager, t_fused = timed(eager, x, args.repeats), timed(fused, x, args.repeats)
    print(
        f"| {args.size} | {args.frames} x {tuple(cfg.img_size)} | {torch.get_num_threads()} "
        f"| {t_eager:.3f} | {t_fused:.3f} | {t_eager / t_fused:.2f}x | {diff:.1e} |"
    )


if __name__ == "__main__":
    main()
