"""Time per CT for `mu2 report`, split into load / prepare / encode / generate.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_report.py                       # demo model, real CT
    .venv/bin/python benchmarks/bench_report.py --model DIR --runs 5 --max-new-tokens 128

Without ``--model`` it uses the demo model under $MU2_HOME; when there is none it builds
an untrained tiny model (same classes and code path) and forces every answer to
``--max-new-tokens`` tokens, so the decode time is comparable run to run. It prints a
markdown table (median and min over the timed runs, after one warm-up run) and the wall
time of one whole `mu2 report` process (Python start, imports, model load, report).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mu2.generate.home import demo_model_dir
from mu2.generate.pipeline import ReportGenerator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = ROOT / "tests" / "data" / "real-ct" / "example_ct.nii.gz"
PARTS = ("load", "prepare", "encode", "generate", "total")


def _untrained_tiny(out: Path) -> Path:
    from mu2.findings.writer import QUESTION_TEMPLATES
    from mu2.model import build

    texts = [t.format(region=r) for t in QUESTION_TEMPLATES for r in ("chest", "abdomen", "pelvis")]
    build("tiny", preset="mu2", train_texts=texts, seed=0).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: demo model)")
    ap.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--region", default=None, help="as `mu2 report --region` (default: detected)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--heatmap", action="store_true", help="also compute the heat map")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    ap.add_argument("--no-cli", action="store_true", help="skip the whole-process timing")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = None
    model = args.model
    forced = 0
    if model is None and (demo_model_dir() / "config.json").is_file():
        model = demo_model_dir()
    if model is None:
        tmp = tempfile.TemporaryDirectory(prefix="mu2_bench_")
        model = _untrained_tiny(Path(tmp.name))
        forced = args.max_new_tokens
        print(f"no demo model: using an UNTRAINED tiny model, answers forced to {forced} tokens")

    gen = ReportGenerator(model, device=args.device)
    kw = dict(
        region=args.region,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=forced,
        heatmap=args.heatmap,
    )
    gen.report(args.scan, **kw)  # warm-up (allocator, kernels, file cache)
    runs = [gen.report(args.scan, **kw) for _ in range(args.runs)]
    tokens = runs[-1].generation["new_tokens"]

    print(f"\nscan: {args.scan} {runs[-1].input['shape']} -> frames {runs[-1].input['frames']}")
    print(f"model: {gen.model_id} from {model}; model load {gen.load_seconds:.2f} s")
    print(f"questions: {len(runs[-1].sections)}, new tokens per answer: {tokens}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print("\n| part | median s | min s |")
    print("|---|---|---|")
    for part in PARTS:
        values = [r.timings[part] for r in runs]
        print(f"| {part} | {statistics.median(values):.3f} | {min(values):.3f} |")
    gen_s = statistics.median(r.timings["generate"] for r in runs)
    print(f"\ndecode: {sum(tokens) / gen_s:.1f} tokens/s (all answers of one CT, batched)")

    if not args.no_cli:
        mu2 = Path(sys.executable).with_name("mu2")
        cmd = [str(mu2), "report", str(args.scan), "--model", str(model), "--json"]
        cmd += ["--max-new-tokens", str(args.max_new_tokens)]
        if args.region:
            cmd += ["--region", args.region]
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        print(
            f"whole `mu2 report` process (start-up, imports, model load, report): "
            f"{time.perf_counter() - t0:.2f} s"
        )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
