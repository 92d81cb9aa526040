"""Benchmark: mu2.preprocess.prepare vs the same steps as a MONAI Compose.

Builds a synthetic 512 x 512 x 300 CT (air, a body of fat and muscle with organs,
spine and a scanner table, scanner-like noise), checks that both pipelines give the
same frames (max abs difference <= 1e-5) and times both in this one process.

    .venv/bin/python benchmarks/bench_preprocess.py [--repeats 5] [--scaling window]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import numpy as np
import torch

from mu2.io import CTVolume
from mu2.preprocess import prep_config, prepare
from mu2.preprocess.monai_reference import monai_prepare

TOLERANCE = 1e-5


def synthetic_ct(shape: tuple[int, int, int] = (512, 512, 300), seed: int = 0) -> CTVolume:
    """A body-shaped phantom in HU on a 0.8 x 0.8 x 1.5 mm grid, axes (R, A, S)."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    x = np.arange(nx, dtype=np.float32)[:, None, None]
    y = np.arange(ny, dtype=np.float32)[None, :, None]
    z = np.arange(nz, dtype=np.float32)[None, None, :]
    vol = np.full(shape, -1000.0, dtype=np.float32)
    body = ((x - 256) / 190) ** 2 + ((y - 270) / 140) ** 2 <= 1.0
    body = np.broadcast_to(body, shape)
    vol[body] = -100.0  # fat
    muscle = ((x - 256) / 170) ** 2 + ((y - 270) / 120) ** 2 <= 1.0
    vol[np.broadcast_to(muscle, shape)] = 45.0
    liver = ((x - 190) / 80) ** 2 + ((y - 300) / 70) ** 2 + ((z - 180) / 60) ** 2 <= 1.0
    vol[liver] = 60.0
    spine = ((x - 256) / 22) ** 2 + ((y - 170) / 22) ** 2 <= 1.0
    vol[np.broadcast_to(spine, shape)] = 700.0
    lungs = (((abs(x - 256) - 90) / 60) ** 2 + ((y - 280) / 80) ** 2 <= 1.0) & (z > 240)
    vol[lungs] = -850.0
    table = (y > 95) & (y < 105) & (abs(x - 256) < 220)
    vol[np.broadcast_to(table, shape)] = 300.0
    vol += rng.normal(0.0, 15.0, shape).astype(np.float32)
    return CTVolume.from_array(vol, (0.8, 0.8, 1.5), meta={"path": "synthetic"})


def _time_interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Wall and CPU (all threads) seconds per run; pipelines alternate each round, so
    load changes on a shared machine hit both alike."""
    for fn in fns.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", default="paper", choices=["paper", "tiny"])
    parser.add_argument("--scaling", default="window", choices=["window", "minmax", "percentile"])
    args = parser.parse_args()

    cfg = dataclasses.replace(prep_config(args.size), scaling=args.scaling)
    volume = synthetic_ct()
    ours = prepare(volume, cfg).frames
    ref = monai_prepare(volume, cfg)
    if ours.shape != ref.shape:
        raise SystemExit(f"shape mismatch: mu2 {tuple(ours.shape)} vs MONAI {tuple(ref.shape)}")
    diff = float((ours - ref).abs().max())
    load_before = os.getloadavg()[0]
    times, cpu = _time_interleaved(
        {"mu2": lambda: prepare(volume, cfg), "monai": lambda: monai_prepare(volume, cfg)},
        args.repeats,
    )
    t_mu2, t_monai = times["mu2"], times["monai"]
    med_mu2, med_monai = statistics.median(t_mu2), statistics.median(t_monai)

    print(f"input {volume.shape} float32 HU; config size={args.size} scaling={args.scaling}")
    print(
        f"output frames {tuple(ours.shape)}; torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"1-min load average before / after timing: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
    print(
        f"max |mu2 - MONAI| = {diff:.2e} (tolerance {TOLERANCE:g}): {'OK' if diff <= TOLERANCE else 'FAIL'}"
    )
    print(f"mu2   median {med_mu2:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in t_mu2)})")
    print(f"MONAI median {med_monai:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in t_monai)})")
    print(f"speed ratio MONAI / mu2 = {med_monai / med_mu2:.2f}x (wall)")
    cpu_mu2, cpu_monai = statistics.median(cpu["mu2"]), statistics.median(cpu["monai"])
    print(f"CPU time median (user+sys, all threads): mu2 {cpu_mu2:.3f} s, MONAI {cpu_monai:.3f} s")
    print(f"speed ratio MONAI / mu2 = {cpu_monai / cpu_mu2:.2f}x (CPU time)")
    if diff > TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
