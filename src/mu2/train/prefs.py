"""Preference pairs for DPO: sample reports from the SFT model, GREEN-rank them, keep extremes.

For every training case (ref. code: 8 samples, temperature 1.0, top-p 0.9): sample n
reports, drop degenerate ones (empty, fewer than ``min_length`` words, a word repeated
in a loop), score each against the reference with a GREEN judge, and write

    {"id", "image", "question", "chosen", "rejected", "chosen_green", "rejected_green",
     "reference", "judge"}

with chosen = best, rejected = worst (plus ``chosen_errors`` / ``rejected_errors``, the
counts of clinically significant errors). Samples are ranked by GREEN; with
``tie_break="errors"`` (an aid not in the paper, off in its config) samples of equal
GREEN are ranked by their number of significant errors, fewer first, so a case whose
samples all score alike still gives a pair when their errors differ. Cases whose best
score is 0 (``best_zero``), whose best equals their worst (``tie``), whose GREEN margin
is below ``min_margin`` (``small_margin``) or with fewer than two usable samples
(``degenerate``) are skipped and counted per reason (the skips go to
``<out>.skipped.jsonl`` with their reason, so a resumed run does not redo them).
``image`` is written relative to the output file's folder, the rule of every mu2 JSONL.

Samples are drawn ``sample_rows`` cases at a time (one decode batch of ``sample_rows * n``
reports; with the tiny model on 2 CPU cores 8 cases a batch cost ~30% less per case than
one). The groups are fixed runs of consecutive cases and a group's draw depends only on
(seed, its case ids), so sharding across processes (whole groups) or resuming (a group
with some cases done is drawn again, whole, and only its missing cases are written) gives
the same pairs. Processes write
``<out>.part<rank>`` files that the main process appends to ``<out>`` at the end; rows
already in the output are skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mu2.device import resolve_device
from mu2.errors import Mu2Error
from mu2.train.config import PrefsConfig

logger = logging.getLogger(__name__)

SKIP_REASONS = ("degenerate", "best_zero", "tie", "small_margin")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,'-][A-Za-z0-9]+)*")
MARGIN_EPS = 1e-9
"""GREEN scores are ratios (0.7 - 0.5 = 0.19999...): a margin this close counts as met."""
MAX_WORD_REPEAT = 4
"""A word repeated this many times in a row marks a generation loop."""


def degenerate_reason(text: str, min_length: int) -> str | None:
    """Why a sample is unusable (``empty``, ``short``, ``loop``), or None when it is fine."""
    words = _WORD.findall(text.lower())
    if not words:
        return "empty"
    if len(words) < min_length:
        return "short"
    run = 1
    for prev, word in zip(words, words[1:], strict=False):
        run = run + 1 if word == prev else 1
        if run >= MAX_WORD_REPEAT:
            return "loop"
    return None


def choose_pair(
    scores: Sequence[float],
    errors: Sequence[int] | None = None,
    min_margin: float = 0.0,
) -> tuple[int, int] | str:
    """(best, worst) indices, or the skip reason: ``degenerate``, ``best_zero``, ``tie``
    or ``small_margin``.

    ``errors`` (significant error counts, one per sample) break GREEN ties: of equal
    scores, fewer errors rank higher. Remaining ties break toward the earliest sample, so
    the choice is deterministic. ``min_margin``: least GREEN difference best - worst.
    """
    if len(scores) < 2:
        return "degenerate"
    errs = list(errors) if errors is not None else [0] * len(scores)
    best = max(range(len(scores)), key=lambda i: (scores[i], -errs[i], -i))
    worst = min(range(len(scores)), key=lambda i: (scores[i], -errs[i], i))
    if scores[best] <= 0:
        return "best_zero"
    if (scores[best], errs[best]) == (scores[worst], errs[worst]):
        return "tie"
    if scores[best] - scores[worst] < min_margin - MARGIN_EPS:
        return "small_margin"
    return best, worst


@dataclass
class CaseResult:
    """One case's ranking: a (chosen, rejected) pair or the reason it was skipped."""

    scores: list[float]
    degenerate: Counter
    chosen: str | None = None
    rejected: str | None = None
    chosen_green: float | None = None
    rejected_green: float | None = None
    chosen_errors: int | None = None
    rejected_errors: int | None = None
    skip: str | None = None

    @property
    def tie_broken(self) -> bool:
        """A pair of equal GREEN, ranked by significant errors alone."""
        return self.skip is None and self.chosen_green == self.rejected_green


