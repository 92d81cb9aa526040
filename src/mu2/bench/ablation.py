"""``mu2 bench ablation``: the paper's Table 1 / Table 2 analogues on the embedded benchmark.

For each data set (procedural anatomy; real anatomy = lesions drawn in the repository's
CT sample) and each seed: stage 0 once (:func:`mu2.pretrain.recipe.run_clip`), then every
preset by the LM stage (:func:`mu2.train.aids.context_lm.run_lm_pretrain`) and SFT
(:func:`mu2.train.sft.run_sft`) with the same budget, tiny LLM shape, data and frozen
stage-0 tower; mu2 + DPO from the mu2 SFT model (:func:`mu2.train.prefs.build_pairs`,
:func:`mu2.train.dpo.run_dpo`); greedy reports for the test split and the held-out
combination split; all of them scored in one evaluation (:mod:`mu2.bench.score`); mean and
sd over seeds in the paper's layouts (:mod:`mu2.bench.table`) and a bar plot.

Layout of OUT::

    config.json                      the config; budget.json: its resolved budget (a
                                     resumed run must have the same)
    data/<dataset>/                  `mu2 data synth` output; cache/ of prepared volumes
    runs/<dataset>/seed<s>/clip/     stage 0 (final/vision.safetensors, probe.md)
    runs/<dataset>/seed<s>/<row>/    lm/, sft/ (mu2+dpo: prefs/, dpo/), predictions/<split>.jsonl,
                                     metrics/<split>.json, question_dependence.json,
                                     timing.json, status.json
    eval/                            the one evaluation's files (per-case scores, GREEN answers)
    table.md table.csv results.json ablation_<dataset>.png

Finished steps are kept: the same command resumes a stopped run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mu2.bench.config import DPO_ROW, SPLITS, STATUS, AblationConfig, recipe_default
from mu2.bench.predict import predict_split, split_rows, write_predictions
from mu2.bench.qdep import measure_question_dependence, qdep_done
from mu2.bench.score import RunPredictions, score_runs
from mu2.config import to_dict
from mu2.errors import Mu2Error
from mu2.recipes.profile import build_recipe, recipe_values
from mu2.recipes.runner import RunOptions, recipe_class, run_stage, run_wiring

log = logging.getLogger(__name__)

FINAL = "final"
TIMING = "timing.json"
BUDGET = "budget.json"


@dataclass
class AblationResult:
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # run key -> why it has no numbers


@contextmanager
def timed(path: Path, stage: str) -> Iterator[None]:
    """Record wall and CPU seconds of a stage in ``path`` (CPU: this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    record = json.loads(path.read_text()) if path.is_file() else {}
    record[stage] = {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }
    _write_json(path, record)


def check_resume(cfg: AblationConfig, out: Path) -> None:
    """A resumed run must have the budget of the finished steps it reuses."""
    path = out / BUDGET
    budget = cfg.budget()
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [
            k for k in sorted(set(old) | set(budget))
            if old.get(k) != budget.get(k)
            # a recipe key added since, at its default: the finished steps computed the same
            and not (k not in old and budget[k] == recipe_default(k))
        ]  # fmt: skip
        if diff:
            raise Mu2Error(
                f"{out} holds an ablation with another budget ({', '.join(diff)} differ)",
                path=str(path),
                fix="use a new --out, or the same settings to resume",
            )
    _write_json(out / "config.json", to_dict(cfg))
    _write_json(path, budget)


def prepare_data(cfg: AblationConfig, dataset: str, out: Path, progress: bool) -> Path:
    """The synthetic data set of one anatomy (made once; a finished one is reused)."""
    from mu2.data.synthetic.synth import MANIFEST, synthesize
    from mu2.data.synthetic.synth_config import make_config

    folder = out / "data" / dataset
    if (folder / MANIFEST).is_file():
        return folder
    synth_cfg = make_config("tiny", "tiny", dataset, cfg.synth_overrides())
    with timed(out / "data" / TIMING, dataset):
        synthesize(
            folder, cfg.cases, cfg.data_seed, synth_cfg, workers=cfg.workers,
            progress=progress, preset="tiny", size="tiny",
        )  # fmt: skip
    return folder


def sft_rows(cfg: AblationConfig, data: Path, split: str) -> Path:
    """The split's JSONL restricted to ``cfg.train_tasks`` (written once beside it, so
    image paths stay relative to the same folder)."""
    if not cfg.train_tasks:
        return data / f"{split}.jsonl"
    path = data / f"{split}_{'+'.join(cfg.train_tasks)}.jsonl"
    if not path.is_file():
        lines = (data / f"{split}.jsonl").read_text().splitlines()
        keep = [x for x in lines if x.strip() and json.loads(x).get("task") in cfg.train_tasks]
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(x + "\n" for x in keep))
        tmp.replace(path)
    return path


