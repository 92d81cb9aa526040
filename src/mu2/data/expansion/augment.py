"""Data set expansion: report rewrites and question-answer pairs, behind guard rails.

The paper enlarges its training set by having an LLM rewrite every expert report several
times (reference code: 4 per AMOS-MM region, 8 per AbdomenAtlas report) and by asking
it for clinically relevant question-answer pairs. A rewrite that adds, loses or moves a
finding would teach the model to hallucinate, so every rewrite is read back with the
finding extractor and kept only if its structured findings equal the source's; rewrites
in another script (the reference code met Chinese output) or too short are dropped too.
Every drop is counted by reason. Augmented rows keep the source's case and image and
name their source, so the split checker can keep them in the source's split.

Backends (``rewrite_rules.RulesBackend`` offline, ``rewrite_llm.LLMBackend`` for any
OpenAI-compatible endpoint) share the small interface below: jobs in, texts out.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from mu2.data.expansion.augment_guard import (
    findings_change,
    normal_form,
    qa_drop_reason,
    rewrite_drop_reason,
)
from mu2.data.schema import read_jsonl, relative_image, resolve_image, write_jsonl
from mu2.errors import Mu2Error
from mu2.findings.catalogue import REGIONS, Finding
from mu2.findings.extract import Extraction, extract_report

log = logging.getLogger(__name__)

# Reference code: 4 paraphrases per AMOS-MM region (8 per AbdomenAtlas report).
PAPER_REWRITES_PER_REPORT = 4
AUGMENTED_KINDS = ("rewrite", "qa")
# Rows with these tasks carry a report in "answer" and are the ones worth rewriting.
REPORT_TASKS = ("report",)
QA_TASK = "vqa"
# Distinct texts whose extraction a run remembers (a few MB at most).
EXTRACTION_MEMO_SIZE = 1 << 15


@dataclass
class TextAugmentConfig:
    """What to generate per source row and how strict the guard rails are."""

    rewrites: int = PAPER_REWRITES_PER_REPORT
    """Paraphrases requested per report (reference code: 4 per AMOS-MM region)."""
    qa: int = 3
    """Question-answer pairs requested per report (at most)."""
    seed: int = 0
    """Seed of every random draw; each row draws from its own generator (order-free)."""
    min_length: int = 20
    """Rewrites shorter than this many characters are dropped."""
    size_tolerance_mm: float = 1.0
    """Largest size difference that still counts as the same size (cm rounding: 0.5 mm)."""

    def __post_init__(self) -> None:
        for name in ("rewrites", "qa", "min_length"):
            if getattr(self, name) < 0:
                raise Mu2Error(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        if self.size_tolerance_mm < 0:
            raise Mu2Error(f"size_tolerance_mm must be >= 0, got {self.size_tolerance_mm}")


@dataclass
class AugmentJob:
    """One source report to expand."""

    source_id: str
    text: str
    region: str | None
    extraction: Extraction  # what the finding extractor reads in ``text``
    rewrites: int
    qa: int
    seed: str  # per-row seed string, so each row's draws do not depend on row order

    @property
    def findings(self) -> list[Finding]:
        return self.extraction.findings


@dataclass
class JobOutput:
    """What a backend made of one job (before the guard rails). Candidates beyond the
    number asked for are spares: the first ones to pass the guard rails are kept."""

    rewrites: list[str] = field(default_factory=list)
    qa: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # requests that failed for good


class AugmentBackend(Protocol):
    """Turns jobs into candidate rewrites and QA pairs; the guard rails run afterwards."""

    name: str

    def run(self, jobs: list[AugmentJob], progress: bool = False) -> list[JobOutput]: ...


@dataclass
class AugmentSummary:
    """Counts for the end-of-run report; ``dropped`` is keyed by reason."""

    rows_in: int = 0
    sources: int = 0
    sources_skipped: Counter = field(default_factory=Counter)
    rewrites_requested: int = 0
    rewrites_kept: int = 0
    rewrites_dropped: Counter = field(default_factory=Counter)
    qa_requested: int = 0
    qa_kept: int = 0
    qa_dropped: Counter = field(default_factory=Counter)
    requests_failed: int = 0
    rows_out: int = 0

    def lines(self) -> list[str]:
        def reasons(c: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"

        rw_checked = self.rewrites_kept + sum(self.rewrites_dropped.values())
        qa_checked = self.qa_kept + sum(self.qa_dropped.values())
        return [
            f"rows in: {self.rows_in} ({self.sources} reports expanded; skipped:"
            f" {reasons(self.sources_skipped)})",
            f"rewrites: kept {self.rewrites_kept} of {rw_checked} checked ({self.rewrites_requested}"
            f" requested); dropped: {reasons(self.rewrites_dropped)}",
            f"qa pairs: kept {self.qa_kept} of {qa_checked} checked ({self.qa_requested} requested);"
            f" dropped: {reasons(self.qa_dropped)}",
            f"failed requests: {self.requests_failed}",
            f"rows out: {self.rows_out}",
        ]


# --- orchestration ---------------------------------------------------------------------


def _source_rows(rows: list[dict]) -> list[int]:
    return [
        i
        for i, r in enumerate(rows)
        if not r.get("augmented")
        and r.get("task", REPORT_TASKS[0]) in REPORT_TASKS
        and isinstance(r.get("answer"), str)
        and r["answer"].strip()
    ]


def _region(row: dict) -> str | None:
    region = row.get("region")
    return region if region in REGIONS else None


def _unique_id(base: str, taken: set[str]) -> str:
    new, k = base, 1
    while new in taken:
        k += 1
        new = f"{base}.{k}"
    taken.add(new)
    return new


def augment_rows(
    rows: list[dict], backend: AugmentBackend, cfg: TextAugmentConfig, progress: bool = False
) -> tuple[list[dict], AugmentSummary]:
    """Original rows followed by the kept augmented rows, and the counts.

    Rows already marked ``augmented`` are passed through and never expanded again, and
    neither is a row that already has augmented rows (so a rerun in place is harmless).
    """
    summary = AugmentSummary(rows_in=len(rows))
    # QA questions and answers repeat across reports: read each distinct one once.
    read = functools.lru_cache(maxsize=EXTRACTION_MEMO_SIZE)(extract_report)
    sources, jobs = [], []
    done = {str(r.get("source_id")) for r in rows if r.get("augmented")}
    for i in _source_rows(rows):
        row = rows[i]
        if str(row.get("id", i)) in done:  # a rerun on its own output adds nothing twice
            summary.sources_skipped["already_augmented"] += 1
            continue
        region = _region(row)
        found = extract_report(row["answer"], region)
        truth = [Finding.from_dict(d) for d in row.get("findings") or []]
        if truth and findings_change(truth, found.findings, cfg.size_tolerance_mm, True):
            # The extractor misreads this report, so it cannot vouch for a rewrite of it.
            summary.sources_skipped["extractor_disagrees_with_findings"] += 1
            log.debug("row %s: extracted findings differ from its findings field", row.get("id"))
            continue
        sources.append(i)
        jobs.append(
            AugmentJob(
                source_id=str(row.get("id", i)),
                text=row["answer"],
                region=region,
                extraction=found,
                rewrites=cfg.rewrites,
                qa=cfg.qa,
                seed=f"{cfg.seed}:{row.get('id', i)}",
            )
        )
    summary.sources = len(jobs)
    summary.rewrites_requested = cfg.rewrites * len(jobs)
    summary.qa_requested = cfg.qa * len(jobs)
    outputs = backend.run(jobs, progress=progress) if jobs else []
    taken = {str(r.get("id")) for r in rows}
    # Questions the data set already asks about each case and region (e.g. its VQA rows).
    asked: dict[tuple, set[str]] = {}
    for r in rows:
        key = (r.get("case_id"), r.get("region"))
        asked.setdefault(key, set()).add(normal_form(str(r.get("question", ""))))
    out = list(rows)
    checks = tqdm(
        zip(sources, jobs, outputs, strict=True),
        total=len(jobs),
        desc="guard rails",
        unit="report",
        disable=not progress,
    )
    for i, job, result in checks:
        source = rows[i]
        summary.requests_failed += len(result.failures)
        for failure in result.failures:
            log.warning("row %s: %s", job.source_id, failure)
        seen = {normal_form(job.text)}
        kept = 0
        for text in result.rewrites:  # extra candidates are spares for dropped ones
            if kept == cfg.rewrites:
                break
            reason = rewrite_drop_reason(
                text,
                job.text,
                job.extraction,
                job.region,
                seen=seen,
                min_length=cfg.min_length,
                size_tolerance_mm=cfg.size_tolerance_mm,
                read=read,
            )
            if reason:
                summary.rewrites_dropped[reason] += 1
                log.debug("row %s: rewrite dropped (%s): %r", job.source_id, reason, text)
                continue
            seen.add(normal_form(text))
            summary.rewrites_kept += 1
            kept += 1
            out.append(
                {
                    **source,
                    "id": _unique_id(f"{job.source_id}-rw{kept}", taken),
                    "answer": text.strip(),
                    "augmented": "rewrite",
                    "source_id": job.source_id,
                }
            )
        seen_q = asked[(source.get("case_id"), source.get("region"))]
        kept = 0
        for question, answer in result.qa:
            if kept == cfg.qa:
                break
            reason = qa_drop_reason(
                question,
                answer,
                job.extraction,
                job.region,
                seen=seen_q,
                size_tolerance_mm=cfg.size_tolerance_mm,
                read=read,
            )
            if reason:
                summary.qa_dropped[reason] += 1
                log.debug("row %s: qa dropped (%s): %r", job.source_id, reason, question)
                continue
            seen_q.add(normal_form(question))
            summary.qa_kept += 1
            kept += 1
            out.append(
                {
                    **source,
                    "id": _unique_id(f"{job.source_id}-qa{kept}", taken),
                    "question": question.strip(),
                    "answer": answer.strip(),
                    "task": QA_TASK,
                    "augmented": "qa",
                    "source_id": job.source_id,
                }
            )
    summary.rows_out = len(out)
    for line in summary.lines():
        log.info("augment: %s", line)
    return out, summary


def check_augmented_leakage(split_rows: dict[str, list[dict]]) -> list[str]:
    """Problems where an augmented row sits in another split than its source row.

    A paraphrase of a test report in the training split leaks the test answer, so every
    row with ``augmented`` must share its split with the row named by ``source_id``.
    """
    where: dict[str, str] = {}
    for split, rows in split_rows.items():
        for row in rows:
            if not row.get("augmented"):
                where.setdefault(str(row.get("id")), split)
    problems: list[str] = []
    for split, rows in split_rows.items():
        for row in rows:
            kind = row.get("augmented")
            if not kind:
                continue
            rid, src = row.get("id"), row.get("source_id")
            if kind not in AUGMENTED_KINDS:
                problems.append(
                    f"row {rid} in '{split}': augmented is {kind!r}, expected one of "
                    f"{list(AUGMENTED_KINDS)}"
                )
            if src is None:
                problems.append(f"row {rid} in '{split}' is augmented but has no source_id")
            elif str(src) not in where:
                problems.append(
                    f"row {rid} in '{split}' is a {kind} of row {src}, which is in no split"
                )
            elif where[str(src)] != split:
                problems.append(
                    f"row {rid} in '{split}' is a {kind} of row {src}, which is in "
                    f"'{where[str(src)]}': move it to '{where[str(src)]}' (leakage)"
                )
    return problems


def _portable_image(row: dict, in_path: Path, out_path: Path) -> dict:
    """The row with a relative image path re-based from ``in_path``'s folder to ``out_path``'s."""
    image = row.get("image")
    if not isinstance(image, str) or Path(image).is_absolute():
        return row
    return {**row, "image": relative_image(resolve_image(row, in_path), out_path)}


def augment_file(
    in_path: str | Path,
    out_path: str | Path,
    backend: AugmentBackend,
    cfg: TextAugmentConfig,
    progress: bool = False,
) -> AugmentSummary:
    """Read a unified JSONL, expand it, write originals + augmented rows to ``out_path``."""
    in_path, out_path = Path(in_path), Path(out_path)
    rows = [r.to_dict() for r in read_jsonl(in_path)]
    if in_path.resolve().parent != out_path.resolve().parent:
        rows = [_portable_image(r, in_path, out_path) for r in rows]
    out, summary = augment_rows(rows, backend, cfg, progress=progress)
    write_jsonl(out, out_path)
    return summary
