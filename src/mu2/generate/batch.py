"""Reports for many scans: one JSON per case, failures collected instead of stopping.

A night's worth of scans should not stop at the first unreadable file; the batch keeps
going, writes what it could and lists what it could not (with the one-line reason).
Worker threads read and prepare the next scans while the model decodes the questions of
several scans as one batch (``ReportGenerator.report_cases``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mu2.errors import Mu2Error

if TYPE_CHECKING:  # numpy and the model code load with the first batch, not with the CLI
    from mu2.generate.result import ReportResult

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
FAILURES_FILE = "failures.json"
"""Written into the batch's output folder every run: ``[{"scan", "error"}]``, empty if none."""


class _Reporter(Protocol):
    def prepare_case(self, scan: Any, *args: Any, **kwargs: Any) -> Any: ...

    def report_cases(self, cases: Any, settings: Any = None, heatmap: bool = False) -> list: ...


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


DEFAULT_BATCH_SCANS = 8  # scans whose questions are decoded together
DEFAULT_WORKERS = 2  # threads reading and preparing the next scans


def _prepare_or_error(generator: _Reporter, scan: Path, prep_kw: dict[str, Any]) -> Any:
    """Read and prepare one scan in a worker thread; an error is returned, not raised."""
    try:
        return generator.prepare_case(scan, **prep_kw)
    except Exception as err:  # noqa: BLE001 - the batch lists it and keeps going
        return err


def _message(err: BaseException) -> str:
    if isinstance(err, Mu2Error):
        return str(err)
    return f"{type(err).__name__}: {err}"


def run_batch(
    generator: _Reporter,
    scans: Iterable[str | Path],
    out_dir: str | Path,
    progress: bool = True,
    on_result: Callable[[Path, ReportResult], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SCANS,
    workers: int = DEFAULT_WORKERS,
    names: Sequence[str] | None = None,
    failures_file: bool = True,
    **report_kwargs: Any,
) -> BatchResult:
    """Report on every scan; write ``out_dir/<case>.json``; collect failures.

    ``report_kwargs``: question, region, allow_non_ct and the generation settings
    (max_new_tokens, do_sample, temperature, top_p, seed, min_new_tokens). ``workers``
    threads read and prepare the next scans while the model decodes the questions of
    ``batch_size`` scans as one batch (0 workers: read in this thread). ``names``: the
    case names (default: from the file names, made unique). ``on_result`` is called after
    each success (e.g. to write heat maps or FHIR).

    The failures also go to ``out_dir/failures.json`` (an empty list when all succeeded),
    so a script can pick up what to re-run without parsing stderr; a shard of a sharded
    run leaves that to the merge (``failures_file=False``).
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm.auto import tqdm

    from mu2.generate.settings import GenerationSettings

    if batch_size < 1 or workers < 0:
        raise Mu2Error(
            f"batch size must be >= 1 and workers >= 0 (got {batch_size}, {workers})",
            fix="e.g. --batch-size 8 --workers 2",
        )
    paths = [Path(s) for s in scans]
    names = list(names) if names is not None else _unique_names(paths)
    prep_keys = ("question", "region", "allow_non_ct", "force")
    prep_kw = {k: v for k, v in report_kwargs.items() if k in prep_keys}
    heatmap = bool(report_kwargs.pop("heatmap", False))
    settings = GenerationSettings(**{k: v for k, v in report_kwargs.items() if k not in prep_keys})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    bar = tqdm(total=len(paths), desc="report", unit="scan", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=workers) if workers else None
    ahead = batch_size * 2  # prepared scans kept in flight: the next batch is ready in time

    def submit(i: int) -> Future[Any]:
        if pool is not None:
            return pool.submit(_prepare_or_error, generator, paths[i], prep_kw)
        done: Future[Any] = Future()
        done.set_result(_prepare_or_error(generator, paths[i], prep_kw))
        return done

    pending = {i: submit(i) for i in range(min(ahead, len(paths)))}
    try:
        for start in range(0, len(paths), batch_size):
            idx = list(range(start, min(start + batch_size, len(paths))))
            cases = []
            for i in idx:
                cases.append(pending.pop(i).result())
                if i + ahead < len(paths):
                    pending[i + ahead] = submit(i + ahead)
            good = [(i, c) for i, c in zip(idx, cases, strict=True)
                    if not isinstance(c, BaseException)]  # fmt: skip
            reports = _report_batch(generator, [c for _, c in good], settings, heatmap)
            by_index = dict(zip([i for i, _ in good], reports, strict=True))
            for i, case in zip(idx, cases, strict=True):
                outcome = case if isinstance(case, BaseException) else by_index[i]
                _finish(result, out, paths[i], names[i], outcome, on_result)
            bar.update(len(idx))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    if failures_file:
        write_failures(out, result)
    return result


def write_failures(out: Path, result: BatchResult) -> None:
    """``out/failures.json``: the scans that failed and why, in list order ([] if none)."""
    failures = [{"scan": str(scan), "error": message} for scan, message in result.failed]
    (out / FAILURES_FILE).write_text(json.dumps(failures, indent=2) + "\n", encoding="utf-8")


def _report_batch(generator: _Reporter, cases: list[Any], settings: Any, heatmap: bool) -> list:
    """Reports of a batch of prepared cases; if the batch fails, each case on its own so
    that one bad case does not take its neighbours with it."""
    if not cases:
        return []
    try:
        return list(generator.report_cases(cases, settings, heatmap=heatmap))
    except Exception:  # noqa: BLE001 - isolate the failing case below
        log.debug("batch decode failed; retrying case by case", exc_info=True)
    out: list[Any] = []
    for case in cases:
        try:
            out.append(generator.report_cases([case], settings, heatmap=heatmap)[0])
        except Exception as err:  # noqa: BLE001
            out.append(err)
    return out


def _finish(
    result: BatchResult,
    out: Path,
    scan: Path,
    name: str,
    outcome: Any,
    on_result: Callable[[Path, ReportResult], None] | None,
) -> None:
    if not isinstance(outcome, BaseException) and on_result is not None:
        try:
            on_result(scan, outcome)
        except Exception as err:  # noqa: BLE001
            outcome = err
    if isinstance(outcome, BaseException):
        log.debug("report failed for %s: %s", scan, outcome)
        result.failed.append((scan, _message(outcome)))
        return
    from mu2.generate.outputs import write_outputs

    target = out / f"{name}.json"
    write_outputs(outcome, None, json_path=target, scan=scan)
    result.written.append((scan, target))
