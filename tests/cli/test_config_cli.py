"""Configs by name (`mu2 config list/show`, `--config paper`), one override syntax
(positional key=value, `--set` as its alias) and `-h` on every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mu2.cli.main import build_app
from mu2.cli.main import main as _main

ROOT = Path(__file__).resolve().parents[2]


def main(args: list[str]) -> int:
    try:
        return _main(args)
    except SystemExit as done:  # typer's standalone mode exits with SystemExit on success
        return int(done.code or 0)


def _commands() -> list[tuple[list[str], Any]]:
    """Every command and group of the CLI, with its argv path (typer's own click objects,
    which newer typer vendors: duck-typed rather than isinstance of click's classes)."""
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], cmd: Any) -> None:
        found.append((path, cmd))
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk([*path, name], sub)

    walk([], typer.main.get_command(build_app()))
    return found


def test_config_list_names_the_shipped_files(capsys):
    assert main(["config", "list"]) == 0
    lines = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    on_disk = {f"{p.parent.name}/{p.stem}" for p in (ROOT / "configs").glob("*/*.yaml")}
    assert set(lines) == on_disk  # the files themselves, not a list kept in code
    for name in ("sft/paper", "sft/paper_lora", "dpo/paper", "accelerate/deepspeed_zero3_offload"):
        assert lines[name].strip()  # the config's first comment line describes it


def test_config_show_prints_the_file(capsys):
    assert main(["config", "show", "sft/paper", "--path"]) == 0
    assert Path(capsys.readouterr().out.strip()) == ROOT / "configs" / "sft" / "paper.yaml"
    assert main(["config", "show", "dpo/paper"]) == 0
    assert capsys.readouterr().out == (ROOT / "configs" / "dpo" / "paper.yaml").read_text()
    assert main(["config", "show", "sft/nosuch"]) == 2
    assert "no shipped config 'sft/nosuch'" in capsys.readouterr().err


def _printed(args: list[str], capsys) -> dict:
    assert main(["train", "sft", "--print-config", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_config_by_name_equals_the_path_and_overrides_agree(capsys):
    by_path = _printed(["--config", str(ROOT / "configs" / "sft" / "paper.yaml")], capsys)
    paper = yaml.safe_load((ROOT / "configs" / "sft" / "paper.yaml").read_text())
    assert by_path["output_dir"] == paper["output_dir"] == "runs/sft-paper"
    assert by_path["optim"]["lr"] == paper["optim"]["lr"]
    assert _printed(["--config", "paper"], capsys) == by_path
    assert _printed(["--config", "sft/paper"], capsys) == by_path

    positional = _printed(["--config", "paper", "max_steps=7", "optim.lr=3e-5"], capsys)
    alias = _printed(
        ["--config", "paper", "--set", "max_steps=7", "--set", "optim.lr=3e-5"], capsys
    )
    assert positional == alias
    assert positional["max_steps"] == 7 and positional["optim"]["lr"] == 3e-5
    mixed = _printed(["--config", "paper", "max_steps=7", "--set", "max_steps=9"], capsys)
    assert mixed["max_steps"] == 9  # --set comes after the positional ones: the later wins

    assert main(["train", "sft", "--config", "nosuch", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "no shipped config 'sft/nosuch'" in err and "sft/paper" in err


def test_one_override_syntax_everywhere():
    """A command with --set also takes the same overrides as positional KEY=VALUE."""
    with_set = []
    for path, cmd in _commands():
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if "--set" in options:
            with_set.append(path)
            positional = [p for p in cmd.params if not p.opts[0].startswith("-") and p.nargs == -1]
            assert positional and positional[0].metavar == "KEY=VALUE", path
    for expected in (["train", "sft"], ["train", "dpo"], ["prefs", "build"], ["serve"]):
        assert expected in with_set


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_on_every_command(flag, capsys):
    paths = [path for path, _ in _commands()]
    assert len(paths) > 20
    for path in paths:
        assert main([*path, flag]) == 0, path
        assert "Usage:" in capsys.readouterr().out, path
