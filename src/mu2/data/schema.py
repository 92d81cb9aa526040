"""The unified JSONL row every mu2 data source is converted to.

One JSON object per line::

    {"id": "s0-000012-abdomen",          unique row id
     "case_id": "s0-000012",             the scan; splits are disjoint by case
     "image": "images/s0-000012.nii.gz", RELATIVE to the JSONL's folder (or absolute)
     "question": "Describe the findings of the abdomen in this CT.",
     "answer": "The liver is ...",       the target text
     "findings": [{...Finding...}],      structured ground truth of this row's region
                                         (empty when unknown, e.g. real reports)
     "region": "abdomen",                chest / abdomen / pelvis, or null (whole report)
     "task": "report",                   "report" (findings prose) or "vqa" (short answer)
     "qtype": "side",                    optional, vqa rows: the question type, one of
                                         mu2.findings.questions.QTYPES (absent: not typed)
     "dataset": "synth",                 where the row came from
     "meta": {...}}                      optional: spacing, rescale slope / intercept,
                                         ``hu_already``, ``intensity`` ("hu" or "unit"), ...

The reference code's rows (``{"image", "question", "answer"}``, plus ``"chosen"`` /
``"rejected"`` for DPO) are a subset: missing fields get defaults, and keys this module
does not know (``chosen``, ``rejected``, ``augmented``, ``source_id``) are kept verbatim.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error
from mu2.findings.catalogue import REGIONS, Finding
from mu2.findings.questions import QTYPES

TASKS: tuple[str, ...] = ("report", "vqa")
REQUIRED_KEYS: tuple[str, ...] = ("id", "image", "question")
# Rows of preference data carry these instead of (or besides) "answer".
PREFERENCE_KEYS: tuple[str, ...] = ("chosen", "rejected")
_KNOWN = (
    "id",
    "case_id",
    "image",
    "question",
    "answer",
    "findings",
    "region",
    "task",
    "qtype",
    "dataset",
    "meta",
)


@dataclass
class Record:
    """One unified row. ``extra`` holds keys this schema does not define, unchanged."""

    id: str
    image: str
    question: str
    answer: str = ""
    case_id: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    region: str | None = None
    task: str = "report"
    dataset: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    qtype: str | None = None
    """VQA question type (``side``, ``severity``, ...); written only when set, so rows
    without one keep the bytes they always had."""

    def __post_init__(self) -> None:
        if not self.case_id:
            self.case_id = self.id

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping in a fixed key order (so equal records give equal bytes)."""
        d: dict[str, Any] = {
            "id": self.id,
            "case_id": self.case_id,
            "image": self.image,
            "question": self.question,
            "answer": self.answer,
            "findings": self.findings,
            "region": self.region,
            "task": self.task,
            "dataset": self.dataset,
        }
        if self.qtype is not None:
            d["qtype"] = self.qtype
        if self.meta:
            d["meta"] = self.meta
        d.update(self.extra)
        return d

    def finding_objects(self) -> list[Finding]:
        return [Finding.from_dict(f) for f in self.findings]


ROW_FIX = (
    'make each line one JSON object with string fields, e.g. {"id": "c1", "image": '
    '"images/c1.nii.gz", "question": "...", "answer": "..."}'
)


def _problem(path: Path, line: int, what: str, fix: str | None = None) -> Mu2Error:
    return Mu2Error(f"line {line}: {what}", path=str(path), fix=fix or ROW_FIX)


def record_from_dict(d: Any, *, path: Path, line: int) -> Record:
    """Validate one parsed JSON line; errors name the file and line."""
    if not isinstance(d, dict):
        raise _problem(path, line, f"expected a JSON object, got {type(d).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if "answer" not in d and not all(k in d for k in PREFERENCE_KEYS):
        missing.append("answer")
    if missing:
        raise _problem(
            path,
            line,
            f"missing key(s) {', '.join(missing)}",
            fix='each row needs "id", "image", "question" and "answer"',
        )
    for key in ("id", "image", "question", "answer", "case_id", "dataset", "task"):
        if key in d and not isinstance(d[key], str):
            raise _problem(path, line, f'"{key}" must be a string, got {type(d[key]).__name__}')
    region = d.get("region")
    if region is not None and region not in REGIONS:
        raise _problem(
            path, line, f'"region" is {region!r}', fix=f"use one of {list(REGIONS)} or null"
        )
    task = d.get("task", "report")
    if task not in TASKS:
        raise _problem(path, line, f'"task" is {task!r}', fix=f"use one of {list(TASKS)}")
    qtype = d.get("qtype")
    if qtype is not None and (task != "vqa" or qtype not in QTYPES):
        raise _problem(
            path,
            line,
            f'"qtype" is {qtype!r} on a {task!r} row',
            fix=f'"qtype" belongs to "vqa" rows and is one of {list(QTYPES)} (or leave it out)',
        )
    findings = d.get("findings", [])
    if not isinstance(findings, list):
        raise _problem(path, line, '"findings" must be a list of finding objects')
    for f in findings:
        if not isinstance(f, dict):
            raise _problem(path, line, '"findings" must be a list of finding objects')
        try:
            Finding.from_dict(f)
        except (Mu2Error, TypeError) as err:
            raise _problem(path, line, f"bad finding {f!r}: {err}") from None
    meta = d.get("meta", {})
    if not isinstance(meta, dict):
        raise _problem(path, line, '"meta" must be an object')
    return Record(
        id=d["id"],
        image=d["image"],
        question=d["question"],
        answer=d.get("answer", ""),
        case_id=d.get("case_id", ""),
        findings=findings,
        region=region,
        task=task,
        dataset=d.get("dataset", ""),
        meta=meta,
        qtype=qtype,
        extra={k: v for k, v in d.items() if k not in _KNOWN},
    )


def read_jsonl(path: str | Path) -> list[Record]:
    """All rows of a unified JSONL file; a bad line raises Mu2Error naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise Mu2Error("JSONL file not found", path=str(p), fix="pass an existing .jsonl file")
    records: list[Record] = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Mu2Error("not a UTF-8 text file", path=str(p), fix="pass a JSONL file") from None
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 may sit in a string
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as err:
            raise _problem(p, n, f"not valid JSON ({err.msg} at column {err.colno})") from None
        records.append(record_from_dict(d, path=p, line=n))
    return records


def write_jsonl(records: Iterable[Record | dict[str, Any]], path: str | Path) -> Path:
    """Write rows, one JSON object per line (UTF-8, ``\\n`` endings, deterministic bytes)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            d = r.to_dict() if isinstance(r, Record) else r
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return p


def resolve_image(record: Record | dict[str, Any], jsonl_path: str | Path) -> Path:
    """The image path of a row: absolute as given, else relative to the JSONL's folder."""
    image = record.image if isinstance(record, Record) else record["image"]
    p = Path(image)
    return p if p.is_absolute() else Path(jsonl_path).parent / p


def relative_image(image: str | Path, jsonl_path: str | Path) -> str:
    """``image`` written relative to the folder of ``jsonl_path`` (POSIX separators)."""
    rel = os.path.relpath(Path(image).absolute(), Path(jsonl_path).absolute().parent)
    return Path(rel).as_posix()
