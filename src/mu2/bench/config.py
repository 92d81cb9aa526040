"""Config of ``mu2 bench ablation``: which rows, data sets and seeds, and the one budget.

Every preset gets the same budget: the same synthetic data, the same stage-0 vision tower
(one per data set and seed), the same tiny LLM shape, the same LM-stage and SFT steps,
batch, learning rate and schedule. The defaults are the embedded default's recipe
(``mu2 demo``): stage 0 (InfoNCE 0.2 + findings head + histogram), the LM stage
(``mu2 train lm``: the findings code in the image block, 240 steps of 32), then SFT of
projector + tokenizer with the tower and the text-pretrained LLM frozen (400 steps of 8,
every row, findings-code loss and least-squares start), DPO as in ``configs/dpo/tiny.yaml``.
``lm_steps=0`` gives the older recipe (SFT trains the random-init LLM too); ``lm_fill=repeat``
the findings-as-words recipe (findings as words, next-token loss only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from mu2.errors import Mu2Error
from mu2.metrics.harness import ALL_METRICS
from mu2.tokenizer import PRESETS

# Scored splits and the per-run status file of a benchmark folder (runner and tables).
SPLITS: tuple[str, ...] = ("test", "test_generalisation")
STATUS = "status.json"

# The paper's rows: Table 1's M3D (spatial pooling) and perceiver-style baselines, then
# Table 2's ablation from LinVT to the full mu2 tokenizer.
ALL_PRESETS: tuple[str, ...] = (
    "spp",
    "perceiver",
    "linvt",
    "linvt+rpe",
    "linvt+dts",
    "linvt+dmtp",
    "mu2",
)
DPO_ROW = "mu2+dpo"
"""The mu2 SFT model after preference pairs and DPO (Table 2's last row)."""
DATASETS: tuple[str, ...] = ("procedural", "real")
"""Anatomy of the synthetic benchmark: drawn phantoms, or lesions drawn in the real CT."""
QUICK_PRESETS: tuple[str, ...] = ("linvt", "mu2")

# --quick: 1 seed, a handful of cases and steps, a smaller tokenizer. For tests and for a
# first look; its numbers mean nothing.
QUICK: dict[str, Any] = {
    "seeds": 1,
    "cases": 16,
    "clip_steps": 2,
    "clip_probe": False,
    "clip_batch_size": 4,
    "lm_steps": 2,
    "lm_batch_size": 4,
    "code_init_rows": 8,
    "sft_steps": 2,
    "batch_size": 4,
    "prefs_rows": 2,
    "prefs_samples": 2,
    "dpo_steps": 1,
    "dpo_batch_size": 2,
    "max_new_tokens": 12,
    "max_val_cases": 4,
    "model_overrides": {"num_selected": 16, "num_queries": 8, "svr_layers": 1, "tta_layers": 1},
}

# Fields that decide what a finished step computed: a resumed run must match them.
BUDGET_FIELDS: tuple[str, ...] = (
    "cases", "data_seed", "holdout_combos", "clip_steps", "clip_batch_size", "clip_weight",
    "clip_histogram_weight", "lm_steps", "lm_batch_size", "lm_lr", "lm_fill", "code_weight",
    "code_init_rows", "freeze_llm", "sft_steps", "batch_size", "lr",
    "weight_decay", "warmup_ratio", "min_lr_ratio", "augment", "train_tasks", "prefs_rows", "prefs_samples",
    "dpo_steps", "dpo_batch_size", "dpo_lr", "dpo_beta", "max_new_tokens", "model_overrides",
    "tasks",
)  # fmt: skip


@dataclass
class AblationConfig:
    """Rows x data sets x seeds, trained with one budget and scored with one evaluation."""

    out: str = "runs/bench-ablation"
    """Output folder; a run that stopped part-way resumes from what is there."""
    presets: list[str] = field(default_factory=lambda: list(ALL_PRESETS))
    seeds: int = 3
    first_seed: int = 0
    """Seeds first_seed .. first_seed + seeds - 1 (model init, data order, augmentation)."""
    dpo: bool = True
    """Add the mu2 + DPO row (needs mu2 in presets)."""
    data: Literal["procedural", "real", "both"] = "both"

    # --- data ------------------------------------------------------------------------
    cases: int = 300
    """Synthetic cases per data set (train / val / test 0.8 / 0.1 / 0.1 of the rest)."""
    data_seed: int = 0
    """One data set per anatomy for all seeds: seeds vary the models, not the test set."""
    holdout_combos: list[str] = field(default_factory=lambda: ["splenomegaly+pleural_effusion"])
    """Finding pairs never seen together in training (test_generalisation split); this
    pair exists in both anatomies (the real CT sample has no spleen enlargement etc.)."""
    workers: int | None = None
    """Processes for data synthesis (None: all cores)."""

    # --- stage 0 -----------------------------------------------------------------------
    clip_steps: int = 240
    """Stage-0 steps (configs/clip/tiny.yaml: 240)."""
    clip_batch_size: int = 16
    clip_weight: float = 0.2
    """InfoNCE weight (configs/clip/tiny.yaml)."""
    clip_histogram_weight: float = 1.0
    """Per-patch intensity-histogram target (configs/clip/tiny.yaml)."""
    clip_probe: bool = True
    """Zero-shot and linear-probe accuracy of each stage-0 tower (what SFT starts from)."""

    # --- LM stage (configs/lm/tiny.yaml): the same for every preset -------------------
    lm_steps: int = 240
    """Text pretraining steps of the random-init tiny LLM, one LM stage per preset (its image
    block has the preset's number of visual tokens); 0: no LM stage, SFT trains the LLM."""
    lm_batch_size: int = 32
    lm_lr: float = 3e-3
    lm_fill: str = "code"
    """What the LM stage writes in the image block (configs/lm/tiny.yaml: the findings code)."""

    # --- SFT (configs/sft/tiny.yaml): the same for every preset -----------------------
    sft_steps: int = 400
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.05
    augment: bool = False
    """Intensity augmentation in SFT and DPO (configs/sft/tiny.yaml: off, so the frozen
    tower's outputs are cached)."""
    code_weight: float = 1.0
    """Findings-code loss on the visual tokens, with an LM stage (configs/sft/tiny.yaml)."""
    code_init_rows: int = 256
    """Least-squares warm start of the projector's output layer (configs/sft/tiny.yaml)."""
    freeze_llm: bool = True
    """Keep the LM-stage LLM fixed in SFT (the demo recipe); ignored when lm_steps is 0."""
    train_tasks: list[str] = field(default_factory=list)
    """Row tasks SFT and the LM stage train on ([] = every row, as the demo does). Without
    the LM stage, ["report"] is better: at a CPU budget the yes/no rows pull a random-init
    LLM to answering "No." to every question."""
    max_val_cases: int = 32
    model_overrides: dict = field(default_factory=dict)
    """TokenizerConfig fields for every preset alike (empty: the tiny builder sizes)."""

    # --- DPO (mu2 + DPO row) -----------------------------------------------------------
    prefs_rows: int = 64
    """Training report rows sampled for preference pairs."""
    prefs_samples: int = 8
    """Reports sampled per row (ref. code: 8, temperature 1.0, top-p 0.9)."""
    dpo_steps: int = 40
    dpo_batch_size: int = 8
    dpo_lr: float = 5e-5
    dpo_beta: float = 0.1

    # --- evaluation --------------------------------------------------------------------
    tasks: list[str] = field(default_factory=lambda: ["report"])
    """Row tasks scored (the paper scores report generation, not yes/no answers)."""
    metrics: list[str] = field(default_factory=lambda: list(ALL_METRICS))
    max_new_tokens: int = 96
    """Greedy decoding cap (the SFT default); the longest tiny reference is 70 tokens."""
    eval_batch_size: int = 64
    num_threads: int | None = 1
    """torch threads (1: on a shared 2-core machine more threads only wait on each other)."""
    quick: bool = False
    """Recorded only: whether the QUICK values were applied."""

    def __post_init__(self) -> None:
        problems = []
        unknown = [p for p in self.presets if p not in PRESETS]
        if unknown:
            problems.append(f"unknown preset(s) {unknown} (known: {', '.join(PRESETS)})")
        if not self.presets:
            problems.append("no presets given")
        if self.dpo and "mu2" not in self.presets:
            problems.append("the mu2+dpo row starts from the mu2 SFT model: add mu2 to presets")
        if len(set(self.presets)) != len(self.presets):
            problems.append(f"presets listed twice: {self.presets}")
        bad_metrics = [m for m in self.metrics if m not in ALL_METRICS]
        if bad_metrics or not self.metrics:
            problems.append(f"metrics must be some of {','.join(ALL_METRICS)}, got {self.metrics}")
        for name in ("seeds", "cases", "clip_steps", "sft_steps", "batch_size", "prefs_rows",
                     "dpo_steps", "dpo_batch_size", "max_new_tokens", "eval_batch_size",
                     "lm_batch_size", "clip_batch_size"):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lm_steps < 0:
            problems.append(f"lm_steps must be >= 0 (0: no LM stage), got {self.lm_steps}")
        if self.prefs_samples < 2:
            problems.append(f"prefs_samples must be >= 2 to form a pair, got {self.prefs_samples}")
        if self.cases < 10:
            problems.append(f"cases must be >= 10 so that every split has cases, got {self.cases}")
        if problems:
            raise Mu2Error("invalid ablation config: " + "; ".join(problems))

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    @property
    def datasets(self) -> list[str]:
        return list(DATASETS) if self.data == "both" else [self.data]

    @property
    def rows(self) -> list[str]:
        """Table rows in the paper's order: the presets, then mu2 + DPO."""
        ordered = [p for p in ALL_PRESETS if p in self.presets]
        ordered += [p for p in self.presets if p not in ALL_PRESETS]
        return ordered + ([DPO_ROW] if self.dpo else [])

    def budget(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BUDGET_FIELDS}


def quick_values(explicit: set[str]) -> dict[str, Any]:
    """QUICK values for the fields the user did not set (plus the two-preset default)."""
    values = {k: v for k, v in QUICK.items() if k not in explicit}
    if "presets" not in explicit:
        values["presets"] = list(QUICK_PRESETS)
    values["quick"] = True
    return values


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(AblationConfig)]