def _recipe(cfg: AblationConfig, stage: str, output_dir: Path | None, seed: int,
            wiring: dict[str, Any]) -> Any:  # fmt: skip
    """Stage ``stage``'s recipe YAML <- the benchmark's wiring <- the profile's ``set``."""
    opts = RunOptions(device="cpu", num_threads=cfg.num_threads, tensorboard=False,
                      save_every=0, resume="none", eval_every=0, num_sample_reports=0)  # fmt: skip
    values = {**run_wiring(stage, output_dir, seed, opts), **wiring}
    return build_recipe(recipe_class(stage), cfg.stage(stage), values, where=stage)


def _cache(data: Path) -> dict[str, Any]:
    """Every stage shares the data set's cache of prepared volumes."""
    return {"data.cache": "disk", "data.cache_dir": str(data / "cache")}


def train_clip(cfg: AblationConfig, data: Path, run_dir: Path, seed: int) -> Path:
    """Stage 0 once per data set and seed: the tower every preset of that seed loads."""
    from mu2.pretrain.clip import VISION_FILE

    vision = run_dir / FINAL / VISION_FILE
    if vision.is_file():
        return vision
    clip = _recipe(cfg, "clip", run_dir, seed, {
        **_cache(data), "data.train": str(data / "train.jsonl"),
        "data.val": str(data / "val.jsonl"), "data.test": str(data / "test.jsonl"),
        "probe.seed": seed,
    })  # fmt: skip
    with timed(run_dir / TIMING, "clip"):
        run_stage("clip", clip)
    return vision


def train_lm(cfg: AblationConfig, data: Path, run_dir: Path, seed: int, preset: str,
             vision: Path) -> Path | None:  # fmt: skip
    """LM stage of one preset (``mu2 train lm``): the random-init tiny LLM learns the
    report text with an image block of the preset's size (context=findings: and to read the
    findings written there; none: plain text); None without an LM stage."""
    if not cfg.lm.enabled:
        return None
    final = run_dir / "lm" / FINAL
    if (final / "config.json").is_file():
        return final
    lm = _recipe(cfg, "lm", run_dir / "lm", seed, {
        "model.preset": preset, "model.vision_path": str(vision),
        "model.overrides": dict(cfg.model_overrides),
        "data.train": str(sft_rows(cfg, data, "train")),
    })  # fmt: skip
    with timed(run_dir / TIMING, "lm"):
        result: Path = run_stage("lm", lm)
    return result


def sft_recipe(cfg: AblationConfig, data: Path, run_dir: Path, seed: int, preset: str,
               lm: Path | None, vision: Path) -> Any:  # fmt: skip
    """The SFT config of one preset exactly as :func:`train_sft` runs it: from the preset's
    LM stage (LLM frozen or trained as the profile asks) or, without one, a random-init LLM
    that SFT trains; the profile's ``set`` list comes last and wins over this wiring."""
    asked = recipe_values(recipe_class("sft"), cfg.sft)
    lm_values = recipe_values(recipe_class("lm"), cfg.lm)
    # The findings-code loss needs an LLM that reads the code: an LM stage with the code
    # in its image block (context=findings, fill=code; context=none writes no code at all).
    context = lm_values.get("context", "findings")
    reads_code = context == "findings" and lm_values.get("fill") == "code"
    start: dict[str, Any] = (
        {"model.init_from": str(lm), "model.vision_path": None,
         "model.freeze_llm": bool(asked["model"]["freeze_llm"]),
         **({} if reads_code else {"code_weight": 0.0})}
        if lm is not None
        else {"model.init_from": None, "model.vision_path": str(vision),
              "model.overrides": dict(cfg.model_overrides), "model.freeze_llm": False,
              "code_weight": 0.0, "code_init_rows": 0}
    )  # fmt: skip
    return _recipe(cfg, "sft", run_dir / "sft", seed, {
        **start, **_cache(data), "model.preset": preset,
        "data.train": str(sft_rows(cfg, data, "train")),
        "data.val": str(sft_rows(cfg, data, "val")),
        # The frozen stage-0 tower sees each volume once when nothing augments it.
        "cache_vision": not asked["data"]["augment"],
    })  # fmt: skip


def train_sft(cfg: AblationConfig, data: Path, run_dir: Path, seed: int, preset: str,
              vision: Path) -> Path:  # fmt: skip
    """SFT of one preset: the same budget, tower and data for every preset, from the
    preset's LM stage (or, without an LM stage, a random-init LLM): :func:`sft_recipe`."""
    final = run_dir / "sft" / FINAL
    if (final / "config.json").is_file():
        return final
    lm = train_lm(cfg, data, run_dir, seed, preset, vision)
    sft = sft_recipe(cfg, data, run_dir, seed, preset, lm, vision)
    with timed(run_dir / TIMING, "sft"):
        run_stage("sft", sft)
    return final


