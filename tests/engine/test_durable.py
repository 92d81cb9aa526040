"""Durable writes: everything fsynced before the rename, and a model swap with no gap."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

import mu2.engine.checkpoint as checkpoint
import mu2.engine.durable as durable
from mu2.engine.checkpoint import TrainState, save_checkpoint
from mu2.engine.durable import swap_into_place


def _model_folder(path: Path, value: float) -> Path:
    path.mkdir(parents=True)
    save_file({"w": torch.full((64, 64), value)}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"value": value}))
    return path


def _value(folder: Path) -> float | None:
    """The model's value if ``folder`` holds a complete, loadable model, else None."""
    try:
        return float(load_file(str(folder / "model.safetensors"))["w"][0, 0])
    except Exception:  # missing or partial: not a model
        return None


def test_checkpoint_files_and_folder_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = durable.fsync_path, os.replace

    def spy_fsync(path):
        events.append(("fsync", str(path)))
        real_fsync(path)

    def spy_replace(src, dst):
        events.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(durable, "fsync_path", spy_fsync)
    monkeypatch.setattr(checkpoint, "fsync_path", spy_fsync)
    monkeypatch.setattr(checkpoint.os, "replace", spy_replace)
    model = torch.nn.Linear(4, 2)
    acc = Accelerator(cpu=True)
    model, opt = acc.prepare(model, torch.optim.AdamW(model.parameters()))
    final = save_checkpoint(acc, tmp_path, TrainState(step=1), keep_last=2)

    rename = events.index(("rename", str(final)))
    synced_before = {p for kind, p in events[:rename] if kind == "fsync"}
    tmp = final.with_name(final.name + ".tmp")
    for path in final.rglob("*"):
        assert str(tmp / path.relative_to(final)) in synced_before, path
    assert str(tmp) in synced_before
    assert ("fsync", str(tmp_path)) in events[rename:]  # the rename itself reaches the disk


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_swap_never_leaves_the_model_missing(tmp_path, monkeypatch, exchange):
    """Check the model folder at every step boundary of the swap, as a crash there would
    leave it: the complete old or the complete new model is always at ``dest`` (or, without
    an atomic exchange, the old one as ``dest.old`` between the two renames)."""
    dest = _model_folder(tmp_path / "final", 1.0)
    new = _model_folder(tmp_path / "final.tmp", 2.0)
    seen: list[float | None] = []

    def check():
        value = _value(dest)
        if value is None and not exchange:
            value = _value(dest.with_name("final.old"))
        seen.append(value)

    def wrap(fn):
        def call(*args, **kw):
            check()
            out = fn(*args, **kw)
            check()
            return out

        return call

    if not exchange:
        monkeypatch.setattr(durable, "_exchange", lambda a, b: False)
    else:
        monkeypatch.setattr(durable, "_exchange", wrap(durable._exchange))
    monkeypatch.setattr(durable.os, "replace", wrap(os.replace))
    monkeypatch.setattr(durable.shutil, "rmtree", wrap(shutil.rmtree))
    assert swap_into_place(new, dest) == dest

    assert seen and None not in seen
    assert _value(dest) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_swap_into_an_empty_place(tmp_path):
    new = _model_folder(tmp_path / "m.tmp", 3.0)
    swap_into_place(new, tmp_path / "m")
    assert _value(tmp_path / "m") == 3.0 and not new.exists()
