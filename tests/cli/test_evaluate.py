"""``mu2 eval`` and ``mu2 green`` through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from mu2.cli.main import main

ROWS = [
    ("c1", "chest", "Small left pleural effusion. No lung nodule.", "Small left pleural effusion."),
    (
        "c2",
        "chest",
        "A 6 mm nodule in the right upper lobe.",
        "A 6 mm nodule in the left upper lobe.",
    ),
    ("a1", "abdomen", "Hepatic steatosis. No ascites.", "Hepatic steatosis. Moderate ascites."),
    ("a2", "abdomen", "Splenomegaly. The liver is normal.", "The liver is normal."),
]


def run_cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as done:  # typer's standalone mode exits with SystemExit on success
        return int(done.code or 0)


def _write(path, rows=ROWS) -> None:
    with path.open("w") as f:
        for case_id, region, ref, pred in rows:
            row = {"id": case_id, "region": region, "reference": ref, "prediction": pred}
            f.write(json.dumps(row) + "\n")


def test_eval_writes_all_outputs_and_prints_the_table(tmp_path, capsys) -> None:
    pred = tmp_path / "pred.jsonl"
    _write(pred)
    out = tmp_path / "out"
    code = run_cli(
        [
            "eval",
            "--pred",
            str(pred),
            "--metrics",
            "bleu,rouge,green",
            "--by",
            "region",
            "--out",
            str(out),
            "--bootstrap",
            "100",
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| pred (n=4) |" in printed and "GREEN (offline rules judge)" in printed
    for name in (
        "metrics.json",
        "metrics.csv",
        "table.md",
        "per_case.jsonl",
        "green_answers.jsonl",
    ):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["settings"]["bootstrap"] == 100 and set(saved["groups"]) == {"chest", "abdomen"}


def test_eval_bad_input_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert run_cli(["eval", "--pred", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mu2: error:") and "none.jsonl" in err and "\n" not in err
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"id": "x", "reference": "r"}) + "\n")
    assert run_cli(["eval", "--pred", str(pred), "--metrics", "rouge"]) == 2
    assert "p.jsonl:1: missing key(s) prediction" in capsys.readouterr().err
    _write(pred)
    assert run_cli(["eval", "--pred", str(pred), "--metrics", "rouge,cider"]) == 2
    assert "unknown metrics ['cider']" in capsys.readouterr().err


def test_green_scores_one_pair_and_reads_files(tmp_path, capsys) -> None:
    ref = "Small left pleural effusion. A 6 mm nodule in the right upper lobe."
    assert run_cli(["green", "--ref", ref, "--cand", ref]) == 0
    out = capsys.readouterr().out
    assert "[Matched Findings]" in out and "GREEN = 1.0000" in out
    assert "offline rules judge, not the GREEN model" in out
    cand = tmp_path / "cand.txt"
    cand.write_text("Small left pleural effusion.")
    assert run_cli(["green", "--ref", ref, "--cand", f"@{cand}"]) == 0
    out = capsys.readouterr().out
    assert "matched findings: 1;" in out and "(b) 1" in out  # the nodule is missing
    assert "GREEN = 0.5000" in out  # 1 / (1 + 1)
    assert run_cli(["green", "--ref", ref, "--cand", f"@{tmp_path / 'missing.txt'}"]) == 2


@pytest.mark.slow
def test_eval_with_every_metric(tmp_path, capsys) -> None:
    pred = tmp_path / "pred.jsonl"
    _write(pred)
    assert run_cli(["eval", "--pred", str(pred), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert {"bleu1", "bleu4", "rouge1", "rougeL_coco", "meteor", "bertscore", "green"} <= set(
        saved["overall"]
    )
    assert "not roberta-large" in saved["labels"]["bertscore"]
