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

    config.json                      the config (a resumed run must have the same budget)
    data/<dataset>/                  `mu2 data synth` output; cache/ of prepared volumes
    runs/<dataset>/seed<s>/clip/     stage 0 (final/vision.safetensors, probe.md)
    runs/<dataset>/seed<s>/<row>/    lm/, sft/ (mu2+dpo: prefs/, dpo/), predictions/<split>.jsonl,
                                     metrics/<split>.json, timing.json, status.json
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

from mu2.bench.config import DPO_ROW, SPLITS, STATUS, AblationConfig
from mu2.bench.predict import predict_split, split_rows, write_predictions
from mu2.bench.score import RunPredictions, score_runs
from mu2.config import load_config, to_dict
from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

PREP = "tiny"  # volume preparation of the tiny model (4 frames of 16 x 64 x 64)
FINAL = "final"
TIMING = "timing.json"


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
    path = out / "config.json"
    if path.is_file():
        old = load_config(AblationConfig, path)
        diff = [k for k, v in cfg.budget().items() if old.budget()[k] != v]
        if diff:
            raise Mu2Error(
                f"{out} holds an ablation with another budget ({', '.join(diff)} differ)",
                path=str(path),
                fix="use a new --out, or the same settings to resume",
            )
    _write_json(path, to_dict(cfg))


def prepare_data(cfg: AblationConfig, dataset: str, out: Path, progress: bool) -> Path:
    """The synthetic data set of one anatomy (made once; a finished one is reused)."""
    from mu2.data.synthetic.synth import MANIFEST, synthesize
    from mu2.data.synthetic.synth_config import make_config

    folder = out / "data" / dataset
    if (folder / MANIFEST).is_file():
        return folder
    synth_cfg = make_config(
        "tiny", "tiny", dataset, [f"holdout_combos={','.join(cfg.holdout_combos)}"]
    )
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


def _process_options(cfg: AblationConfig, output_dir: Path, seed: int) -> list[str]:
    """Where, with which seed and on how many CPU threads a stage runs (every stage)."""
    return [
        f"output_dir={output_dir}",
        f"seed={seed}",
        "device=cpu",
        f"num_threads={cfg.num_threads}" if cfg.num_threads else "num_threads=null",
    ]


def _run_options(cfg: AblationConfig, output_dir: Path, seed: int) -> list[str]:
    """The process options plus the Recipe stages' logging and checkpointing switches."""
    return _process_options(cfg, output_dir, seed) + [
        "tensorboard=false",
        "save_every=0",
        "eval_every=0",
        "num_sample_reports=0",
        "resume=none",
    ]


def train_clip(cfg: AblationConfig, data: Path, run_dir: Path, seed: int) -> Path:
    """Stage 0 once per data set and seed: the tower every preset of that seed loads."""
    from mu2.pretrain.clip import VISION_FILE
    from mu2.pretrain.config import ClipConfig
    from mu2.pretrain.recipe import run_clip

    vision = run_dir / FINAL / VISION_FILE
    if vision.is_file():
        return vision
    overrides = _run_options(cfg, run_dir, seed) + [
        f"max_steps={cfg.clip_steps}",
        f"batch_size={cfg.clip_batch_size}",
        f"model.clip_weight={cfg.clip_weight}",
        f"model.histogram_weight={cfg.clip_histogram_weight}",
        f"data.train={data / 'train.jsonl'}",
        f"data.val={data / 'val.jsonl'}",
        f"data.test={data / 'test.jsonl'}",
        f"data.prep={PREP}",
        "data.cache=disk",
        f"data.cache_dir={data / 'cache'}",
        f"probe.enabled={str(cfg.clip_probe).lower()}",
        "probe.baseline=false",
        f"probe.seed={seed}",
    ]
    with timed(run_dir / TIMING, "clip"):
        run_clip(load_config(ClipConfig, None, overrides))
    return vision


def train_lm(cfg: AblationConfig, data: Path, run_dir: Path, seed: int, preset: str,
             vision: Path) -> Path | None:  # fmt: skip
    """LM stage of one preset (``mu2 train lm``): the random-init tiny LLM learns to read
    the findings written in an image block of the preset's size; None when lm_steps is 0."""
    from mu2.train.aids.context_lm import run_lm_pretrain
    from mu2.train.config import LMConfig

    if cfg.lm_steps == 0:
        return None
    final = run_dir / "lm" / FINAL
    if (final / "config.json").is_file():
        return final
    overrides = _process_options(cfg, run_dir / "lm", seed) + [
        f"max_steps={cfg.lm_steps}", f"batch_size={cfg.lm_batch_size}", f"optim.lr={cfg.lm_lr}",
        f"fill={cfg.lm_fill}",
        f"model.preset={preset}", "model.size=tiny", f"model.vision_path={vision}",
        f"model.overrides={json.dumps(cfg.model_overrides)}",
        f"data.train={sft_rows(cfg, data, 'train')}",
    ]  # fmt: skip
    with timed(run_dir / TIMING, "lm"):
        return run_lm_pretrain(load_config(LMConfig, None, overrides))


