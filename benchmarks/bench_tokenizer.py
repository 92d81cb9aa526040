"""Benchmark: the paper-size μ² Tokenizer forward on CPU.

1. parameters at E = 2048 (the reference code's tokenizer: 355M);
2. the DTS step alone: one einsum vs the reference code's Python loop over k
   (forward, and forward + backward as in training);
3. the whole tokenizer forward (E = 2048, T = 8, N = 256, k = 1024, Q = 256): ``mu2``,
   ``mu2`` with the loop DTS swapped in, and ``linvt``: wall time, CPU time, peak memory;
4. ``mu2`` forward time over T = 1, 2, 4, 8, 16 with a least-squares line and its R^2.

Forwards run in eval mode under ``torch.no_grad``; variants alternate within each round so
load changes on a shared machine hit them alike. Peak memory is the growth of the process'
peak RSS during one call (the peak is reset through /proc/self/clear_refs before it; the
script re-runs itself with a fixed glibc mmap threshold so that RSS follows live memory).

    .venv/bin/python benchmarks/bench_tokenizer.py [--repeats 3] [--threads 2] [--sweep 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mu2.model import tokenizer_config
from mu2.tokenizer import Mu2Tokenizer
from mu2.tokenizer.selection import Selection, SoftTokenSelection

REFERENCE_CODE_PARAMS = 355e6  # the reference code's tokenizer at LLM width 2048
QUESTION_TOKENS = 32  # L: question length of the synthetic inputs
# glibc keeps freed blocks below a threshold that grows with every large free, so the RSS
# would not fall after a call and the next call's peak would hide in reused memory. A fixed
# threshold makes every tensor an mmap that is returned when freed: RSS = live memory.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


class LoopTokenSelection(SoftTokenSelection):
    """The reference code's DTS: one score vector at a time, k softmaxes in a Python loop.

    Shares the parameters of the einsum version (same outputs); exists only here, as the
    baseline of this benchmark.
    """

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> Selection:
        out = []
        for r in range(self.k):
            logits = (features @ self.score[r]) * self.scale  # (B, M)
            alpha = logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (B, M)
            out.append((alpha[:, None, :] @ tokens)[:, 0])  # (B, 1, M) @ (B, M, E) -> (B, E)
        selected = torch.stack(out, dim=1)  # (B, k, E)
        return Selection(tokens=selected, mask=mask.any(-1, keepdim=True).expand(-1, self.k))


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def measure(fn: Callable[[], object]) -> tuple[float, float, float | None]:
    """Wall s, CPU s (all threads) and peak-RSS growth in MB of one call."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
        before = _status_kb("VmRSS")
    except OSError:
        before = None
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = (_status_kb("VmHWM") - before) / 1024 if before is not None else None
    return wall, cpu, peak


