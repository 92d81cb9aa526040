"""`mu2 model info`: parameter counts per part, for a spec or a saved folder; bad input -> 2."""

from __future__ import annotations

import json

from mu2.cli.main import main as _main


def main(args: list[str]) -> int:
    try:
        return _main(args)
    except SystemExit as done:  # typer's standalone mode exits with SystemExit on success
        return int(done.code or 0)


def test_info_for_the_paper_size_reports_every_part(capsys):
    assert main(["model", "info", "--size", "paper", "--preset", "mu2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    params = info["parameters"]
    assert round(params["vision"] / 1e6, 1) == 87.4  # M3D-CLIP ViT
    assert info["visual_tokens"] == 256 and info["selected_k"] == 1024
    assert params["total"] == sum(params[k] for k in ("vision", "projector", "tokenizer", "llm"))


def test_info_for_a_saved_folder_and_errors(tmp_path, capsys):
    from mu2.model import build

    build("tiny", "perceiver", train_texts=["The liver is normal."]).save_pretrained(tmp_path)
    assert main(["model", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "preset:        perceiver" in out and "tokenizer" in out
    assert main(["model", "info", str(tmp_path / "missing")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["model", "info", "--preset", "linvt+dtss"]) == 2
    assert "did you mean 'linvt+dts'" in capsys.readouterr().err