def rank_samples(
    samples: Sequence[str],
    reference: str,
    judge: Any,
    min_length: int,
    tie_break: str = "none",
    min_margin: float = 0.0,
) -> CaseResult:
    """Drop degenerate samples, GREEN-score the rest against ``reference``, keep the extremes.

    ``tie_break``: ``none`` (GREEN alone, the paper) or ``errors`` (equal GREEN ranked by
    significant error count); ``min_margin``: see :func:`choose_pair`.
    """
    from mu2.metrics.green import parse_answer

    reasons = [degenerate_reason(t, min_length) for t in samples]
    usable = [t for t, r in zip(samples, reasons, strict=True) if r is None]
    degenerate = Counter(r for r in reasons if r)
    scores: list[float] = []
    errors: list[int] = []
    if len(usable) >= 2:
        parsed = [parse_answer(a) for a in judge.answers([(reference, t) for t in usable])]
        scores = [p.score for p in parsed]
        errors = [sum(p.significant.values()) for p in parsed]
    choice = choose_pair(scores, errors if tie_break == "errors" else None, min_margin)
    if isinstance(choice, str):
        return CaseResult(scores=scores, degenerate=degenerate, skip=choice)
    best, worst = choice
    return CaseResult(
        scores=scores,
        degenerate=degenerate,
        chosen=usable[best],
        rejected=usable[worst],
        chosen_green=scores[best],
        rejected_green=scores[worst],
        chosen_errors=errors[best],
        rejected_errors=errors[worst],
    )


def case_seed(seed: int, case_id: str) -> int:
    """Seed of one case's sampling: independent of order, sharding and resumption."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{case_id}".encode()).digest()[:8], "little") >> 1


def group_seed(seed: int, case_ids: Sequence[str]) -> int:
    """Seed of one group's sampling: its case ids in order (one case: :func:`case_seed`)."""
    return case_seed(seed, "\n".join(case_ids))