def train_dpo(cfg: AblationConfig, data: Path, run_dir: Path, seed: int,
              sft_model: Path) -> tuple[Path | None, str]:  # fmt: skip
    """Preference pairs from the mu2 SFT model, then DPO; (final folder or None, note)."""
    final = run_dir / "dpo" / FINAL
    if (final / "config.json").is_file():
        return final, "trained"
    pairs = run_dir / "prefs" / "pairs.jsonl"
    prefs = _recipe(cfg, "prefs", None, seed, {
        "model": str(sft_model), "data": str(data / "train.jsonl"), "out": str(pairs),
        # The pairs are of the scored report tasks (GREEN ranks reports, not short answers),
        # sampled with the scored reports' length cap.
        "tasks": report_tasks(cfg), "max_new_tokens": cfg.max_new_tokens,
    })  # fmt: skip
    with timed(run_dir / TIMING, "prefs"):
        summary = run_stage("prefs", prefs)
    n_pairs = len(pairs.read_text().splitlines()) if pairs.is_file() else 0
    note = summary.describe()
    if n_pairs == 0:
        return None, f"no DPO: no preference pairs ({note})"
    dpo = _recipe(cfg, "dpo", run_dir / "dpo", seed, {
        **_cache(data), "model.sft_model": str(sft_model), "data.train": str(pairs),
    })  # fmt: skip
    with timed(run_dir / TIMING, "dpo"):
        run_stage("dpo", dpo)
    return final, f"trained on {n_pairs} pairs ({note})"


def predict(cfg: AblationConfig, data: Path, run_dir: Path, model_dir: Path,
            progress: bool) -> list[tuple[str, Path]]:  # fmt: skip
    """Prediction files of the model for each split that has rows (made once)."""
    from mu2.model import Mu2ForConditionalGeneration

    todo = [s for s in SPLITS if split_rows(data / f"{s}.jsonl", cfg.tasks)]
    files = [(s, run_dir / "predictions" / f"{s}.jsonl") for s in todo]
    missing = [(s, p) for s, p in files if not p.is_file()]
    if missing:
        prep = cfg.recipe("sft")["data"]["prep"]  # volumes prepared as the model was trained
        model = Mu2ForConditionalGeneration.from_pretrained(model_dir)
        for split, path in missing:
            with timed(run_dir / TIMING, f"predict_{split}"):
                rows = predict_split(
                    model, data / f"{split}.jsonl", prep=prep, cache_dir=data / "cache",
                    tasks=cfg.tasks, batch_size=cfg.eval_batch_size,
                    max_new_tokens=cfg.max_new_tokens, progress=progress,
                )  # fmt: skip
            write_predictions(rows, path)
    return files


def report_tasks(cfg: AblationConfig) -> list[str]:
    """The scored row tasks that are reports (``vqa`` rows are short answers)."""
    from mu2.metrics.vqa import VQA_TASK

    return [t for t in cfg.tasks if t != VQA_TASK] or ["report"]


def _status(run_dir: Path, **values: Any) -> None:
    _write_json(run_dir / STATUS, values)


def _write_json(path: Path, doc: Any) -> None:
    """Atomic write: runs sharded over processes (one per data set or seed) share OUT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def run_ablation(cfg: AblationConfig, progress: bool = True) -> AblationResult:
    """Train, predict, score and tabulate every row x data set x seed of ``cfg``."""
    from mu2.bench.plot import plot_ablation
    from mu2.bench.table import build_tables, write_tables

    out = Path(cfg.out)
    check_resume(cfg, out)
    result = AblationResult(out)
    threads = torch.get_num_threads()
    runs: list[RunPredictions] = []
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        for dataset in cfg.datasets:
            data = prepare_data(cfg, dataset, out, progress)
            for seed in cfg.seed_list:
                base = out / "runs" / dataset / f"seed{seed}"
                log.info("== %s, seed %d: stage 0", dataset, seed)
                vision = train_clip(cfg, data, base / "clip", seed)
                for row in cfg.rows:
                    run_dir = base / row
                    log.info("== %s, seed %d: %s", dataset, seed, row)
                    if row == DPO_ROW:
                        model_dir, note = train_dpo(
                            cfg, data, run_dir, seed, base / "mu2" / "sft" / FINAL
                        )
                    else:
                        model_dir = train_sft(cfg, data, run_dir, seed, row, vision)
                        note = "trained"
                    _status(run_dir, row=row, seed=seed, dataset=dataset, status=note)
                    if model_dir is None:
                        result.skipped[f"{dataset}/seed{seed}/{row}"] = note
                        continue
                    if not qdep_done(cfg, run_dir, model_dir):
                        with timed(run_dir / TIMING, "question_dependence"):
                            measure_question_dependence(cfg, data, run_dir, model_dir)
                    for split, path in predict(cfg, data, run_dir, model_dir, progress):
                        runs.append(RunPredictions(
                            dataset, seed, row, split, path, run_dir / "metrics" / f"{split}.json"
                        ))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    with timed(out / TIMING, "score"):
        result.metrics = score_runs(runs, cfg.metrics, out / "eval", progress=progress)
    tables = build_tables(out, cfg)
    result.files = write_tables(tables, out)
    result.files.update(plot_ablation(tables, out))
    return result
