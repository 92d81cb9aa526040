"""Tables of the ablation: cells are mean / sd of the metrics files, claims compare means."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mu2.bench.config import AblationConfig
from mu2.bench.table import Cell, build_tables, claim_verdict, table2_markdown, write_tables
from mu2.errors import Mu2Error


def test_cell_mean_and_sample_sd() -> None:
    cell = Cell([0.2, 0.4, 0.9], ["a", "b", "c"])
    assert cell.mean == pytest.approx(0.5)
    assert cell.sd == pytest.approx(statistics.stdev([0.2, 0.4, 0.9]))  # n - 1 in the denominator
    assert cell.text() == f"0.500 ± {statistics.stdev([0.2, 0.4, 0.9]):.3f}"
    assert Cell([0.25], ["a"]).sd is None and Cell([0.25], ["a"]).text() == "0.250"


@pytest.mark.parametrize(
    ("better", "worse", "verdict"),
    [
        ([0.5, 0.6, 0.7], [0.1, 0.2, 0.3], "holds"),  # gap 0.4 > sd 0.1
        ([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], "reversed"),
        ([0.30, 0.40, 0.50], [0.28, 0.38, 0.48], "holds, within 1 sd"),
        ([0.28, 0.38, 0.48], [0.30, 0.40, 0.50], "does not hold, within 1 sd"),
        ([0.4], [0.3], "holds (1 seed, no sd)"),
    ],
)
def test_claim_verdict(better: list[float], worse: list[float], verdict: str) -> None:
    diff, got = claim_verdict(Cell(better, []), Cell(worse, []))
    assert diff == pytest.approx(statistics.fmean(better) - statistics.fmean(worse))
    assert got == verdict


def _write_metrics(out: Path, dataset: str, seed: int, row: str, scores: dict) -> Path:
    path = out / "runs" / dataset / f"seed{seed}" / row / "metrics" / "test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    kinds = {"renal_cyst": {"n": 4, "positives": 2, "sensitivity": 0.5, "specificity": 1.0}}
    path.write_text(json.dumps({
        "scores": scores, "labels": {k: k for k in scores}, "per_finding": {"kinds": kinds},
    }))  # fmt: skip
    return path


def test_tables_are_built_from_metrics_files(tmp_path: Path) -> None:
    cfg = AblationConfig(out=str(tmp_path), presets=["linvt", "mu2"], seeds=2, data="procedural")
    (tmp_path / "config.json").write_text(json.dumps({"sft_steps": 7}))
    values = {("linvt", 0): 0.11, ("linvt", 1): 0.13, ("mu2", 0): 0.31, ("mu2", 1): 0.37}
    for (row, seed), v in values.items():
        _write_metrics(tmp_path, "procedural", seed, row, {"green": v, "bleu1": 2 * v})
    tables = build_tables(tmp_path, cfg)
    cell = tables.cells[("procedural", "test", "mu2")]["green"]
    assert cell.values == [0.31, 0.37] and cell.mean == pytest.approx(0.34)
    assert cell.sources == [f"runs/procedural/seed{s}/mu2/metrics/test.json" for s in (0, 1)]
    # the DPO row and the generalisation split have no files: listed, never invented
    assert "runs/procedural/seed0/mu2+dpo/metrics/test.json" in tables.missing
    assert ("procedural", "test", "mu2+dpo") not in tables.cells
    md = table2_markdown(tables, "procedural", "test")
    assert f"| {cell.text()} |" in md and "mu2 Tokenizer, SFT + DPO (n=0)" in md
    files = write_tables(tables, tmp_path)
    doc = json.loads(files["json"].read_text())
    by_key = {(c["row"], c["metric"]): c for c in doc["cells"]}
    assert by_key[("linvt", "bleu1")]["mean"] == pytest.approx(0.24)
    assert "sft_steps" in doc["config"]


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(Mu2Error, match="unknown preset"):
        AblationConfig(presets=["mu3"])
    with pytest.raises(Mu2Error, match="add mu2 to presets"):
        AblationConfig(presets=["linvt"])  # the DPO row is on by default
    with pytest.raises(Mu2Error, match="seeds must be >= 1"):
        AblationConfig(seeds=0)
