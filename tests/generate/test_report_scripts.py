"""The latency scripts run (GPU script in its CPU dry-run mode) and print the full split."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, folder: str = "benchmarks"):
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(out: str) -> dict[str, tuple[float, float]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ("load", "prepare", "encode", "generate", "total"):
            rows[cells[0]] = (float(cells[1]), float(cells[2]))
    return rows


def test_gpu_latency_script_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    script = _load("gpu_report_latency")
    assert script.main(["--dry-run-tiny", "--runs", "1", "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {"load", "prepare", "encode", "generate", "total"}
    assert all(median > 0 for median, _ in rows.values())
    assert "new tokens [3]" in out  # forced full-length answer


def test_bench_report_script(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _load("bench_report")
    argv = ["--model", str(tiny_model_dir), "--runs", "1", "--max-new-tokens", "2", "--no-cli"]
    assert script.main([*argv, "--region", "abdomen"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["total"][0] >= rows["encode"][0] > 0


def _exit_code(main, argv: list[str]) -> int:
    try:
        return main(argv) or 0
    except SystemExit as end:  # typer ends a successful command with SystemExit(0)
        return int(end.code or 0)


def test_image_use_command_compares_own_and_shuffled_images(
    tiny_model_dir: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mu2.cli.main import main

    argv = ["diagnose", "image-use", "--data", str(synth_dir), "--model", str(tiny_model_dir),
            "--probe-train", "8"]  # fmt: skip
    assert _exit_code(main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. per-finding accuracy")
    own, other = re.search(r"own image (\d+\.\d+) vs another row's image (\d+\.\d+)", out).groups()
    assert float(own) > 0 and float(other) > 0
    assert "3. linear decodability" in out


def test_heatmap_localisation_command(
    tiny_model_dir: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mu2.cli.main import main

    argv = ["diagnose", "heatmap-localisation", "--data", str(synth_dir), "--split", "train",
            "--model", str(tiny_model_dir), "--limit", "1"]  # fmt: skip
    assert _exit_code(main, argv) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["n"] == 1 and doc["chance"] == 0.1 and doc["rate"] in (0.0, 1.0)


def test_gpu_decode_speed_script_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    script = _load("gpu_decode_speed")
    assert script.main(["--dry-run-tiny", "--runs", "1", "--batch", "2",
                        "--max-new-tokens", "3"]) == 0  # fmt: skip
    rows = []
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in ("one scan", "batch of 2"):
            rows.append(cells)
    assert [(r[0], r[1]) for r in rows] == [
        ("one scan", "dynamic"), ("batch of 2", "dynamic"),
        ("one scan", "static"), ("batch of 2", "static"),
    ]  # fmt: skip
    # Each row decoded with the KV cache it names.
    assert [r[2] for r in rows] == ["DynamicCache"] * 2 + ["StaticCache"] * 2
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)
