"""Two CPU processes (torchrun + gloo) train the same SFT as one process with accumulation.

``accelerate launch --cpu --num_processes 2`` starts one process on this kind of machine;
torchrun with ``Accelerator(cpu=True)`` inside gives two gloo ranks.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from mu2.engine.logging import read_metrics
from mu2.train.sft import run_sft

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_processes_match_one_with_the_same_global_batch(sft_overrides, sft_config, tmp_path):
    common = ["max_steps=3", "save_every=2", "data.augment=true", "optim.warmup_ratio=0"]
    # 2 processes x batch 2 == 1 process x batch 2 x accumulation 2 (global batch 4)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(WORKER), "sft", str(tmp_path), *sft_overrides(tmp_path / "ddp", *common),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2: DistributedType.MULTI_CPU done" in proc.stdout

    rank0 = load_file(tmp_path / "rank0.safetensors")
    rank1 = load_file(tmp_path / "rank1.safetensors")
    for key in rank0:  # DDP keeps the replicas identical
        assert torch.equal(rank0[key], rank1[key]), key
    assert (tmp_path / "ddp" / "checkpoint-0000002" / "random_states_1.pkl").is_file()

    single = run_sft(sft_config(tmp_path / "single", *common, "grad_accum=2"))
    one = load_file(single / "model.safetensors")
    for key in one:
        torch.testing.assert_close(rank0[key], one[key], rtol=1e-4, atol=1e-5)
    ddp_loss = [r["loss"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl", "train")]
    one_loss = [r["loss"] for r in read_metrics(tmp_path / "single" / "metrics.jsonl", "train")]
    assert len(ddp_loss) == 3
    torch.testing.assert_close(torch.tensor(ddp_loss), torch.tensor(one_loss), rtol=1e-5, atol=1e-5)
