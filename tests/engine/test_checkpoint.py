"""Checkpoints: atomic names, keep-last-N, and a save/load round trip of every state."""

import json
import logging

import pytest
import torch
from accelerate import Accelerator

from mu2.engine.checkpoint import (
    FILES_KEY,
    STATE_FILE,
    TrainState,
    list_checkpoints,
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
    verify_checkpoint,
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


def _two_checkpoints(tmp_path):
    acc, model, opt, sched = _setup(0)
    for step in (1, 2):
        _step(model, opt, sched)
        save_checkpoint(acc, tmp_path, TrainState(step=step), keep_last=3)
    return acc


def test_manifest_lists_every_file_of_the_checkpoint(tmp_path):
    _two_checkpoints(tmp_path)
    newest = tmp_path / "checkpoint-0000002"
    files = json.loads((newest / STATE_FILE).read_text())[FILES_KEY]
    on_disk = {p.relative_to(newest).as_posix() for p in newest.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {STATE_FILE}
    assert "optimizer.bin" in files and files["optimizer.bin"]["size"] > 0
    assert verify_checkpoint(newest) is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_resume_falls_back_past_a_damaged_checkpoint(tmp_path, caplog, damage):
    """A power loss can leave a renamed checkpoint with a short or garbled file."""
    _two_checkpoints(tmp_path)
    opt_file = tmp_path / "checkpoint-0000002" / "optimizer.bin"
    data = opt_file.read_bytes()
    if damage == "truncate":
        opt_file.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        opt_file.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    else:
        opt_file.unlink()
    with caplog.at_level(logging.WARNING, logger="mu2.engine.checkpoint"):
        chosen = resolve_resume("auto", tmp_path)
    assert chosen.name == "checkpoint-0000001"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "checkpoint-0000002" in warnings[0] and "optimizer.bin" in warnings[0]
    assert "checkpoint-0000001" in warnings[0]
    acc2, *_ = _setup(1)
    assert load_checkpoint(acc2, chosen).step == 1
    with pytest.raises(Mu2Error, match="damaged.*optimizer.bin"):
        resolve_resume(str(tmp_path / "checkpoint-0000002"), tmp_path)


def test_no_checkpoint_verifies_is_one_clear_error(tmp_path):
    _two_checkpoints(tmp_path)
    for ckpt in list_checkpoints(tmp_path):
        (ckpt / "model.safetensors").write_bytes(b"")
    with pytest.raises(Mu2Error, match="no checkpoint .* verifies") as info:
        resolve_resume("auto", tmp_path)
    assert "resume=none" in info.value.fix


def test_unreadable_checkpoint_without_manifest_is_a_mu2_error(tmp_path):
    """Checkpoints from before the manifest: a truncated optimizer is still one line."""
    acc = _two_checkpoints(tmp_path)
    ckpt = tmp_path / "checkpoint-0000002"
    state = json.loads((ckpt / STATE_FILE).read_text())
    del state[FILES_KEY]
    (ckpt / STATE_FILE).write_text(json.dumps(state))
    assert resolve_resume("auto", tmp_path) == ckpt  # nothing to verify against
    opt_file = ckpt / "optimizer.bin"
    opt_file.write_bytes(opt_file.read_bytes()[:100])
    with pytest.raises(Mu2Error, match="cannot be read") as info:
        load_checkpoint(acc, ckpt)
    assert "resume=auto" in info.value.fix
