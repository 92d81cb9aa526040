"""The latency scripts run (GPU script in its CPU dry-run mode) and print the full split."""

from __future__ import annotations

import importlib.util
import json
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


def test_heatmap_hit_rate_script(
    tiny_model_dir: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _load("heatmap_hit_rate", "scripts")
    argv = ["--synth", str(synth_dir), "--split", "train", "--model", str(tiny_model_dir)]
    assert script.main([*argv, "--limit", "1"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["n"] == 1 and doc["chance"] == 0.1 and doc["rate"] in (0.0, 1.0)
