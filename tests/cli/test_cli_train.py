"""`mu2 train sft|dpo` and `mu2 prefs build` through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from mu2.cli.main import main


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # typer exits with SystemExit(0) on success
        return int(done.code or 0)


SMALL = "model.overrides={num_selected: 16, num_queries: 8, svr_layers: 1, tta_layers: 1}"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("synth")
    synthesize(
        out,
        4,
        1,
        make_config("tiny", "tiny"),
        workers=1,
        progress=False,
        preset="tiny",
        size="tiny",
    )
    return out


def test_print_config_applies_overrides(capsys):
    assert run_cli(["train", "sft", "--print-config", "batch_size=3", "optim.lr=0.5"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["batch_size"] == 3 and cfg["optim"]["lr"] == 0.5
    assert run_cli(["train", "dpo", "--config", "configs/dpo/paper.yaml", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["sft_model"] == "runs/sft-paper/final"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "sft", "batch_sise=3"], "did you mean 'batch_size'"),
        (["train", "sft", "data.train=/nonexistent/train.jsonl"], "JSONL file not found"),
        (["train", "dpo", "model.sft_model=/nonexistent"], "is not a saved mu2 model"),
        (["prefs", "build", "--n", "1"], "n must be >= 2"),
        (["prefs", "build", "--out", "pairs.txt"], "must end in .jsonl"),
        (["prefs", "build", "--tie-break", "coin"], "tie_break must be none or errors"),
        (["prefs", "build", "--min-margin", "2"], "min_margin must be in [0, 1]"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli([*argv, "device=cpu"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mu2: error:") and message in err[0]


def test_sft_then_prefs_through_the_cli(synth, tmp_path, capsys):
    run = tmp_path / "sft"
    argv = [
        "train", "sft", f"data.train={synth / 'train.jsonl'}", "data.val=null", f"output_dir={run}",
        "max_steps=1", "batch_size=2", "data.limit=2", "device=cpu", "num_threads=1",
        "tensorboard=false", "model.vision_path=null", "model.freeze_vision=false", SMALL,
    ]  # fmt: skip
    assert run_cli(argv) == 0
    assert f"SFT model: {run / 'final'}" in capsys.readouterr().out
    out = tmp_path / "prefs" / "pairs.jsonl"
    argv = [
        "prefs", "build", "--model", str(run / "final"), "--data", str(synth / "train.jsonl"),
        "--out", str(out), "--n", "2", "--limit", "1", "max_new_tokens=4", "device=cpu",
    ]  # fmt: skip
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "of 1 cases" in printed and "offline rules judge" in printed
