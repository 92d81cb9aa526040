"""Reports for many scans: one JSON per case, failures collected instead of stopping.

A night's worth of scans should not stop at the first unreadable file; the batch keeps
going, writes what it could and lists what it could not (with the one-line reason).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from mu2.errors import Mu2Error
from mu2.generate.result import ReportResult

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
FAILURES_FILE = "failures.json"
"""Written into the batch's output folder every run: ``[{"scan", "error"}]``, empty if none."""


class _Reporter(Protocol):
    def report(self, scan: Any, **kwargs: Any) -> ReportResult: ...


@dataclass
class BatchResult:
    """Where each case's JSON went, and which scans failed with which message."""

    written: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def read_input_list(path: str | Path) -> list[Path]:
    """Scan paths from a text file: one per line, ``#`` comments and blank lines skipped.

    Relative paths are taken relative to the list file's folder, so a list can travel
    with its data.
    """
    p = Path(path)
    if not p.is_file():
        raise Mu2Error(
            "input list not found", path=str(p), fix="pass a text file, one scan per line"
        )
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise Mu2Error(
            "input list is not a UTF-8 text file", path=str(p), fix="one scan path per line"
        ) from None
    scans = []
    for line in lines:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        scan = Path(item).expanduser()
        scans.append(scan if scan.is_absolute() else p.parent / scan)
    if not scans:
        raise Mu2Error("input list names no scans", path=str(p), fix="one scan path per line")
    return scans


def case_name(scan: Path) -> str:
    """File-name stem without .nii/.nii.gz/.npy/.dcm, e.g. 'case_001' for case_001.nii.gz."""
    name = scan.name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return scan.stem or name


def _unique_names(scans: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {FAILURES_FILE.removesuffix(".json"): 1}  # never overwrite it
    names = []
    for scan in scans:
        base = case_name(scan)
        n = seen.get(base, 0)
        seen[base] = n + 1
        names.append(base if n == 0 else f"{base}_{n + 1}")
    return names


def run_batch(
    generator: _Reporter,
    scans: Iterable[str | Path],
    out_dir: str | Path,
    progress: bool = True,
    on_result: Callable[[Path, ReportResult], None] | None = None,
    **report_kwargs: Any,
) -> BatchResult:
    """Report on every scan; write ``out_dir/<case>.json``; collect failures.

    The failures also go to ``out_dir/failures.json`` (an empty list when all succeeded),
    so a script can pick up what to re-run without parsing stderr.

    ``report_kwargs`` go to ``generator.report`` (question, region, max_new_tokens, ...).
    ``on_result`` is called after each success (e.g. to write heat maps or FHIR).
    """
    scans = [Path(s) for s in scans]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    bar = tqdm(
        list(zip(scans, _unique_names(scans), strict=True)),
        desc="report",
        unit="scan",
        disable=not progress,
    )
    for scan, name in bar:
        bar.set_postfix_str(name, refresh=False)
        try:
            rep = generator.report(scan, **report_kwargs)
            if on_result is not None:
                on_result(scan, rep)
        except Mu2Error as err:
            result.failed.append((scan, str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - a batch keeps going; the reason is listed
            log.debug("report failed for %s", scan, exc_info=True)
            result.failed.append((scan, f"{type(err).__name__}: {err}"))
            continue
        target = out / f"{name}.json"
        doc = {"scan": str(scan), **rep.to_dict()}
        target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        result.written.append((scan, target))
    failures = [{"scan": str(scan), "error": message} for scan, message in result.failed]
    (out / FAILURES_FILE).write_text(json.dumps(failures, indent=2) + "\n", encoding="utf-8")
    return result
