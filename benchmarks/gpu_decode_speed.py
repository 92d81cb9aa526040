"""Decode speed of a paper-size mu2 model: today's path against the static KV cache, one scan
and a batch of scans, in one run.

Rows (each after a warm-up run, so compilation is not in the timings):

- ``one scan``: latency of one report (one question, ``--max-new-tokens`` tokens forced),
  dynamic KV cache (the default path) and static KV cache (compiled decoding on a GPU);
- ``batch of B``: B scans reported together through ``ReportGenerator.report_cases`` (the
  path of ``mu2 report --input-list``), reports per second, dynamic and static.

The model is built with random weights (speed does not depend on the weights: no download)
in bf16 on the GPU. The cache each row really used is read from the LLM's forward calls.

Usage on a GPU machine (from the repository root)::

    python benchmarks/gpu_decode_speed.py                    # 256 tokens, batch 32
    python benchmarks/gpu_decode_speed.py --batch 64 --runs 3

``--dry-run-tiny`` runs the same flow with the tiny model on the CPU (for tests).
Targets for a 1B-shaped LLM: one 256-token report <= 1.0 s; a batch >= 10 reports/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from mu2.generate.decode import DecodeOptions
from mu2.generate.pipeline import ReportGenerator
from mu2.generate.settings import GenerationSettings
from mu2.io import load_ct
from mu2.model import build

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = ROOT / "tests" / "data" / "real-ct" / "example_ct.nii.gz"


def _timed(gen: ReportGenerator, cases: list, settings: GenerationSettings) -> tuple[float, set]:
    """Seconds for one ``report_cases`` call and the KV cache classes the LLM was given."""
    seen: set[str] = set()

    def spy(_module, _args, kwargs):  # noqa: ANN001 - a forward pre-hook
        seen.add(type(kwargs.get("cache", kwargs.get("past_key_values"))).__name__)

    hook = gen.model.language_model.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        if gen.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        gen.report_cases(cases, settings)
        if gen.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, seen
    finally:
        hook.remove()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per row (after a warm-up)")
    ap.add_argument("--batch", type=int, default=32, help="scans per batch row")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--dtype", default="bfloat16", help="GPU weights dtype")
    ap.add_argument("--no-compile", action="store_true", help="static cache without compiling")
    ap.add_argument("--dry-run-tiny", action="store_true", help="tiny model on CPU (tests)")
    args = ap.parse_args(argv)

    size, device = ("tiny", "cpu") if args.dry_run_tiny else ("paper", "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU found: run this on a GPU machine, or pass --dry-run-tiny", file=sys.stderr)
        return 2
    dtype = torch.float32 if device == "cpu" else getattr(torch, args.dtype)
    model = build(size, preset="mu2", seed=0).to(dtype)
    volume = load_ct(args.scan)
    # Every answer is forced to full length: the time is that of a full report.
    n = args.max_new_tokens
    settings = GenerationSettings(max_new_tokens=n, min_new_tokens=n)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run)"
    print(f"device: {name}; dtype {dtype}; torch {torch.__version__}; {n} tokens per report")
    print("\n| row | KV cache | cache used | median s | reports/s | tokens/s |")
    print("|---|---|---|---|---|---|")
    for cache in ("dynamic", "static"):
        opts = DecodeOptions(batch_size=max(args.batch, 1), cache=cache,
                             compile=not args.no_compile)  # fmt: skip
        gen = ReportGenerator.from_model(model, device=device, name=size, decode_options=opts)
        for label, count in (("one scan", 1), (f"batch of {args.batch}", args.batch)):
            # Distinct prepared scans: the vision tower runs once per scan, as in a real list.
            cases = [gen.prepare_case(volume, region="abdomen") for _ in range(count)]
            _timed(gen, cases, settings)  # warm-up (compilation, allocator)
            runs = [_timed(gen, cases, settings) for _ in range(args.runs)]
            sec = statistics.median(s for s, _ in runs)
            used = ",".join(sorted(set().union(*(u for _, u in runs))))
            print(f"| {label} | {cache} | {used} | {sec:.3f} | {count / sec:.2f} | "
                  f"{count * n / sec:.0f} |")  # fmt: skip
    if device == "cuda":
        print(f"\npeak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
