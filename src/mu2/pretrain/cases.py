"""One stage-0 item per scan: its volume, its whole report and its structured findings.

The unified JSONL has one row per region report (and yes/no rows) of a scan; contrastive
pretraining wants one item per *scan*, since two rows of one volume in a batch would be
each other's false negatives. A case's text is its region reports in report order; its
findings are the union over its rows (the synthetic benchmark's ``gt/`` holds the same).

Targets of the auxiliary head (:class:`LabelSpace`): one label per finding kind seen in
the training split, plus ``kind:left`` / ``kind:right`` for lateral kinds (bilateral sets
both), so the tower is told where a one-sided finding lies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mu2.data.schema import read_jsonl, resolve_image
from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, REGIONS, Finding

SIDE_SEP = ":"


@dataclass
class Case:
    case_id: str
    image: str
    """Absolute, resolved path (so disk-cache keys match those of SFT runs)."""
    text: str
    findings: list[Finding] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    """Regions of the report rows, in the order their reports appear in ``text``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "image": self.image,
            "text": self.text,
            "findings": [f.to_dict() for f in self.findings],
            "regions": self.regions,
        }


def _region_order(region: str | None) -> int:
    return REGIONS.index(region) if region in REGIONS else len(REGIONS)


def read_cases(jsonl: str | Path, limit: int | None = None) -> list[Case]:
    """Cases of a unified JSONL, in order of first appearance (at most ``limit``)."""
    records = read_jsonl(jsonl)
    groups: dict[str, list] = {}
    for rec in records:
        groups.setdefault(rec.case_id, []).append(rec)
    cases = []
    for case_id, recs in list(groups.items())[:limit]:
        reports = sorted(
            (r for r in recs if r.task == "report" and r.answer),
            key=lambda r: _region_order(r.region),
        )
        findings: dict[tuple, Finding] = {}
        for rec in recs:
            for f in rec.finding_objects():
                findings.setdefault(f.key(), f)
        images = {str(resolve_image(r, jsonl).resolve()) for r in recs}
        if len(images) != 1:
            raise Mu2Error(
                f"case '{case_id}' has rows with different images: {sorted(images)[:2]}",
                path=str(jsonl),
                fix="give every row of one scan the same case_id and image",
            )
        text = " ".join(r.answer for r in reports)
        regions = [r.region for r in reports if r.region]
        cases.append(Case(case_id, images.pop(), text, list(findings.values()), regions))
    with_text = [c for c in cases if c.text]
    if not with_text:
        raise Mu2Error(
            "no report rows (task 'report' with an answer)",
            path=str(jsonl),
            fix="stage 0 pairs volumes with their reports; pass a JSONL with report rows",
        )
    return with_text


def write_cases(cases: Sequence[Case], path: str | Path) -> Path:
    """Case rows as JSONL (``id``, absolute ``image``, ``text``, ``findings``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(c.to_dict()) + "\n" for c in cases))
    return path


def _labels_of(f: Finding, sides: bool) -> list[str]:
    names = [f.finding]
    if sides and FINDING_KINDS[f.finding].lateral and f.side:
        wanted = ("left", "right") if f.side == "bilateral" else (f.side,)
        names += [f"{f.finding}{SIDE_SEP}{s}" for s in wanted]
    return names


@dataclass
class LabelSpace:
    """Names of the findings head's outputs; a case's targets are a multi-hot vector."""

    names: list[str]

    @classmethod
    def from_cases(cls, cases: Sequence[Case], sides: bool = True) -> LabelSpace:
        """Labels with at least one positive case, kinds in catalogue order, sides after."""
        seen = {name for c in cases for f in c.findings for name in _labels_of(f, sides)}
        order = list(FINDING_KINDS)
        return cls(sorted(seen, key=lambda n: (order.index(n.split(SIDE_SEP)[0]), n)))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def kinds(self) -> list[str]:
        """Finding kinds (presence labels) in the space."""
        return [n for n in self.names if SIDE_SEP not in n]

    def encode(self, findings: Sequence[Finding | dict[str, Any]]) -> torch.Tensor:
        """Findings -> multi-hot (C,) float targets; kinds outside the space are ignored."""
        index = {n: i for i, n in enumerate(self.names)}
        target = torch.zeros(len(self.names))
        for f in findings:
            f = f if isinstance(f, Finding) else Finding.from_dict(f)
            for name in _labels_of(f, sides=True):
                if name in index:
                    target[index[name]] = 1.0
        return target
