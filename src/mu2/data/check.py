"""``mu2 data check``: is a unified JSONL (and its sibling splits) safe to train on?

Checks every image is readable, no answer is empty, and no case sits in two splits:
neither by row id, nor by case id, nor by volume content (a SHA-1 of the decoded voxels,
so the same scan written twice under two names is still caught). Sibling splits are the
files named train / val / test / test_generalisation .jsonl in the same folder.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mu2.data.expansion.augment import check_augmented_leakage
from mu2.data.schema import Record, read_jsonl, resolve_image
from mu2.data.volume_io import load_record_image
from mu2.errors import Mu2Error

SPLIT_FILES: tuple[str, ...] = ("train", "val", "test", "test_generalisation")


@dataclass
class CheckResult:
    files: list[Path]
    rows: int = 0
    cases: int = 0
    images: int = 0
    per_file: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.per_file.items())
        return (
            f"OK: {len(self.files)} file(s), {self.rows} rows, {self.cases} cases, "
            f"{self.images} images readable, no empty answers, no case in two splits ({parts})"
        )


def split_files(path: Path) -> list[Path]:
    """The file itself plus its sibling split files (when it is one of them)."""
    if path.name.removesuffix(".jsonl") not in SPLIT_FILES:
        return [path]
    siblings = [path.parent / f"{s}.jsonl" for s in SPLIT_FILES]
    return [p for p in siblings if p.is_file() or p == path]


def volume_hash(array: np.ndarray) -> str:
    """Content hash of decoded voxels (shape and float32 values)."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    h = hashlib.sha1(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _row_problems(name: str, records: list[Record]) -> list[str]:
    out = []
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            out.append(f"{name}: row id '{r.id}' appears twice")
        seen.add(r.id)
        if not r.question.strip():
            out.append(f"{name}: row '{r.id}' has an empty question")
        answers = [r.answer] + [r.extra.get(k, "") for k in ("chosen", "rejected") if k in r.extra]
        if not r.answer.strip() and not ("chosen" in r.extra and "rejected" in r.extra):
            out.append(f"{name}: row '{r.id}' has an empty answer")
        elif any(isinstance(a, str) and not a.strip() for a in answers[1:]):
            out.append(f"{name}: row '{r.id}' has an empty chosen/rejected answer")
    return out


def check_dataset(path: str | Path, *, progress: bool = False) -> CheckResult:
    """All problems of ``path`` and its sibling splits (Mu2Error only for unreadable JSONL)."""
    path = Path(path)
    if not path.is_file():
        raise Mu2Error("JSONL file not found", path=str(path), fix="pass an existing .jsonl file")
    files = split_files(path)
    res = CheckResult(files)
    data = {f.name.removesuffix(".jsonl"): (f, read_jsonl(f)) for f in files}
    row_split: dict[str, set[str]] = defaultdict(set)
    case_split: dict[str, set[str]] = defaultdict(set)
    for name, (_, records) in data.items():
        res.per_file[name] = len(records)
        res.rows += len(records)
        res.problems += _row_problems(name, records)
        for r in records:
            row_split[r.id].add(name)
            case_split[r.case_id].add(name)
    res.cases = len(case_split)
    for rid, where in sorted(row_split.items()):
        if len(where) > 1:
            res.problems.append(f"row id '{rid}' is in several splits: {', '.join(sorted(where))}")
    for cid, where in sorted(case_split.items()):
        if len(where) > 1:
            res.problems.append(f"case '{cid}' is in several splits: {', '.join(sorted(where))}")
    rows_by_split = {n: [r.to_dict() for r in recs] for n, (_, recs) in data.items()}
    res.problems += check_augmented_leakage(rows_by_split)

    # Images: each distinct file once; content hashes across splits.
    users: dict[Path, list[tuple[str, Record, Path]]] = defaultdict(list)
    for name, (f, records) in data.items():
        for r in records:
            users[resolve_image(r, f).resolve()].append((name, r, f))
    by_hash: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for img, uses in tqdm(users.items(), desc="check", unit="image", disable=not progress):
        name, r, f = uses[0]
        try:
            arr = load_record_image(r, f).array
        except Mu2Error as err:
            res.problems.append(f"{name}: row '{r.id}': image unreadable: {err}")
            continue
        except Exception as err:  # any reader failure is a finding of the check, not a crash
            res.problems.append(f"{name}: row '{r.id}': image unreadable: {img}: {err}")
            continue
        res.images += 1
        by_hash[volume_hash(arr)].update((n, u.case_id) for n, u, _ in uses)
    for entries in by_hash.values():
        if len({s for s, _ in entries}) > 1:
            cases = ", ".join(f"{c} ({s})" for s, c in sorted(entries))
            res.problems.append(f"the same volume content is in several splits: {cases}")
    return res
