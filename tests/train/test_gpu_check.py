"""benchmarks/gpu_check.sh: the GPU benchmark's CPU dry run prints its table."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a fresh process building a model: ~10 s on 2 idle cores, more when shared
def test_gpu_check_dry_run_prints_the_table():
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = dict(
        (cells[1].strip(), cells[2].strip())
        for line in proc.stdout.splitlines()
        if (cells := line.split("|")) and len(cells) == 4 and not line.startswith("|-")
    )
    assert table["device"] == "CPU (dry run)"
    assert table["training steps"].startswith("2 in ")
    assert float(table["cases/s"]) > 0
    assert any(k.startswith("report latency, 8 new tokens") for k in table)
