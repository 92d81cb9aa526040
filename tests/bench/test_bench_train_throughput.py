"""benchmarks/bench_train_throughput.py runs both recipes and prints positive rates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train_throughput.py"


@pytest.mark.slow
def test_throughput_script_prints_sft_and_dpo_rates(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_train_throughput", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--steps", "3", "--log-every", "1", "--cases", "12", "--batch-size", "2",
            "--dpo-batch-size", "2", "--workdir", str(tmp_path)]  # fmt: skip
    assert script.main(argv) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("SFT", "DPO"):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    assert set(rows) == {"SFT", "DPO"}
    for batch, median, best, whole, per_cpu, wall, cpu in rows.values():
        assert batch == 2 and 0 < median <= best and whole > 0 and per_cpu > 0
        assert wall > 0 and cpu > 0
    assert (tmp_path / "sft" / "final" / "training_summary.json").is_file()
    assert (tmp_path / "dpo" / "final" / "training_summary.json").is_file()
