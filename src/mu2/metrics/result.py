"""What ``mu2 eval`` produces, and how it is written: JSON, CSV, a Table-1 markdown, per case.

The markdown table has the columns of the paper's Table 1 (BLEU is BLEU-1 there; BLEU-4
is added) and names every substitute (BERTScore backbone, GREEN judge) in its header, so a
number from the offline judge can never pass as the GREEN model's.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu2.metrics.green.backends import RULES_LABEL
from mu2.metrics.green.score import GreenResult
from mu2.metrics.nlg import DEFAULT_BERTSCORE_LABEL
from mu2.metrics.perfinding import PerFindingResult
from mu2.metrics.vqa import VqaResult

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
TABLE_MD = "table.md"
PER_CASE_JSONL = "per_case.jsonl"
VQA_PER_CASE_JSONL = "vqa_per_case.jsonl"

# Paper Table 1 columns (plus BLEU-4) -> our metric keys.
TABLE_COLUMNS: dict[str, str] = {
    "BLEU-1": "bleu1",
    "BLEU-4": "bleu4",
    "ROUGE-1": "rouge1",
    "ROUGE-L": "rougeL_coco",
    "METEOR": "meteor",
    "BERTScore": "bertscore",
    "GREEN": "green",
}


@dataclass
class EvalResult:
    """Scores of one prediction set: overall, per group, per case, with bootstrap CIs."""

    name: str
    n: int
    labels: dict[str, str]  # metric key -> what exactly was computed
    overall: dict[str, float]
    ci: dict[str, tuple[float, float]]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    group_ci: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    group_sizes: dict[str, int] = field(default_factory=dict)
    per_case: list[dict[str, Any]] = field(default_factory=list)
    green: GreenResult | None = None
    group_green: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_finding: PerFindingResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    provenance: dict[str, Any] = field(default_factory=dict)  # mu2.metrics.provenance
    vqa: VqaResult | None = None  # the task=="vqa" rows (the rest are the n report rows)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "n": self.n,
            "labels": self.labels,
            "overall": self.overall,
            "ci": {k: list(v) for k, v in self.ci.items()},
            "settings": self.settings,
            "timings_s": self.timings_s,
            "provenance": self.provenance,
        }
        if self.groups:
            out["groups"] = {
                g: {
                    "n": self.group_sizes[g],
                    "scores": s,
                    "ci": {k: list(v) for k, v in self.group_ci.get(g, {}).items()},
                    **({"green": self.group_green[g]} if g in self.group_green else {}),
                }
                for g, s in self.groups.items()
            }
        if self.green is not None:
            out["green"] = self.green.summary()
        if self.per_finding is not None:
            out["per_finding"] = self.per_finding.to_dict()
        if self.vqa is not None:
            out["vqa"] = self.vqa.to_dict()
        return out

    # --- markdown ---------------------------------------------------------------------
    def _header(self) -> list[str]:
        names = []
        for col, key in TABLE_COLUMNS.items():
            if key == "bertscore" and self.labels.get(key) == DEFAULT_BERTSCORE_LABEL:
                col = "BERTScore (MiniLM-L6)"
            if key == "green" and self.labels.get(key) == RULES_LABEL:
                col = "GREEN (offline rules judge)"
            names.append(col)
        return names

    def _row(self, label: str, scores: dict[str, float]) -> str:
        cells = [f"{scores[k]:.3f}" if k in scores else "-" for k in TABLE_COLUMNS.values()]
        return f"| {label} | " + " | ".join(cells) + " |"

    def table_markdown(self) -> str:
        """Table 1 layout, then 95% CIs, labels, (when present) per-finding and VQA accuracy."""
        if self.n == 0 and self.vqa is not None:  # VQA rows only
            return self._vqa_markdown().lstrip("\n") + "\n"
        header = ["Method", *self._header()]
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            self._row(f"{self.name} (n={self.n})", self.overall),
        ]
        for g, scores in self.groups.items():
            lines.append(self._row(f"{self.name}, {g} (n={self.group_sizes[g]})", scores))
        lines += [
            "",
            f"95% bootstrap intervals ({self.settings.get('bootstrap', 0)} resamples):",
            "",
        ]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        ci_cells = [
            f"{self.ci[k][0]:.3f}-{self.ci[k][1]:.3f}" if k in self.ci else "-"
            for k in TABLE_COLUMNS.values()
        ]
        lines.append(f"| {self.name} | " + " | ".join(ci_cells) + " |")
        if self.provenance.get("preset"):
            lines += ["", f"Metric preset: {self.provenance['preset']}"]
        lines += ["", "Columns:"]
        for col, key in TABLE_COLUMNS.items():
            if key in self.labels:
                lines.append(f"- {col}: {self.labels[key]}")
        if self.per_finding is not None:
            lines += ["", _per_finding_markdown(self.per_finding)]
        return "\n".join(lines) + self._vqa_markdown() + "\n"

    def _vqa_markdown(self) -> str:
        if self.vqa is None:
            return ""
        level = float(self.settings.get("ci_level", 0.95))
        return f"\n\n{self.name}, " + self.vqa.table_markdown(level)

    # --- files ------------------------------------------------------------------------
    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write metrics.json, metrics.csv, table.md, per_case.jsonl (+ GREEN answers)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / METRICS_JSON,
            "csv": out / METRICS_CSV,
            "table": out / TABLE_MD,
            "per_case": out / PER_CASE_JSONL,
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        with paths["csv"].open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["group", "n", "metric", "value", "ci_low", "ci_high", "label"])
            blocks = [("all", self.n, self.overall, self.ci)]
            blocks += [
                (g, self.group_sizes[g], s, self.group_ci.get(g, {}))
                for g, s in self.groups.items()
            ]
            for group, n, scores, ci in blocks:
                for key, value in scores.items():
                    lo, hi = ci.get(key, (None, None))
                    writer.writerow([group, n, key, value, lo, hi, self.labels.get(key, "")])
            if self.vqa is not None:
                vqa_blocks = [*self.vqa.types.items(), ("all", self.vqa.overall)]
                for qtype, s in vqa_blocks:
                    lo, hi = s.ci or (None, None)
                    row = [f"vqa:{qtype}", s.n, "vqa_accuracy", s.accuracy, lo, hi, self.vqa.label]
                    writer.writerow(row)
        paths["table"].write_text(self.table_markdown())
        with paths["per_case"].open("w") as f:
            for row in self.per_case:
                f.write(json.dumps(row) + "\n")
        if self.green is not None:
            paths["green_answers"] = self.green.save_answers(out)
        if self.vqa is not None:
            paths["vqa_per_case"] = out / VQA_PER_CASE_JSONL
            paths["vqa_per_case"].write_text(
                "".join(json.dumps(r) + "\n" for r in self.vqa.per_case)
            )
        return paths


def settings_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _per_finding_markdown(pf: PerFindingResult) -> str:
    lines = [
        f"Per-finding accuracy of the generated reports (findings read back with the "
        f"rule-based extractor): finding-level micro F1 {pf.f1:.3f} "
        f"(precision {pf.precision:.3f}, recall {pf.recall:.3f}); distinct reports "
        f"{pf.distinct_share:.3f} of {pf.n_reports}, differing from the most common "
        f"report {pf.differs_from_mode_share:.3f}.",
        "",
        "| finding | positives | accuracy | sensitivity | specificity |",
        "|---|---|---|---|---|",
    ]
    for k, s in pf.kinds.items():
        lines.append(
            f"| {k} | {s.tp + s.fn}/{s.n} | {_fmt(s.accuracy)} | {_fmt(s.sensitivity)} "
            f"| {_fmt(s.specificity)} |"
        )
    return "\n".join(lines)