def rounds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[tuple]]:
    results: dict[str, list[tuple]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            results[name].append(measure(fn))
    return results


def summary(runs: list[tuple]) -> tuple[float, float, float, float | None]:
    walls = [r[0] for r in runs]
    cpus = [r[1] for r in runs]
    peaks = [r[2] for r in runs if r[2] is not None]
    return min(walls), statistics.median(walls), min(cpus), max(peaks) if peaks else None


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Slope, intercept and R^2 of the least-squares line."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return slope, intercept, 1.0 - ss_res / ss_tot


def inputs(t: int, width: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    frames = torch.randn(1, t, n, width, generator=generator)  # (B, T, N, E)
    text = torch.randn(1, QUESTION_TOKENS, width, generator=generator)  # (B, L, E)
    return (
        frames,
        torch.ones(1, t, dtype=torch.bool),
        text,
        torch.ones(1, QUESTION_TOKENS, dtype=torch.bool),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=2048, help="E, the LLM width (paper 2048)")
    parser.add_argument("--frames", type=int, default=8, help="T for the comparisons (paper 8)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sweep", default="1,2,4,8,16", help="T values for the scaling fit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, E={args.width}, repeats {args.repeats}")  # fmt: skip

    torch.manual_seed(args.seed)
    mu2 = Mu2Tokenizer(tokenizer_config("paper", "mu2", args.width)).eval()
    linvt = Mu2Tokenizer(tokenizer_config("paper", "linvt", args.width)).eval()
    cfg = mu2.config
    n = cfg.tokens_per_frame
    count = sum(p.numel() for p in mu2.parameters())
    count_linvt = sum(p.numel() for p in linvt.parameters())
    print(f"\n## Parameters (E = {args.width})")
    print("| tokenizer | parameters |\n|---|---|")
    print(f"| mu2 (this code) | {count / 1e6:.1f}M |")
    print(f"| linvt (this code) | {count_linvt / 1e6:.1f}M |")
    print(f"| reference code | {REFERENCE_CODE_PARAMS / 1e6:.0f}M |")

    # -- DTS step alone -------------------------------------------------------------------
    loop = LoopTokenSelection(args.width, cfg.num_selected)
    loop.score = mu2.selection.score  # the very same W_s
    frames, fmask, text, tmask = inputs(args.frames, args.width, n, gen)
    flat = frames.reshape(1, -1, args.width)  # (B, T*N, E)
    feats = torch.randn_like(flat)
    mask = torch.ones(flat.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        diff = (
            (mu2.selection(feats, flat, mask).tokens - loop(feats, flat, mask).tokens).abs().max()
        )
    print(f"\nloop vs einsum DTS outputs: max abs difference {diff.item():.2e}")

    def dts_fwd(module):
        def run():
            with torch.no_grad():
                module(feats, flat, mask)

        return run

    def dts_train(module):
        def run():
            x = flat.detach().requires_grad_(True)
            module(feats, x, mask).tokens.sum().backward()
            module.score.grad = None

        return run

    print(f"\n## DTS step alone (T*N = {flat.shape[1]} tokens, k = {cfg.num_selected})")
    print(
        "| DTS | pass | min wall s | median wall s | min CPU s | peak MB |\n|---|---|---|---|---|---|"
    )
    res = rounds(
        {
            ("einsum", "forward"): dts_fwd(mu2.selection),
            ("loop over k", "forward"): dts_fwd(loop),
            ("einsum", "forward+backward"): dts_train(mu2.selection),
            ("loop over k", "forward+backward"): dts_train(loop),
        },
        args.repeats,
    )
    for (name, kind), runs in res.items():
        lo, med, cpu, peak = summary(runs)
        print(f"| {name} | {kind} | {lo:.3f} | {med:.3f} | {cpu:.3f} | {peak:.0f} |")
    for kind in ("forward", "forward+backward"):
        speed = summary(res[("loop over k", kind)])[0] / summary(res[("einsum", kind)])[0]
        print(f"\nDTS {kind}: einsum is {speed:.1f}x faster than the loop (min wall)")

    # -- whole tokenizer -------------------------------------------------------------------
    def forward(model, selection=None):
        """One no-grad forward; ``selection`` swaps the DTS module in for the call only."""

        def run():
            saved = model.selection
            if selection is not None:
                model.selection = selection
            try:
                with torch.no_grad():
                    model(frames, fmask, text, tmask)
            finally:
                model.selection = saved

        return run

    forward(mu2)()  # warm-up
    print(f"\n## Whole tokenizer forward (B=1, T={args.frames}, N={n}, E={args.width}, "
          f"k={cfg.num_selected}, Q={cfg.num_queries}, L={QUESTION_TOKENS})")  # fmt: skip
    print("| tokenizer | min wall s | median wall s | min CPU s | peak MB |\n|---|---|---|---|---|")
    res = rounds(
        {"mu2": forward(mu2), "mu2, loop-over-k DTS": forward(mu2, loop), "linvt": forward(linvt)},
        args.repeats,
    )
    for name, runs in res.items():
        lo, med, cpu, peak = summary(runs)
        print(f"| {name} | {lo:.2f} | {med:.2f} | {cpu:.2f} | {peak:.0f} |")
    speed = summary(res["mu2, loop-over-k DTS"])[0] / summary(res["mu2"])[0]
    print(f"\nwhole forward: einsum DTS is {speed:.2f}x faster than with the loop (min wall)")
    del linvt

    # -- scaling in T ---------------------------------------------------------------------
    ts = [int(t) for t in args.sweep.split(",")]
    runs_t = {t: inputs(t, args.width, n, gen) for t in ts}
    fns = {}
    for t, batch in runs_t.items():

        def run(batch=batch):
            with torch.no_grad():
                mu2(*batch)

        fns[t] = run
    res = rounds(fns, args.repeats)
    print(f"\n## mu2 forward time over T (N={n}, E={args.width})")
    print("| T | min wall s | median wall s | min CPU s | peak MB |\n|---|---|---|---|---|")
    walls, cpus = [], []
    for t, runs in res.items():
        lo, med, cpu, peak = summary(runs)
        walls.append(lo)
        cpus.append(cpu)
        print(f"| {t} | {lo:.2f} | {med:.2f} | {cpu:.2f} | {peak:.0f} |")
    for name, ys in (("min wall", walls), ("min CPU", cpus)):
        slope, intercept, r2 = linear_fit([float(t) for t in ts], ys)
        print(
            f"\nlinear fit of {name} time: {slope:.3f} s/frame + {intercept:.3f} s, R^2 = {r2:.4f}"
        )


if __name__ == "__main__":
    main()
