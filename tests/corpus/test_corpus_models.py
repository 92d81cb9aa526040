"""Broken model folders through `mu2 report`, and the CLI's last-resort handler.

A model folder is user input too: a truncated or empty weights file, a config that is not
JSON, a ``pytorch_model.bin`` that hides code in its pickle. Each gives exit 2 and one
line; the pickle is never executed (weights are read with ``weights_only``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mu2.cli.main import main

TRAIN_TEXTS = ["Describe the findings of the abdomen.", "The liver is normal. No ascites."]
MARKER = "mu2-corpus-pickle-ran"


class _Evil:
    """Unpickling this would create a file: proof that code in a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _weights_only_bin(d: Path) -> None:
    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()


def _junk_bin(d: Path) -> None:
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"not a checkpoint\n")


def _pickle_bin(d: Path) -> None:
    (d / "model.safetensors").unlink()
    torch.save({"w": _Evil(d / MARKER)}, d / "pytorch_model.bin")


def _truncate(d: Path) -> None:
    blob = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(blob[: len(blob) // 2])


def _empty(d: Path) -> None:
    (d / "model.safetensors").write_bytes(b"")


def _no_weights(d: Path) -> None:
    (d / "model.safetensors").unlink()


def _bad_config(d: Path) -> None:
    (d / "config.json").write_text("{not json")


BROKEN: dict[str, Callable[[Path], None]] = {
    "junk_pytorch_model_bin": _junk_bin,
    "pickle_with_code": _pickle_bin,
    "truncated_safetensors": _truncate,
    "empty_safetensors": _empty,
    "no_weights": _no_weights,
    "config_not_json": _bad_config,
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    from mu2.model import build

    out = tmp_path_factory.mktemp("corpus_model") / "model"
    build("tiny", preset="mu2", train_texts=TRAIN_TEXTS, seed=0).save_pretrained(out)
    return out


def _report(model: Path, scan: Path, capfd) -> tuple[int, str, str]:
    try:
        code = main(["report", str(scan), "--model", str(model), "--max-new-tokens", "2"])
    except SystemExit as done:
        code = done.code
    out = capfd.readouterr()
    return int(code or 0), out.out, out.err


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_model_folder_one_line(name, saved_model, real_ct_path, tmp_path, capfd):
    model = tmp_path / name
    shutil.copytree(saved_model, model)
    BROKEN[name](model)
    code, out, err = _report(model, real_ct_path, capfd)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mu2: error: "), err
    assert str(model) in lines[0] and "fix:" in lines[0]
    assert not (model / MARKER).exists()  # the pickle's code never ran


def test_pytorch_model_bin_alone_is_read(saved_model, real_ct_path, tmp_path, capfd):
    """A plain tensor ``pytorch_model.bin`` (no safetensors) loads with weights_only."""
    model = tmp_path / "bin_only"
    shutil.copytree(saved_model, model)
    _weights_only_bin(model)
    code, out, err = _report(model, real_ct_path, capfd)
    assert code == 0, err
    assert "time:" in out


def test_last_resort_one_line_exit_1(monkeypatch, real_ct_path, capfd):
    """An exception no command expected: one line, exit 1, the traceback only on request."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero deep inside")

    monkeypatch.setattr("mu2.io.load_ct", broken)
    monkeypatch.delenv("MU2_TRACEBACK", raising=False)
    assert main(["inspect", str(real_ct_path)]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "internal error: ZeroDivisionError: division by zero" in err and "--verbose" in err

    assert main(["--verbose", "inspect", str(real_ct_path)]) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err


def test_last_resort_out_of_memory_is_user_facing(monkeypatch, real_ct_path, capfd):
    def oom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("mu2.io.load_ct", oom)
    monkeypatch.delenv("MU2_TRACEBACK", raising=False)
    assert main(["inspect", str(real_ct_path)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err and "fix:" in err
