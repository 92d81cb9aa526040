"""Report latency of a paper-size mu2 model on a GPU: load / prepare / encode / generate.

The paper-size model (M3D-CLIP ViT3D, mu2 tokenizer with k=1024 and Q=256, a Llama-3.2-1B-
shaped LLM) is built with random weights: latency does not depend on the weights, so no
download is needed. Every answer is forced to ``--max-new-tokens`` tokens, so the decode
time is that of a full-length report.

Usage on a GPU machine (from the repository root)::

    python benchmarks/gpu_report_latency.py                       # real CT sample, bf16
    python benchmarks/gpu_report_latency.py --depth 256 --runs 5  # T = 8 frames (paper maximum)

``--dry-run-tiny`` runs the same flow with the tiny model on the CPU (for tests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mu2.generate.pipeline import ReportGenerator
from mu2.io import CTVolume, load_ct
from mu2.model import build

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = ROOT / "tests" / "data" / "real-ct" / "example_ct.nii.gz"
PARTS = ("load", "prepare", "encode", "generate", "total")


def _resample_depth(volume: CTVolume, depth: int) -> CTVolume:
    """The scan resampled to ``depth`` axial slices (same field of view), e.g. 256 -> T=8."""
    t = torch.from_numpy(volume.array)[None, None]  # (1, 1, X, Y, Z)
    x, y, z = volume.shape
    t = F.interpolate(t, size=(x, y, depth), mode="trilinear", align_corners=False)
    sx, sy, sz = volume.spacing
    return CTVolume.from_array(t[0, 0].numpy(), (sx, sy, sz * z / depth))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    ap.add_argument("--depth", type=int, default=None, help="resample the scan to N slices")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--region", default="abdomen", help="region(s) asked, as `mu2 report`")
    ap.add_argument("--dtype", default="bfloat16", help="GPU weights dtype")
    ap.add_argument("--num-queries", type=int, default=None, help="Q (paper text: 1024)")
    ap.add_argument("--heatmap", action="store_true", help="also compute the heat map")
    ap.add_argument("--dry-run-tiny", action="store_true", help="tiny model on CPU (tests)")
    args = ap.parse_args(argv)

    size, device = ("tiny", "cpu") if args.dry_run_tiny else ("paper", "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA GPU found: run this on a GPU machine, or pass --dry-run-tiny", file=sys.stderr
        )
        return 2
    dtype = torch.float32 if device == "cpu" else getattr(torch, args.dtype)
    overrides = {"num_queries": args.num_queries} if args.num_queries else {}

    t0 = time.perf_counter()
    model = build(size, preset="mu2", seed=0, **overrides)
    model.to(dtype)
    build_s = time.perf_counter() - t0
    gen = ReportGenerator.from_model(model, device=device, name=f"random-init {size}")
    counts = model.parameter_counts()

    volume = load_ct(args.scan)
    if args.depth:
        volume = _resample_depth(volume, args.depth)
    kw = dict(
        region=args.region,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.max_new_tokens,
        heatmap=args.heatmap,
    )
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    runs = []
    for i in range(args.runs + 1):  # run 0 is the warm-up
        t0 = time.perf_counter()
        v = load_ct(args.scan) if not args.depth else volume
        load_s = time.perf_counter() - t0
        res = gen.report(v, load_seconds=load_s, **kw)
        if i > 0:
            runs.append(res)

    last = runs[-1]
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run)"
    print(f"device: {name}; dtype {dtype}; torch {torch.__version__}")
    print(
        f"model: {gen.model_id}, {counts['total'] / 1e6:.1f}M parameters "
        f"(vision {counts['vision'] / 1e6:.1f}M, tokenizer {counts['tokenizer'] / 1e6:.1f}M, "
        f"LLM {counts['llm'] / 1e6:.1f}M); built in {build_s:.1f} s"
    )
    print(
        f"scan: {args.scan} {last.input['shape']} -> frames {last.input['frames']}; "
        f"questions {len(last.sections)}; new tokens {last.generation['new_tokens']}"
    )
    print("\n| part | median s | min s |")
    print("|---|---|---|")
    for part in PARTS:
        values = [r.timings[part] for r in runs]
        print(f"| {part} | {statistics.median(values):.3f} | {min(values):.3f} |")
    gen_s = statistics.median(r.timings["generate"] for r in runs)
    print(f"\ndecode: {sum(last.generation['new_tokens']) / gen_s:.1f} tokens/s")
    if device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
