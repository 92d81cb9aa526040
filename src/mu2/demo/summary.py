"""The demo's final printout: where everything is, the metric table, the per-finding table.

Every number is read back from the ``metrics.json`` files the evaluation wrote, so what is
printed is what is on disk. Substitutes are named in the column headers (the offline rules
judge for GREEN, the MiniLM backbone for BERTScore), never passed off as the originals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mu2.metrics.green.backends import RULES_LABEL
from mu2.metrics.nlg import DEFAULT_BERTSCORE_LABEL
from mu2.metrics.result import TABLE_COLUMNS
from mu2.metrics.vqa import VqaScore

# The per-finding target of the embedded default: every finding kind of the tiny preset
# reported with accuracy >= 0.9 on the test split, and >= 80% of test reports differing
# from the most common report (a prior-only model writes one report for every scan).
TARGET_ACCURACY = 0.9
TARGET_DIFFERS_SHARE = 0.8


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def column_names(labels: dict[str, str]) -> list[str]:
    """Table 1 column names; substitutes named in the header."""
    names = []
    for col, key in TABLE_COLUMNS.items():
        if key == "bertscore" and labels.get(key) == DEFAULT_BERTSCORE_LABEL:
            col = "BERTScore (MiniLM-L6 backbone)"
        elif key == "bertscore" and key in labels:
            col = f"BERTScore ({labels[key]})"
        if key == "green" and labels.get(key) == RULES_LABEL:
            col = "GREEN (offline rules judge)"
        elif key == "green" and key in labels:
            col = f"GREEN ({labels[key]})"
        names.append(col)
    return names


def metrics_table(results: dict[str, dict[str, Any]]) -> str:
    """Table-1-style markdown: one row per model, columns BLEU-1 ... GREEN, then labels."""
    labels: dict[str, str] = {}
    for m in results.values():
        labels.update(m.get("labels", {}))
    header = ["Method", *column_names(labels)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in results.items():
        overall = m.get("overall", {})
        cells = [_fmt(overall.get(k)) for k in TABLE_COLUMNS.values()]
        lines.append(f"| {name} (n={m.get('n')}) | " + " | ".join(cells) + " |")
    lines += ["", "Columns:"]
    for col, key in TABLE_COLUMNS.items():
        lines.append(f"- {col}: {labels.get(key, 'not computed')}")
    return "\n".join(lines)


# Question-guided tokenization: the heat maps of two region questions on one scan must differ,
# and each region question must look mostly inside its region.
TARGET_HEAT_CORR = 0.5
TARGET_OWN_SHARE = 0.6


def per_finding_table(results: dict[str, dict[str, Any]], kinds: Sequence[str]) -> str:
    """Accuracy / sensitivity / specificity per finding kind and model, from metrics.json."""
    names = [n for n, m in results.items() if m.get("per_finding")]
    if not names:
        return "(no per-finding results: the test rows carry no structured findings)"
    header = ["finding", "positives"]
    for n in names:
        header += [f"{n} acc", f"{n} sens", f"{n} spec"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    first = results[names[0]]["per_finding"]["kinds"]
    for kind in kinds:
        base = first.get(kind)
        cells = [kind, f"{base['positives']}/{base['n']}" if base else "-"]
        for n in names:
            score = results[n]["per_finding"]["kinds"].get(kind) or {}
            cells += [_fmt(score.get(k)) for k in ("accuracy", "sensitivity", "specificity")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| model | finding F1 (micro) | distinct reports | reports differing from the most "
        "common | scans differing from the most common | target |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        pf = results[n]["per_finding"]
        check = target_check(results[n], kinds)
        lines.append(
            f"| {n} | {_fmt(pf['finding_f1_micro'])} | {_fmt(pf['distinct_report_share'])} "
            f"| {_fmt(pf['differs_from_most_common_share'])} "
            f"| {_fmt(pf.get('scan_differs_from_most_common_share'))} "
            f"| {'met' if check.met else 'not met'} |"
        )
    return "\n".join(lines)


@dataclass
class TargetCheck:
    """Whether one model meets the per-finding target, and what falls short."""

    met: bool
    shortfalls: list[str]


def target_check(metrics: dict[str, Any], kinds: Sequence[str]) -> TargetCheck:
    """Every kind's accuracy >= TARGET_ACCURACY and the differing share >= TARGET_DIFFERS_SHARE:
    over scans (each scan's region reports joined, ``mu2.metrics.perfinding.scan_reports``)
    where the test split asks each scan several regions, else over reports. Why scans: a
    prior-only model writes one text per region whatever the scan, so it differs on no scan;
    a model that reads the image writes the same right text for every normal chest when
    the chest has one finding kind, which caps the per-report share near 1 - (normal
    chests) / (reports) however well it reads."""
    pf = metrics.get("per_finding")
    if not pf:
        return TargetCheck(False, ["no per-finding results"])
    short = []
    for kind in kinds:
        acc = (pf["kinds"].get(kind) or {}).get("accuracy")
        if acc is None:
            short.append(f"{kind}: not in the test split")
        elif acc < TARGET_ACCURACY:
            short.append(f"{kind} accuracy {acc:.3f} < {TARGET_ACCURACY}")
    scan = pf.get("scan_differs_from_most_common_share")
    differs, unit = (scan, "scans") if scan is not None else (
        pf["differs_from_most_common_share"], "reports")  # fmt: skip
    if differs < TARGET_DIFFERS_SHARE:
        short.append(f"{unit} differing from the most common {differs:.3f} < {TARGET_DIFFERS_SHARE}")
    return TargetCheck(not short, short)


TARGET_VQA = 0.9  # accuracy over the test split's VQA rows, all question types together


def vqa_table(results: dict[str, dict[str, Any]]) -> str:
    """VQA accuracy per question type and model (rows of ``metrics.json``'s ``vqa``), with
    the majority-answer share (what one fixed answer per type scores); "" without VQA."""
    scored = {name: m["vqa"] for name, m in results.items() if m.get("vqa")}
    if not scored:
        return ""
    lines = ["| model | question type | n | accuracy | 95% CI | majority-answer share |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, v in scored.items():
        for qtype, sc in [*v["types"].items(), ("all", v["overall"])]:
            lines.append(f"| {name} | {qtype} | {VqaScore.from_dict(sc).cells()} |")
    for name, v in scored.items():
        acc = v["overall"]["accuracy"]
        verdict = "target met" if acc >= TARGET_VQA else "below target"
        lines.append(f"\n{name}: {verdict} (all question types {acc:.3f})")
    return "\n".join(lines)


def stage_table(records: Sequence[Any]) -> str:
    """Per-stage status and times (wall and CPU seconds)."""
    lines = ["| stage | status | wall s | CPU s | note |", "|---|---|---|---|---|"]
    for r in records:
        wall, cpu = (r.first_wall_s, r.first_cpu_s) if r.status == "reused" else (r.wall_s, r.cpu_s)
        status = f"{r.status} (first run's times)" if r.status == "reused" else r.status
        lines.append(f"| {r.title} | {status} | {wall:.1f} | {cpu:.1f} | {r.note} |")
    return "\n".join(lines)


def locations_text(places: dict[str, str]) -> str:
    width = max((len(k) for k in places), default=0)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in places.items())


def summary_markdown(
    *,
    profile: str,
    places: dict[str, str],
    results: dict[str, dict[str, Any]],
    kinds: Sequence[str],
    records: Sequence[Any],
    total_wall_s: float,
    total_cpu_s: float,
    notes: Sequence[str] = (),
    comparison: str | None = None,
    question_dependence: str = "",
) -> str:
    """Everything the demo prints at the end (also written to ``summary.md``)."""
    parts = [
        f"# mu2 demo ({profile} profile)",
        "",
        "## Where everything is",
        "",
        locations_text(places),
        "",
        f"## Stages (total {total_wall_s:.1f} s wall, {total_cpu_s:.1f} s CPU)",
        "",
        stage_table(records),
    ]
    if results:
        parts += [
            "",
            "## Report generation on the test split (Table 1 layout)",
            "",
            metrics_table(results),
        ]
        if comparison:
            parts += ["", "## SFT vs SFT+DPO on the same reports (paired bootstrap)", "", comparison]
        parts += [
            "",
            "## Per-finding accuracy (findings read back from each generated report)",
            "",
            f"Target: every kind of the preset ({', '.join(kinds)}) with accuracy >= "
            f"{TARGET_ACCURACY}, and >= {TARGET_DIFFERS_SHARE:.0%} of scans differing from the "
            "most common scan report (a scan's region reports joined; a prior-only model writes "
            "the same for every scan).",
            "",
            per_finding_table(results, kinds),
        ]
        for name, m in results.items():
            check = target_check(m, kinds)
            if not check.met:
                parts.append(f"\n{name}: target not met: " + "; ".join(check.shortfalls))
    if vqa := vqa_table(results):
        parts += [
            "",
            "## Question-specific VQA (closed answers read from each generated answer)",
            "",
            f"Target: accuracy >= {TARGET_VQA} over all question types (each type is "
            "shown with its interval and the share one fixed answer would score).",
            "",
            vqa,
        ]
    if question_dependence:
        parts += [
            "",
            "## Question dependence of the saved model (same test scan, different region question)",
            "",
            f"Targets: heat-map correlation below {TARGET_HEAT_CORR}; each region question puts at "
            f"least {TARGET_OWN_SHARE:.0%} of its heat inside its region.",
            "",
            question_dependence.rstrip("\n"),
        ]
    if notes:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"
