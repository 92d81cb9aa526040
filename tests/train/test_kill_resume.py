"""A real kill: SIGKILL a `mu2 train sft` process mid-run, resume, compare with a clean run.

Slow (three model builds and two process start-ups); the default suite has the in-process
``stop_after`` variant in test_sft.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mu2.engine.checkpoint import list_checkpoints
from mu2.train.sft import run_sft

MU2 = Path(sys.executable).parent / "mu2"


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(sft_overrides, sft_config, tmp_path):
    common = ["max_steps=8", "save_every=1", "keep_last=3", "batch_size=1", "grad_accum=2"]
    reference = run_sft(sft_config(tmp_path / "clean", *common))

    run = tmp_path / "killed"
    argv = [str(MU2), "train", "sft", *sft_overrides(run, *common)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while len(list_checkpoints(run)) < 2:  # killed after its second checkpoint
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = list_checkpoints(run)
    assert done and not (run / "final").exists()
    resumed = run_sft(sft_config(run, *common, "resume=auto"))

    a, b = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
