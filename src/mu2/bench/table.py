"""The ablation's tables, built only from the per-run metrics files on disk.

Mean and sample sd over seeds of every metric, in the paper's Table 2 layout (component
check marks, then the metrics) per data set and split, a Table 1 analogue (methods x data
sets), per-finding sensitivity / specificity, and a plain check of the paper's ordering
claims. Every cell lists the metrics files it came from (results.json, table.csv).
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu2.bench.config import DPO_ROW, SPLITS, STATUS, AblationConfig
from mu2.bench.qdep import QDEP_SPLIT
from mu2.bench.score import FINDING_F1
from mu2.bench.table_extra import extra_sections, question_dependence_values
from mu2.metrics.green.backends import RULES_LABEL
from mu2.metrics.nlg import DEFAULT_BERTSCORE_LABEL
from mu2.metrics.result import TABLE_COLUMNS
from mu2.tokenizer import PRESETS

SPLIT_TITLES = {
    "test": "test split",
    "test_generalisation": "held-out generalisation split (finding pairs never seen together "
    "in training)",
}
COLUMNS: dict[str, str] = {**TABLE_COLUMNS, "Finding F1": FINDING_F1}
TABLE1_METRICS: tuple[str, ...] = ("bleu1", "rouge1", "meteor", "bertscore", "green", FINDING_F1)
ROW_NAMES: dict[str, str] = {
    "spp": "M3D spatial pooling (spp)",
    "perceiver": "Perceiver resampler (perceiver)",
    "linvt": "LinVT (baseline)",
    "linvt+rpe": "LinVT + RPE",
    "linvt+dts": "LinVT + DTS",
    "linvt+dmtp": "LinVT + DMTP",
    "mu2": "mu2 Tokenizer, SFT",
    DPO_ROW: "mu2 Tokenizer, SFT + DPO",
}
# The paper's claims (Table 2, GREEN on AMOS-MM; Table 1): (better row, worse row).
PAPER_CLAIMS: tuple[tuple[str, str], ...] = (
    ("linvt+rpe", "linvt"),
    ("linvt+dts", "linvt"),
    ("linvt+dmtp", "linvt"),
    ("mu2", "linvt+rpe"),
    ("mu2", "linvt+dts"),
    ("mu2", "linvt+dmtp"),
    ("mu2", "spp"),
    ("mu2", "perceiver"),
    (DPO_ROW, "mu2"),
)
CLAIM_METRICS: tuple[str, ...] = ("green", FINDING_F1)


@dataclass
class Cell:
    """One metric of one row over seeds: the values and the files they came from."""

    values: list[float]
    sources: list[str]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self) -> str:
        return f"{self.mean:.3f}" if self.sd is None else f"{self.mean:.3f} ± {self.sd:.3f}"


@dataclass
class Tables:
    datasets: list[str]
    splits: list[str]
    rows: list[str]
    seeds: list[int]
    cells: dict[tuple[str, str, str], dict[str, Cell]] = field(default_factory=dict)
    kinds: dict[tuple[str, str, str], dict[str, tuple[Cell, Cell]]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, dict[str, float]] = field(default_factory=dict)
    sft_ran: dict[str, Any] = field(default_factory=dict)
    """The resolved SFT config one run trained with (the recipe after the runner's wiring)."""


def metrics_path(out: Path, dataset: str, seed: int, row: str, split: str) -> Path:
    return out / "runs" / dataset / f"seed{seed}" / row / "metrics" / f"{split}.json"


def build_tables(out: Path, cfg: AblationConfig) -> Tables:
    """Collect the metrics files of ``cfg``'s rows, data sets and seeds under ``out``."""
    t = Tables(cfg.datasets, [], cfg.rows, cfg.seed_list)
    t.config = json.loads((out / "config.json").read_text())
    budget = out / "budget.json"  # every stage's resolved recipe config (mu2.bench.ablation)
    t.budget = json.loads(budget.read_text()) if budget.is_file() else {}
    for status in sorted((out / "runs").glob(f"*/seed*/*/{STATUS}")):
        doc = json.loads(status.read_text())
        if not str(doc.get("status", "")).startswith("trained"):
            t.skipped[str(status.parent.relative_to(out / "runs"))] = doc["status"]
    for dataset in cfg.datasets:
        for split in SPLITS:
            for row in cfg.rows:
                cells: dict[str, Cell] = {}
                kinds: dict[str, tuple[list, list, list]] = {}
                for seed in cfg.seed_list:
                    path = metrics_path(out, dataset, seed, row, split)
                    if not path.is_file():
                        if f"{dataset}/seed{seed}/{row}" not in t.skipped:
                            t.missing.append(str(path.relative_to(out)))
                        continue
                    doc = json.loads(path.read_text())
                    t.labels.update(doc["labels"])
                    src = str(path.relative_to(out))
                    for key, value in doc["scores"].items():
                        cells.setdefault(key, Cell([], [])).values.append(float(value))
                        cells[key].sources.append(src)
                    for kind, s in doc["per_finding"]["kinds"].items():
                        if s["positives"] and s["n"] > s["positives"]:
                            sens, spec, srcs = kinds.setdefault(kind, ([], [], []))
                            sens.append(s["sensitivity"])
                            spec.append(s["specificity"])
                            srcs.append(src)
                if cells:
                    t.cells[(dataset, split, row)] = cells
                    t.kinds[(dataset, split, row)] = {
                        k: (Cell(v[0], v[2]), Cell(v[1], v[2])) for k, v in sorted(kinds.items())
                    }
                    if split not in t.splits:
                        t.splits.append(split)
    qdep, notes = question_dependence_values(out, cfg)
    t.skipped.update(notes)
    for (dataset, row), values in qdep.items():
        cells = t.cells.setdefault((dataset, QDEP_SPLIT, row), {})
        cells.update({key: Cell(v, srcs) for key, (v, srcs) in values.items()})
        t.splits.append(QDEP_SPLIT)
    t.splits = [s for s in SPLITS if s in t.splits]
    t.timing = timing_summary(out)
    ran = sorted((out / "runs").glob("*/seed*/*/sft/config.json"))
    t.sft_ran = json.loads(ran[0].read_text()) if ran else {}
    return t


def timing_summary(out: Path) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds per stage, summed over every timing.json under ``out``."""
    total: dict[str, dict[str, float]] = {}
    for path in sorted(out.rglob("timing.json")):
        for stage, v in json.loads(path.read_text()).items():
            name = stage.split("_")[0] if stage.startswith("predict") else stage
            name = "data" if path.parent.name == "data" else name
            acc = total.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "count": 0})
            acc["wall_s"] += v["wall_s"]
            acc["cpu_s"] += v["cpu_s"]
            acc["count"] += 1
    return total


def column_names(labels: dict[str, str]) -> list[str]:
    names = []
    for col, key in COLUMNS.items():
        if key == "bertscore" and labels.get(key) == DEFAULT_BERTSCORE_LABEL:
            col = "BERTScore (MiniLM-L6)"
        if key == "green" and labels.get(key) == RULES_LABEL:
            col = "GREEN (offline rules judge)"
        names.append(col)
    return names


def _marks(row: str) -> list[str]:
    if row == DPO_ROW:
        return ["✓", "✓", "✓", "✓"]
    opts = PRESETS.get(row, {})
    if opts.get("kind") != "mu2":
        return ["-", "-", "-", ""]
    return [
        "✓" if opts["rpe"] == "relative_3d" else "",
        "✓" if opts["selection"] == "soft" else "",
        "✓" if opts["pooling"] == "dynamic" else "",
        "",
    ]


def _cell(cells: dict[str, Cell] | None, key: str) -> str:
    return cells[key].text() if cells and key in cells else "-"


def table2_markdown(t: Tables, dataset: str, split: str) -> str:
    header = ["Method", "RPE", "DTS", "DMTP", "DPO", *column_names(t.labels)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in t.rows:
        cells = t.cells.get((dataset, split, row))
        n = len(next(iter(cells.values())).values) if cells else 0
        name = f"{ROW_NAMES.get(row, row)} (n={n})"
        metric_cells = [_cell(cells, key) for key in COLUMNS.values()]
        lines.append("| " + " | ".join([name, *_marks(row), *metric_cells]) + " |")
    return "\n".join(lines)


def table1_markdown(t: Tables, split: str = "test") -> str:
    names = dict(zip(COLUMNS.values(), column_names(t.labels), strict=True))
    header = ["Method"] + [f"{d}: {names[m]}" for d in t.datasets for m in TABLE1_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in t.rows:
        cells = [_cell(t.cells.get((d, split, row)), m) for d in t.datasets for m in TABLE1_METRICS]
        lines.append("| " + " | ".join([ROW_NAMES.get(row, row), *cells]) + " |")
    return "\n".join(lines)


def kinds_markdown(t: Tables, dataset: str, split: str) -> str:
    kinds = sorted({k for (d, s, _), v in t.kinds.items() if (d, s) == (dataset, split) for k in v})
    if not kinds:
        return "(no finding kind with both positive and negative reports)"
    lines = ["| Method | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
    for row in t.rows:
        per = t.kinds.get((dataset, split, row), {})
        cells = [f"{per[k][0].mean:.2f} / {per[k][1].mean:.2f}" if k in per else "-" for k in kinds]
        lines.append(f"| {ROW_NAMES.get(row, row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claim_verdict(better: Cell, worse: Cell) -> tuple[float, str]:
    """(difference of means, verdict); 'within 1 sd' when the gap is below either sd."""
    diff = better.mean - worse.mean
    sds = [s for s in (better.sd, worse.sd) if s is not None]
    if not sds:
        return diff, ("holds" if diff > 0 else "does not hold") + " (1 seed, no sd)"
    if abs(diff) <= max(sds):
        return diff, ("holds" if diff > 0 else "does not hold") + ", within 1 sd"
    return diff, "holds" if diff > 0 else "reversed"


def claims_markdown(t: Tables, split: str = "test") -> str:
    lines = ["| claim (paper) | data set | metric | difference of means | verdict |",
             "|---|---|---|---|---|"]  # fmt: skip
    for better, worse in PAPER_CLAIMS:
        for d in t.datasets:
            a, b = t.cells.get((d, split, better)), t.cells.get((d, split, worse))
            for m in CLAIM_METRICS:
                if not a or not b or m not in a or m not in b:
                    continue
                diff, verdict = claim_verdict(a[m], b[m])
                lines.append(
                    f"| {ROW_NAMES.get(better, better)} > {ROW_NAMES.get(worse, worse)} | {d} "
                    f"| {m} | {diff:+.3f} | {verdict} |"
                )
    return "\n".join(lines)


def recipe_line(c: dict[str, Any], b: dict[str, Any], sft: dict[str, Any]) -> str:
    """The recipe in one sentence: LM stage, SFT losses, what trains (the SFT config a run
    trained with, else the budget's recipe before the runner's wiring)."""
    lm = "no LM stage" if not b.get("lm.enabled", True) else (
        f"LM stage context {b.get('lm.context')}"
        + (f", fill {b.get('lm.fill')}" if b.get("lm.context") == "findings" else "")
    )  # fmt: skip
    keys = ("code_weight", "code_init_rows", "ground_weight")
    ran = {k: sft.get(k, b.get(f"sft.{k}")) for k in keys}
    frozen = sft["model"]["freeze_llm"] if sft else b.get("sft.model.freeze_llm")
    return (
        f"{lm}; SFT code loss weight {ran['code_weight']} (code init "
        f"{ran['code_init_rows']} rows), grounding weight {ran['ground_weight']}, "
        f"LLM {'frozen' if frozen else 'trained'}; data overrides {c.get('synth') or 'none'}."
    )


def tables_markdown(t: Tables) -> str:
    c, b = t.config, t.budget
    parts = [
        "# mu2 bench ablation: Table 1 / Table 2 analogues on the embedded benchmark",
        "",
        f"Profile {c.get('profile', 'ablation')}: {recipe_line(c, b, t.sft_ran)} "
        f"Seeds {t.seeds}; mean ± sample sd over seeds (n = seeds with a metrics file). "
        f"Budget per preset: stage 0 {b.get('clip.max_steps')} steps (one tower per data set "
        f"and seed, frozen in SFT), SFT {b.get('sft.max_steps')} steps x batch "
        f"{b.get('sft.batch_size')}, lr {b.get('sft.optim.lr')}, on "
        f"{'+'.join(c.get('train_tasks') or ['all'])} rows; DPO row: {b.get('prefs.n')} samples "
        f"on {b.get('prefs.limit')} training reports, {b.get('dpo.max_steps')} DPO steps x "
        f"{b.get('dpo.batch_size')} pairs, beta {b.get('dpo.beta')}. "
        f"{c.get('cases')} synthetic cases per data set; scored rows: {c.get('tasks')}."
        + (" QUICK RUN: the numbers mean nothing." if c.get("quick") else ""),
    ]
    for d in t.datasets:
        for s in t.splits:
            parts += ["", f"## Table 2 layout: {d} anatomy, {SPLIT_TITLES[s]}", ""]
            parts.append(table2_markdown(t, d, s))
    if "test" in t.splits:
        parts += ["", "## Table 1 layout: methods x data sets (test split)", "",
                  table1_markdown(t, "test")]  # fmt: skip
        parts += ["", "## Does the paper's ordering hold here? (test split)", "",
                  claims_markdown(t, "test")]  # fmt: skip
        for d in t.datasets:
            parts += ["", f"## Per-finding sensitivity / specificity: {d} anatomy, test split",
                      "", kinds_markdown(t, d, "test")]  # fmt: skip
    parts += extra_sections(t, ROW_NAMES, SPLIT_TITLES)
    parts += ["", "Columns:"] + [
        f"- {col}: {t.labels[key]}" for col, key in COLUMNS.items() if key in t.labels
    ]
    if t.skipped:
        parts += ["", "Rows without numbers:"] + [f"- {k}: {v}" for k, v in t.skipped.items()]
    if t.missing:
        parts += ["", f"Missing metrics files ({len(t.missing)}):"] + [f"- {m}" for m in t.missing]
    if t.timing:
        parts += ["", "| stage | runs | wall s | CPU s (this process) |", "|---|---|---|---|"]
        parts += [
            f"| {k} | {v['count']} | {v['wall_s']:.0f} | {v['cpu_s']:.0f} |"
            for k, v in t.timing.items()
        ]
    return "\n".join(parts) + "\n"


def _records(t: Tables) -> list[dict[str, Any]]:
    out = []
    for (d, s, row), cells in t.cells.items():
        for metric, cell in cells.items():
            out.append({
                "dataset": d, "split": s, "row": row, "metric": metric, "mean": cell.mean,
                "sd": cell.sd, "n": len(cell.values), "values": cell.values,
                "sources": cell.sources,
            })  # fmt: skip
    return out


def write_tables(t: Tables, out: Path) -> dict[str, Path]:
    """table.md, table.csv (one line per cell), results.json (cells with their sources)."""
    files = {"table": out / "table.md", "csv": out / "table.csv", "json": out / "results.json"}
    files["table"].write_text(tables_markdown(t))
    records = _records(t)
    with files["csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "split", "row", "metric", "mean", "sd", "n", "values", "sources"])
        for r in records:
            w.writerow([r["dataset"], r["split"], r["row"], r["metric"], r["mean"], r["sd"],
                        r["n"], ";".join(map(str, r["values"])), ";".join(r["sources"])])  # fmt: skip
    doc = {
        "config": t.config, "budget": t.budget, "rows": t.rows, "datasets": t.datasets, "splits": t.splits,
        "seeds": t.seeds, "labels": t.labels, "cells": records, "skipped": t.skipped,
        "missing": t.missing, "timing": t.timing,
    }  # fmt: skip
    files["json"].write_text(json.dumps(doc, indent=1) + "\n")
    return files


def rows_present(t: Tables, dataset: str, split: str) -> Sequence[str]:
    return [r for r in t.rows if (dataset, split, r) in t.cells]
