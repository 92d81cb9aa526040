"""Training throughput of the tiny model on the CPU: SFT and DPO cases per second.

Both stages run through their recipes exactly as ``mu2 train sft`` / ``mu2 train dpo`` do
(configs/sft/tiny.yaml and configs/dpo/tiny.yaml: batch 16 and 8, fp32, frozen vision
tower, augmentation on), on a fresh synthetic data set. Preference pairs are the
reference report (chosen) against another case's report of the same region (rejected):
speed does not depend on how the pairs were ranked, and ``mu2 prefs build`` (sampling 8
reports per case) is not part of DPO's training speed.

The recipes log cases/s per logging window, counting only optimizer-step time (no data
preparation of the first epoch's cache misses, no evaluation, no checkpoint); the first
window is dropped as warm-up. A DPO "case" is one pair: the policy and the frozen
reference each run 2 sequences on it. CPU seconds are this process's (all threads), for
the whole recipe call (setup included); "cases per CPU s" = cases trained / those CPU
seconds, a load-independent lower bound of the rate one dedicated core would reach.

    .venv/bin/python benchmarks/bench_train_throughput.py [--steps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_pairs(data: Path, out: Path) -> Path:
    """chosen = a report row's reference, rejected = another case's report of its region."""
    rows = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]
    reports = [r for r in rows if r.get("task") == "report"]
    pairs = []
    for r in reports:
        other = next(
            (o for o in reports if o["region"] == r["region"] and o["answer"] != r["answer"]),
            None,
        )
        if other is None:
            continue
        pairs.append({
            "id": r["id"], "image": str((data / r["image"]).resolve()), "question": r["question"],
            "chosen": r["answer"], "rejected": other["answer"], "reference": r["answer"],
        })  # fmt: skip
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return out


def window_rates(metrics: Path) -> list[float]:
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    return [
        r["cases_per_s"] for r in rows if r.get("split", "train") == "train" and "cases_per_s" in r
    ]


def timed_run(fn, cfg) -> tuple[Path | None, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    final = fn(cfg)
    return final, time.perf_counter() - wall, time.process_time() - cpu


def common(args: argparse.Namespace, out: Path, seed: int = 0) -> list[str]:
    return [
        f"output_dir={out}", f"max_steps={args.steps}", f"log_every={args.log_every}",
        f"num_threads={args.threads}", "device=cpu", "tensorboard=false", "save_every=0",
        "eval_every=0", "num_sample_reports=0", "resume=none", f"seed={seed}",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per stage")
    p.add_argument("--log-every", type=int, default=5, help="steps per rate window")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--batch-size", type=int, default=16, help="SFT cases per step (tiny: 16)")
    p.add_argument("--dpo-batch-size", type=int, default=8, help="DPO pairs per step (tiny: 8)")
    p.add_argument("--cases", type=int, default=60, help="synthetic cases generated")
    p.add_argument("--workdir", type=Path, default=None, help="keep files here (default: tmp)")
    args = p.parse_args(argv)

    from mu2.config import load_config
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config
    from mu2.train.config import DPOConfig, SFTConfig
    from mu2.train.dpo import run_dpo
    from mu2.train.sft import run_sft

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        data = work / "synth"
        synthesize(data, args.cases, 0, make_config("tiny", "tiny"), progress=False)
        cache = f"data.cache_dir={work / 'cache'}"
        sft_cfg = load_config(SFTConfig, None, common(args, work / "sft") + [
            f"batch_size={args.batch_size}", f"data.train={data / 'train.jsonl'}", "data.val=null",
            "data.cache=disk", cache, "model.freeze_vision=true",
            "optim.weight_decay=0.01", "optim.warmup_ratio=0.05", "optim.min_lr_ratio=0.05",
        ])  # fmt: skip
        # Prepare (and cache) every volume first: the first epoch's preparation is data
        # loading, not training, and the rate windows would otherwise mix the two.
        from mu2.train.sft import make_dataset

        warm = make_dataset(str(data / "train.jsonl"), sft_cfg.data, seed=0, train=False,
                            required=("image",))  # fmt: skip
        for i in range(len(warm)):
            warm.frames(i)
        sft_final, sft_wall, sft_cpu = timed_run(run_sft, sft_cfg)
        pairs = make_pairs(data, work / "pairs.jsonl")
        dpo_cfg = load_config(DPOConfig, None, common(args, work / "dpo") + [
            f"batch_size={args.dpo_batch_size}", f"model.sft_model={sft_final}",
            f"data.train={pairs}", "data.cache=disk", cache,
        ])  # fmt: skip
        _, dpo_wall, dpo_cpu = timed_run(run_dpo, dpo_cfg)
        results = []
        for stage, folder, wall, cpu, batch in (
            ("SFT", work / "sft", sft_wall, sft_cpu, args.batch_size),
            ("DPO", work / "dpo", dpo_wall, dpo_cpu, args.dpo_batch_size),
        ):
            rates = window_rates(folder / "metrics.jsonl")[1:] or window_rates(
                folder / "metrics.jsonl"
            )
            summary = json.loads((folder / "final" / "training_summary.json").read_text())
            per_cpu = summary["cases_seen"] / max(cpu, 1e-9)
            results.append((stage, batch, statistics.median(rates), max(rates),
                            summary["cases_per_s"], per_cpu, wall, cpu))  # fmt: skip

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# tiny training throughput, CPU ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), "
          f"load average {load:.1f})")  # fmt: skip
    print(
        f"{args.steps} optimizer steps per stage; rate windows of {args.log_every} steps, "
        "first window dropped"
    )
    print()
    print("| stage | batch | cases/s median | cases/s best window | cases/s whole run "
          "| cases per CPU s | wall s (incl. setup) | CPU s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for stage, batch, med, best, whole, per_cpu, wall, cpu in results:
        print(
            f"| {stage} | {batch} | {med:.2f} | {best:.2f} | {whole:.2f} | {per_cpu:.2f} "
            f"| {wall:.1f} | {cpu:.1f} |"
        )
    print()
    print("DPO cases are pairs (chosen + rejected through the policy and the frozen reference).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
