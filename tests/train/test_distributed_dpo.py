"""A DPO step on two CPU processes (torchrun + gloo) equals one process with accumulation.

``accelerate launch --cpu --num_processes 2`` starts one process on this kind of machine;
torchrun with ``Accelerator(cpu=True)`` inside gives two gloo ranks.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mu2.config import load_config
from mu2.engine.logging import read_metrics
from mu2.train.config import DPOConfig
from mu2.train.dpo import run_dpo

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_process_dpo_matches_one_process_with_accumulation(
    tiny_model_dir, pairs_file, tmp_path
):
    def overrides(out: Path, *extra: str) -> list[str]:
        return [
            f"model.sft_model={tiny_model_dir}", f"data.train={pairs_file}", f"output_dir={out}",
            "data.limit=4", "batch_size=1", "max_steps=2", "device=cpu", "num_threads=1",
            "tensorboard=false", "num_sample_reports=0", "eval_every=0", "log_every=1",
            "optim.warmup_ratio=0", "optim.lr=1e-3", *extra,
        ]  # fmt: skip

    # 2 processes x 1 pair == 1 process x 1 pair x accumulation 2 (global batch 2)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(WORKER), "dpo", str(tmp_path), *overrides(tmp_path / "ddp"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2: DistributedType.MULTI_CPU done" in proc.stdout

    rank0 = load_file(tmp_path / "rank0.safetensors")
    rank1 = load_file(tmp_path / "rank1.safetensors")
    for key in rank0:  # DDP keeps the replicas identical
        assert torch.equal(rank0[key], rank1[key]), key

    single = run_dpo(load_config(DPOConfig, None, overrides(tmp_path / "one", "grad_accum=2")))
    one = load_file(single / "model.safetensors")
    for key in one:
        torch.testing.assert_close(rank0[key], one[key], rtol=1e-4, atol=1e-5)
    start = load_file(tiny_model_dir / "model.safetensors")
    moved = sum(not torch.equal(start[k], one[k]) for k in one if k in start)
    assert moved > 0  # the step changed the policy
    ddp = [r["loss"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl", "train")]
    ref = [r["loss"] for r in read_metrics(tmp_path / "one" / "metrics.jsonl", "train")]
    assert len(ddp) == 2
    torch.testing.assert_close(torch.tensor(ddp), torch.tensor(ref), rtol=1e-5, atol=1e-5)
