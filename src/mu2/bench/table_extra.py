"""The ablation's VQA-accuracy and question-dependence tables (beside :mod:`mu2.bench.table`).

* **VQA accuracy** per row, overall and per question type: the ``vqa_accuracy`` scores of
  each run's metrics file (:mod:`mu2.bench.score`), mean ± sd over seeds like every cell.
* **Question dependence** per row on the test split: the Pearson r of the chest and
  abdomen questions' heat maps, the visual-token cosine across them, and each region
  question's share of heat in its region next to the region's share of the body (chance),
  from each run's ``question_dependence.json`` (:mod:`mu2.bench.qdep`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from mu2.bench.qdep import QDEP, QDEP_FILE, QDEP_SPLIT
from mu2.bench.score import VQA_ACCURACY, VQA_MAJORITY
from mu2.findings.questions import QTYPES

if TYPE_CHECKING:
    from mu2.bench.config import AblationConfig
    from mu2.bench.table import Cell, Tables  # (table imports this module: types only)


Values = dict[str, tuple[list[float], list[str]]]
"""Cell key -> (values over seeds, the files they came from)."""


def question_dependence_values(
    out: Path, cfg: AblationConfig
) -> tuple[dict[tuple[str, str], Values], dict[str, str]]:
    """Per (data set, row): the scores of every seed's question_dependence.json (NaN
    values, e.g. a scan without a lung base for the bands, are left out); and the runs
    measured with a note instead of numbers."""
    found: dict[tuple[str, str], Values] = {}
    notes: dict[str, str] = {}
    for dataset in cfg.datasets:
        for row in cfg.rows:
            values: Values = {}
            for seed in cfg.seed_list:
                path = out / "runs" / dataset / f"seed{seed}" / row / QDEP_FILE
                if not path.is_file():
                    continue
                doc = json.loads(path.read_text())
                if "scores" not in doc:
                    notes[f"{dataset}/seed{seed}/{row} question dependence"] = doc["note"]
                    continue
                for key, v in doc["scores"].items():
                    if not math.isnan(v):
                        vals, srcs = values.setdefault(key, ([], []))
                        vals.append(float(v))
                        srcs.append(str(path.relative_to(out)))
            if values:
                found[(dataset, row)] = values
    return found, notes


def _text(cells: dict[str, Cell] | None, key: str) -> str:
    return cells[key].text() if cells and key in cells else "-"


def vqa_markdown(t: Tables, dataset: str, split: str, row_names: dict[str, str]) -> str | None:
    """Rows x (all, each question type present); None when no run has VQA scores."""
    here = [t.cells.get((dataset, split, r)) or {} for r in t.rows]
    if not any(VQA_ACCURACY in c for c in here):
        return None
    types = [q for q in QTYPES if any(f"{VQA_ACCURACY}.{q}" in c for c in here)]
    lines = ["| Method | all | " + " | ".join(types) + " |", "|" + "---|" * (len(types) + 2)]
    for row, cells in zip(t.rows, here, strict=True):
        vals = [_text(cells, VQA_ACCURACY)] + [_text(cells, f"{VQA_ACCURACY}.{q}") for q in types]
        lines.append(f"| {row_names.get(row, row)} | " + " | ".join(vals) + " |")
    # The same test rows for every run: the floor of a model that ignores the question.
    floor = next((c for c in here if VQA_MAJORITY in c), None)
    if floor is not None:
        vals = [_text(floor, VQA_MAJORITY)] + [_text(floor, f"{VQA_MAJORITY}.{q}") for q in types]
        lines.append("| always the most common answer | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def qdep_markdown(t: Tables, dataset: str, row_names: dict[str, str]) -> str | None:
    """Rows x (heat-map r and token cosine per region pair; per region, the heat share
    there of its own question and of the others, and chance); None when nothing was
    measured."""
    here = [t.cells.get((dataset, QDEP_SPLIT, r)) or {} for r in t.rows]
    keys = sorted({k for c in here for k in c if k.startswith(f"{QDEP}.")})
    if not keys:
        return None
    pairs = sorted({k.split(".", 2)[2] for k in keys if k.startswith(f"{QDEP}.heat_r.")})
    regions = sorted({k.split(".", 2)[2] for k in keys if k.startswith(f"{QDEP}.share_own.")})
    header = [f"heat-map r {p.replace('|', ' vs ')}" for p in pairs]
    header += [f"token cosine {p.replace('|', ' vs ')}" for p in pairs]
    header += [f"heat in {r}: {r} question / other questions (chance)" for r in regions]
    lines = ["| Method | " + " | ".join(header) + " |", "|" + "---|" * (len(header) + 1)]
    for row, cells in zip(t.rows, here, strict=True):
        vals = [_text(cells, f"{QDEP}.heat_r.{p}") for p in pairs]
        vals += [_text(cells, f"{QDEP}.token_cos.{p}") for p in pairs]
        for r in regions:
            chance = cells.get(f"{QDEP}.band_share.{r}")
            share = _text(cells, f"{QDEP}.share_own.{r}") + " / "
            share += _text(cells, f"{QDEP}.share_others.{r}")
            vals.append(share + (f" ({chance.mean:.2f})" if chance else ""))
        lines.append(f"| {row_names.get(row, row)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def extra_sections(t: Tables, row_names: dict[str, str], split_titles: dict[str, str]) -> list[str]:
    """Markdown lines of the VQA and question-dependence sections (none when empty)."""
    parts: list[str] = []
    for d in t.datasets:
        for s in t.splits:
            table = vqa_markdown(t, d, s, row_names)
            if table:
                parts += ["", f"## VQA accuracy (exact match of the closed answer): {d} "
                          f"anatomy, {split_titles[s]}", "", table]  # fmt: skip
    for d in t.datasets:
        table = qdep_markdown(t, d, row_names)
        if table:
            parts += ["", f"## Question dependence: {d} anatomy, {split_titles[QDEP_SPLIT]}", "",
                      "Same scan, chest and abdomen question: heat-map r near 1 and token "
                      "cosine near 1 mean the tokenizer ignores the question; a region "
                      "question's heat in its own region above chance means it looks there.",
                      "", table]  # fmt: skip
    return parts
