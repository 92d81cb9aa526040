"""Train every row on fresh scenes with one budget, score a fixed evaluation set per seed.

Per seed: one evaluation set (the same scenes for every row), one initialisation seed, one
stream of training batches (the same batches for every row). The per-item predictions are
kept, so every table is computed from them (``report``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mu2.bench.tokenizer_bench.config import TokenBenchConfig
from mu2.bench.tokenizer_bench.model import BenchModel, adapter_widths, build_models, count_params
from mu2.bench.tokenizer_bench.scenes import Batch, World, make_world, sample_batch
from mu2.config import to_dict
from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_003  # evaluation scenes never share a stream with training


@dataclass
class RowRun:
    """One (row, seed): parameters, seconds, loss curve ends, per-item correctness."""

    row: str
    seed: int
    params: int
    seconds: float
    first_loss: float
    last_loss: float
    correct: list[bool]
    kind_correct: list[bool]


@dataclass
class BenchResult:
    config: dict[str, Any]
    runs: list[RowRun] = field(default_factory=list)
    eval_meta: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "wall_s": round(self.wall_s, 1),
            "eval_meta": {str(k): v for k, v in self.eval_meta.items()},
            "runs": [r.__dict__ for r in self.runs],
        }


def eval_batch(cfg: TokenBenchConfig, world: World, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    return sample_batch(cfg, world, cfg.eval_items, g)


def train_row(
    model: BenchModel, cfg: TokenBenchConfig, world: World, seed: int
) -> tuple[float, float]:
    """AdamW on fresh batches with a cosine schedule; returns (mean first, mean last) loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1
    )
    g = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for _ in range(cfg.steps):
        b = sample_batch(cfg, world, cfg.batch_size, g)
        loss = loss_fn(model(b.frames, b.question, b.question_mask), b.label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    w = max(1, min(20, len(losses) // 5))
    return sum(losses[:w]) / w, sum(losses[-w:]) / w


@torch.no_grad()
def predict(model: BenchModel, batch: Batch, chunk: int = 256) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, batch.label.shape[0], chunk):
        sl = slice(i, i + chunk)
        logits = model(batch.frames[sl], batch.question[sl], batch.question_mask[sl])
        out.append(logits.argmax(-1))
    return torch.cat(out)


def kind_of(label: torch.Tensor) -> torch.Tensor:
    """0 = none, else 1 + kind (size class dropped)."""
    return torch.where(label > 0, 1 + (label - 1) // 3, torch.zeros_like(label))


def run_one(cfg: TokenBenchConfig, seed: int, row: str) -> RowRun:
    """Train and score one (seed, row). Its model is initialised from ``seed`` and its batches
    come from its own generator, so a run gives the same result alone, in any order or in
    any worker process."""
    torch.set_num_threads(cfg.threads)
    world = make_world(cfg)
    ev = eval_batch(cfg, world, seed)
    torch.manual_seed(seed)
    model = BenchModel(cfg, row, adapter_widths(cfg)[row])
    t0 = time.perf_counter()
    first, last = train_row(model, cfg, world, seed)
    pred = predict(model, ev)
    return RowRun(
        row=row,
        seed=seed,
        params=count_params(model),
        seconds=round(time.perf_counter() - t0, 1),
        first_loss=round(first, 4),
        last_loss=round(last, 4),
        correct=(pred == ev.label).tolist(),
        kind_correct=(kind_of(pred) == kind_of(ev.label)).tolist(),
    )


def _log_run(run: RowRun) -> None:
    acc = sum(run.correct) / len(run.correct)
    log.info(
        "seed %d %-10s acc %.3f loss %.3f -> %.3f (%d params, %.0f s)",
        run.seed, run.row, acc, run.first_loss, run.last_loss, run.params, run.seconds,
    )  # fmt: skip


def run_benchmark(cfg: TokenBenchConfig, progress: bool = True) -> BenchResult:
    """All rows x seeds; returns per-item correctness and the evaluation metadata.

    The (seed, row) runs are independent, so ``cfg.workers`` processes train them side by
    side (the 24 runs of the full benchmark keep 2 cores busy to the end, where one process
    per seed would leave a core idle for the third seed)."""
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    world = make_world(cfg)
    result = BenchResult(config=to_dict(cfg))
    for seed in range(cfg.seeds):
        ev = eval_batch(cfg, world, seed)
        result.eval_meta[seed] = {
            "label": ev.label.tolist(),
            "size": ev.size.tolist(),
            "distractors": ev.distractors.tolist(),
            "side_question": [int(x) for x in ev.side_question.tolist()],
        }
    build_models(cfg, 0)  # the parameter-budget check, before any training
    tasks = [(seed, row) for seed in range(cfg.seeds) for row in cfg.rows]
    workers = min(cfg.workers or os.cpu_count() or 1, len(tasks))
    runs: list[RowRun] = []
    if workers == 1:
        for seed, row in tasks:
            runs.append(run_one(cfg, seed, row))
            if progress:
                _log_run(runs[-1])
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked torch state in the workers
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_one, cfg, seed, row) for seed, row in tasks]
            for fut in as_completed(futures):
                runs.append(fut.result())
                if progress:
                    _log_run(runs[-1])
    order = {task: i for i, task in enumerate(tasks)}
    result.runs = sorted(runs, key=lambda r: order[(r.seed, r.row)])
    result.wall_s = time.perf_counter() - start
    return result


def save_result(result: BenchResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(result.to_json()))
    return path


def load_result(path: Path) -> dict[str, Any]:
    """A results.json written by ``save_result``; a clear error for anything else."""
    if not path.is_file():
        raise Mu2Error("results file not found", path=str(path),
                       fix="pass the results.json that `mu2 bench tokenizer --out DIR` wrote")  # fmt: skip
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Mu2Error("not valid JSON", path=str(path)) from None
    missing = [k for k in ("config", "eval_meta", "runs") if not isinstance(data, dict) or k not in data]
    if missing:
        raise Mu2Error(f"not a tokenizer-benchmark results file (no {', '.join(missing)})",
                       path=str(path), fix="pass DIR/results.json of `mu2 bench tokenizer`")  # fmt: skip
    return data