def case_groups(rows: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Consecutive runs of ``size`` rows: fixed by the data file, not by what is left to do."""
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


@dataclass
class PrefsSummary:
    out: Path
    judge: str
    total: int = 0
    already_done: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    degenerate_samples: Counter = field(default_factory=Counter)
    tie_broken: int = 0
    """Pairs written whose GREEN was equal, ranked by significant errors (tie_break)."""
    is_main: bool = True
    """False on the other processes of a sharded run (their numbers are the totals too)."""

    def describe(self) -> str:
        skipped = ", ".join(f"{k} {self.skipped.get(k, 0)}" for k in SKIP_REASONS)
        bad = ", ".join(f"{k} {v}" for k, v in sorted(self.degenerate_samples.items())) or "none"
        return (
            f"pairs: {self.written} written to {self.out} ({self.already_done} already there) "
            f"of {self.total} cases ({self.tie_broken} ranked by error count at equal GREEN); "
            f"skipped: {skipped}; degenerate samples: {bad}; judge: {self.judge}"
        )


def done_ids(out: Path) -> set[str]:
    """Case ids already written or skipped by an earlier (possibly killed) run."""
    ids: set[str] = set()
    for path in _outputs(out):
        for row in _read_tolerant(path):
            ids.add(str(row["id"]))
    return ids


def _outputs(out: Path) -> list[Path]:
    siblings = list(out.parent.glob(out.name + ".part*")) + list(
        out.parent.glob(skipped_path(out).name + ".part*")
    )
    return [p for p in [out, skipped_path(out), *sorted(siblings)] if p.is_file()]


def skipped_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".skipped.jsonl")


def _read_tolerant(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL that a kill may have cut mid-line: the broken tail is dropped."""
    rows, good = [], []
    lines = path.read_text().splitlines(keepends=True)
    for line in lines:
        try:
            rows.append(json.loads(line))
            good.append(line if line.endswith("\n") else line + "\n")
        except json.JSONDecodeError:
            logger.warning("%s: dropping a truncated line", path)
    if len(good) != len(lines) or (lines and not lines[-1].endswith("\n")):
        path.write_text("".join(good))
    return rows


def merge_parts(out: Path) -> None:
    """Append every ``.part<rank>`` file to its main file, then remove the parts."""
    for main in (out, skipped_path(out)):
        parts = sorted(main.parent.glob(main.name + ".part*"))
        if not parts:
            continue
        with open(main, "a") as f:
            for part in parts:
                for row in _read_tolerant(part):
                    f.write(json.dumps(row) + "\n")
        for part in parts:
            part.unlink()


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix != ".jsonl":
        raise Mu2Error(f"--out {out} must end in .jsonl", fix="e.g. --out runs/prefs/pairs.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def sample_group(
    model: Any,
    processor: Any,
    frames: Sequence[torch.Tensor],
    questions: Sequence[str],
    cfg: PrefsConfig,
    case_ids: Sequence[str],
    device: Any,
) -> list[list[str]]:
    """``cfg.n`` sampled reports per case (frames (T, K, H, W), question), all cases in one
    decode batch; the draw depends only on (seed, case ids)."""
    from mu2.train.sampling import generate_reports

    n = cfg.n
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # leave the caller's RNG untouched
        torch.manual_seed(group_seed(cfg.seed, case_ids))
        # case i's samples are rows i*n .. i*n+n-1; one frames object per case, so the
        # vision tower runs once per case
        texts = generate_reports(
            model,
            processor,
            [f for f in frames for _ in range(n)],
            [q for q in questions for _ in range(n)],
            device=device,
            max_new_tokens=cfg.max_new_tokens,
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
        )
    return [texts[i * n : (i + 1) * n] for i in range(len(case_ids))]


def build_pairs(cfg: PrefsConfig) -> PrefsSummary:
    """Write preference pairs for every case of ``cfg.data`` not already in ``cfg.out``."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from mu2.engine.dataset import adopt_prep, prepare_fn, read_rows
    from mu2.metrics.green import make_judge
    from mu2.train.sft import load_sft_model

    state = PartialState(cpu=resolve_device(cfg.device).type == "cpu")
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        out = check_output(cfg.out)
        rows = [
            r
            for r in read_rows(cfg.data, ("id", "image", "question", "answer"))
            if r.get("task") is None or r["task"] in cfg.tasks
        ][: cfg.limit]
        if state.is_main_process:
            merge_parts(out)  # leftovers of a killed multi-process run
            done_ids(out)  # repairs a line cut by a kill, before anyone reads
        state.wait_for_everyone()
        done = done_ids(out)
        todo = [r for r in rows if str(r["id"]) not in done]
        groups = [
            g for g in case_groups(rows, cfg.sample_rows) if any(str(r["id"]) not in done for r in g)
        ]
        mine = groups[state.process_index :: state.num_processes]
        judge = make_judge(cfg.green_backend, **cfg.green_options)
        summary = PrefsSummary(
            out=out, judge=judge.label, total=len(rows), already_done=len(rows) - len(todo)
        )
        logger.info(
            "%d cases, %d to do on %d process(es), %d cases per sampling batch; judge: %s",
            len(rows),
            len(todo),
            state.num_processes,
            cfg.sample_rows,
            judge.label,
        )
        model = load_sft_model(cfg.model).to(state.device).eval()
        adopt_prep(model, cfg.prep, trained=True)
        prep, _ = prepare_fn(cfg.prep)
        suffix = f".part{state.process_index}" if state.num_processes > 1 else ""
        pair_file = out.with_name(out.name + suffix)
        skip_file = skipped_path(out).with_name(skipped_path(out).name + suffix)
        bar = tqdm(
            total=sum(str(r["id"]) not in done for g in mine for r in g),
            desc="prefs",
            disable=not state.is_main_process,
            dynamic_ncols=True,
        )
        for group in mine:
            ids = [str(r["id"]) for r in group]
            drawn = sample_group(
                model, model.processor, [prep(r, Path(cfg.data)) for r in group],
                [r["question"] for r in group], cfg, ids, state.device,
            )  # fmt: skip
            for row, case_id, samples in zip(group, ids, drawn, strict=True):
                if case_id in done:
                    continue  # written by an earlier run: the group is drawn whole again
                bar.update()
                _rank_and_write(row, case_id, samples, cfg, judge, summary, pair_file, skip_file)
        bar.close()
        state.wait_for_everyone()
        parts = gather_object(
            [(summary.written, dict(summary.skipped), dict(summary.degenerate_samples),
              summary.tie_broken)]
        )  # fmt: skip
        if state.is_main_process and state.num_processes > 1:
            merge_parts(out)
        summary.written = sum(p[0] for p in parts)
        summary.skipped = sum((Counter(p[1]) for p in parts), Counter())
        summary.degenerate_samples = sum((Counter(p[2]) for p in parts), Counter())
        summary.tie_broken = sum(p[3] for p in parts)
        summary.is_main = state.is_main_process
        if state.is_main_process:
            logger.info(summary.describe())
        return summary
    finally:
        torch.set_num_threads(threads)


def _append(path: Path, row: dict[str, Any]) -> None:
    """One whole line per write, flushed: a kill loses at most the line being written."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def _rank_and_write(
    row: dict[str, Any],
    case_id: str,
    samples: list[str],
    cfg: PrefsConfig,
    judge: Any,
    summary: PrefsSummary,
    pair_file: Path,
    skip_file: Path,
) -> None:
    """GREEN-rank one case's samples; append its pair or its skip, count it in ``summary``."""
    from mu2.data.schema import relative_image, resolve_image

    image = resolve_image(row, cfg.data)
    out = Path(cfg.out)
    result = rank_samples(
        samples, row["answer"], judge, cfg.min_length, cfg.tie_break, cfg.min_margin
    )
    summary.degenerate_samples.update(result.degenerate)
    if result.skip is not None:
        summary.skipped[result.skip] += 1
        _append(skip_file, {"id": case_id, "reason": result.skip, "scores": result.scores,
                            "degenerate": sum(result.degenerate.values())})  # fmt: skip
        return
    _append(
        pair_file,
        {
            "id": case_id,
            "case_id": row.get("case_id", case_id),
            "image": relative_image(image, out),
            "question": row["question"],
            "chosen": result.chosen,
            "rejected": result.rejected,
            "chosen_green": result.chosen_green,
            "rejected_green": result.rejected_green,
            "chosen_errors": result.chosen_errors,
            "rejected_errors": result.rejected_errors,
            "reference": row["answer"],
            "judge": judge.name,
            # the model card of a DPO model reads where its pairs came from
            "region": row.get("region"),
            "dataset": row.get("dataset"),
            **({"meta": row["meta"]} if row.get("meta") else {}),  # how to read the image
        },
    )
    summary.written += 1
    summary.tie_broken += result.tie_broken