def train_sft(cfg: AblationConfig, data: Path, run_dir: Path, seed: int, preset: str,
              vision: Path) -> Path:  # fmt: skip
    """SFT of one preset: the same budget, tower and data for every preset, from the
    preset's LM stage with the LLM frozen (or, with lm_steps=0, a random-init LLM)."""
    from mu2.train.config import SFTConfig
    from mu2.train.sft import run_sft

    final = run_dir / "sft" / FINAL
    if (final / "config.json").is_file():
        return final
    lm = train_lm(cfg, data, run_dir, seed, preset, vision)
    start = (
        [f"model.init_from={lm}", "model.vision_path=null",
         f"model.freeze_llm={str(cfg.freeze_llm).lower()}",
         f"code_weight={cfg.code_weight if cfg.lm_fill == 'code' else 0.0}",
         f"code_init_rows={cfg.code_init_rows}"]
        if lm is not None
        else [f"model.vision_path={vision}", f"model.overrides={json.dumps(cfg.model_overrides)}"]
    )  # fmt: skip
    overrides = (
        _run_options(cfg, run_dir / "sft", seed)
        + start
        + [
            f"max_steps={cfg.sft_steps}",
            f"batch_size={cfg.batch_size}",
            f"model.preset={preset}",
            "model.size=tiny",
            "model.freeze_vision=true",  # stage 0's tower, fixed (configs/sft/tiny.yaml)
            f"data.train={sft_rows(cfg, data, 'train')}",
            f"data.val={sft_rows(cfg, data, 'val')}",
            f"data.prep={PREP}",
            f"data.augment={str(cfg.augment).lower()}",
            f"cache_vision={str(not cfg.augment).lower()}",
            "data.cache=disk",
            f"data.cache_dir={data / 'cache'}",
            f"data.max_val_cases={cfg.max_val_cases}",
            f"optim.lr={cfg.lr}",
            f"optim.weight_decay={cfg.weight_decay}",
            f"optim.warmup_ratio={cfg.warmup_ratio}",
            f"optim.min_lr_ratio={cfg.min_lr_ratio}",
        ]
    )
    with timed(run_dir / TIMING, "sft"):
        run_sft(load_config(SFTConfig, None, overrides))
    return final


def train_dpo(cfg: AblationConfig, data: Path, run_dir: Path, seed: int,
              sft_model: Path) -> tuple[Path | None, str]:  # fmt: skip
    """Preference pairs from the mu2 SFT model, then DPO; (final folder or None, note)."""
    from mu2.train.config import DPOConfig, PrefsConfig
    from mu2.train.dpo import run_dpo
    from mu2.train.prefs import build_pairs

    final = run_dir / "dpo" / FINAL
    if (final / "config.json").is_file():
        return final, "trained"
    pairs = run_dir / "prefs" / "pairs.jsonl"
    prefs = PrefsConfig(
        model=str(sft_model), data=str(data / "train.jsonl"), out=str(pairs),
        n=cfg.prefs_samples, seed=seed, limit=cfg.prefs_rows, tasks=list(cfg.tasks),
        max_new_tokens=cfg.max_new_tokens, prep=PREP, device="cpu", num_threads=cfg.num_threads,
    )  # fmt: skip
    with timed(run_dir / TIMING, "prefs"):
        summary = build_pairs(prefs)
    n_pairs = len(pairs.read_text().splitlines()) if pairs.is_file() else 0
    note = summary.describe()
    if n_pairs == 0:
        return None, f"no DPO: no preference pairs ({note})"
    overrides = _run_options(cfg, run_dir / "dpo", seed) + [
        f"max_steps={cfg.dpo_steps}",
        f"batch_size={cfg.dpo_batch_size}",
        f"beta={cfg.dpo_beta}",
        f"model.sft_model={sft_model}",
        f"data.train={pairs}",
        f"data.prep={PREP}",
        f"data.augment={str(cfg.augment).lower()}",
        "data.cache=disk",
        f"data.cache_dir={data / 'cache'}",
        f"optim.lr={cfg.dpo_lr}",
    ]
    with timed(run_dir / TIMING, "dpo"):
        run_dpo(load_config(DPOConfig, None, overrides))
    return final, f"trained on {n_pairs} pairs ({note})"


def predict(cfg: AblationConfig, data: Path, run_dir: Path, model_dir: Path,
            progress: bool) -> list[tuple[str, Path]]:  # fmt: skip
    """Prediction files of the model for each split that has rows (made once)."""
    from mu2.model import Mu2ForConditionalGeneration

    todo = [s for s in SPLITS if split_rows(data / f"{s}.jsonl", cfg.tasks)]
    files = [(s, run_dir / "predictions" / f"{s}.jsonl") for s in todo]
    missing = [(s, p) for s, p in files if not p.is_file()]
    if missing:
        model = Mu2ForConditionalGeneration.from_pretrained(model_dir)
        for split, path in missing:
            with timed(run_dir / TIMING, f"predict_{split}"):
                rows = predict_split(
                    model, data / f"{split}.jsonl", prep=PREP, cache_dir=data / "cache",
                    tasks=cfg.tasks, batch_size=cfg.eval_batch_size,
                    max_new_tokens=cfg.max_new_tokens, progress=progress,
                )  # fmt: skip
            write_predictions(rows, path)
    return files


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
