"""Checkpoints: atomic names, keep-last-N, and a save/load round trip of every state."""

import json

import pytest
import torch
from accelerate import Accelerator

from mu2.engine.checkpoint import (
    STATE_FILE,
    TrainState,
    list_checkpoints,
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
)
from mu2.engine.schedule import warmup_cosine
from mu2.errors import Mu2Error


def _setup(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = warmup_cosine(opt, total_steps=10, warmup_ratio=0.2)
    acc = Accelerator(cpu=True, step_scheduler_with_optimizer=False)
    return acc, *acc.prepare(model, opt, sched)


def _step(model, opt, sched):
    x = torch.randn(16, 4)  # global RNG: restored by a resume
    loss = model(x).pow(2).mean()  # dropout: global RNG as well
    loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def test_round_trip_restores_model_optimizer_scheduler_and_rng(tmp_path):
    acc, model, opt, sched = _setup(0)
    for _ in range(3):
        _step(model, opt, sched)
    save_checkpoint(acc, tmp_path, TrainState(step=3, epoch=0, batches_in_epoch=3), keep_last=2)
    for _ in range(2):
        _step(model, opt, sched)
    expected = [p.detach().clone() for p in model.parameters()]
    expected_lr = sched.get_last_lr()

    acc2, model2, opt2, sched2 = _setup(1)  # different init: everything must come from disk
    state = load_checkpoint(acc2, resolve_resume("auto", tmp_path))
    assert state == TrainState(step=3, epoch=0, batches_in_epoch=3)
    for _ in range(2):
        _step(model2, opt2, sched2)
    for a, b in zip(expected, model2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sched2.get_last_lr() == expected_lr


def test_keep_last_and_incomplete_checkpoints_are_ignored(tmp_path):
    acc, model, opt, sched = _setup(0)
    for step in (1, 2, 3):
        _step(model, opt, sched)
        save_checkpoint(acc, tmp_path, TrainState(step=step), keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-0000002",
        "checkpoint-0000003",
    ]
    # a run killed while saving leaves a .tmp folder, a crash before the rename one without state
    (tmp_path / "checkpoint-0000009.tmp").mkdir()
    (tmp_path / "checkpoint-0000008").mkdir()
    assert resolve_resume("auto", tmp_path).name == "checkpoint-0000003"
    assert json.loads((tmp_path / "checkpoint-0000003" / STATE_FILE).read_text())["step"] == 3
    # a leftover .tmp of the step being saved is replaced, never renamed into place half-written
    (tmp_path / "checkpoint-0000004.tmp").mkdir()
    (tmp_path / "checkpoint-0000004.tmp" / "junk").write_text("x")
    save_checkpoint(acc, tmp_path, TrainState(step=4), keep_last=2)
    assert not (tmp_path / "checkpoint-0000004" / "junk").exists()
    assert not (tmp_path / "checkpoint-0000004.tmp").exists()


def test_resume_values(tmp_path):
    assert resolve_resume("none", tmp_path) is None
    assert resolve_resume("auto", tmp_path / "missing") is None
    with pytest.raises(Mu2Error, match="not a complete checkpoint"):
        resolve_resume(str(tmp_path), tmp_path)
