"""Config of ``mu2 bench ablation``: which rows, data sets and seeds, and the one budget.

The values live in ``configs/bench/ablation.yaml`` (``--quick``: ``ablation-quick.yaml``,
which starts from it; ``--profile paper``: ``ablation-paper.yaml``, the paper's recipe
without the findings-code aid, and its ``ablation-paper-quick.yaml``): each training stage
names its recipe YAML (``configs/sft/tiny.yaml``, ...) and the benchmark's ``key=value``
changes to it, so every preset gets the same budget from one place. This module holds the
schema and its checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from mu2.config import apply_overrides, from_dict, to_dict
from mu2.errors import Mu2Error
from mu2.metrics.harness import ALL_METRICS
from mu2.recipes.profile import (
    OptionalStageSpec,
    StageSpec,
    add_stage_sets,
    build_recipe,
    load_profile,
    merge_profiles,
    stage_overrides,
)
from mu2.recipes.runner import recipe_class
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
TRAINING_STAGES: tuple[str, ...] = ("clip", "lm", "sft", "prefs", "dpo")
PROFILE, QUICK_PROFILE = "ablation", "ablation-quick"
QUICK_SUFFIX = "-quick"  # a shipped profile's quick variant: <profile>-quick.yaml

# Knobs besides the recipes that decide what a finished step computed: a resumed run must
# match them and every stage's resolved recipe config (:meth:`AblationConfig.budget`).
BUDGET_FIELDS: tuple[str, ...] = (
    "cases", "data_seed", "holdout_combos", "train_tasks", "max_new_tokens", "model_overrides",
    "tasks",
)  # fmt: skip


@dataclass
class AblationConfig:
    """Rows x data sets x seeds, trained with one budget and scored with one evaluation.

    Build it with :func:`make_ablation_config` (the profile YAML): the stage defaults here
    are the bare recipes, without the benchmark's changes to them."""

    out: str = "runs/bench-ablation"
    """Output folder; a run that stopped part-way resumes from what is there."""
    presets: list[str] = field(default_factory=lambda: list(ALL_PRESETS))
    seeds: int = 3
    first_seed: int = 0
    """Seeds first_seed .. first_seed + seeds - 1 (model init, data order, augmentation)."""
    data: Literal["procedural", "real", "both"] = "both"

    # --- data ------------------------------------------------------------------------
    cases: int = 300
    """Synthetic cases per data set (train / val / test 0.8 / 0.1 / 0.1 of the rest)."""
    data_seed: int = 0
    """One data set per anatomy for all seeds: seeds vary the models, not the test set."""
    holdout_combos: list[str] = field(default_factory=list)
    """Finding pairs never seen together in training (test_generalisation split)."""
    workers: int | None = None
    """Processes for data synthesis (None: all cores)."""
    synth: list[str] = field(default_factory=list)
    """``key=value`` overrides of the synthetic data config (``mu2 data synth``'s, e.g.
    ``vqa_types=[presence,side]``), after ``holdout_combos``; empty: the tiny preset."""

    # --- training stages: recipe YAML + the benchmark's overrides -----------------------
    clip: StageSpec = field(default_factory=lambda: StageSpec("clip/tiny"))
    """Stage 0, once per data set and seed."""
    lm: OptionalStageSpec = field(default_factory=lambda: OptionalStageSpec("lm/tiny"))
    """One LM stage per preset; ``enabled: false``: SFT trains the random-init LLM."""
    sft: StageSpec = field(default_factory=lambda: StageSpec("sft/tiny"))
    prefs: StageSpec = field(default_factory=lambda: StageSpec("prefs/tiny"))
    """Preference pairs of the mu2 + DPO row."""
    dpo: OptionalStageSpec = field(default_factory=lambda: OptionalStageSpec("dpo/tiny"))
    """``enabled``: add the mu2 + DPO row (needs mu2 in presets)."""
    train_tasks: list[str] = field(default_factory=list)
    """Row tasks SFT and the LM stage train on ([] = every row)."""
    model_overrides: dict = field(default_factory=dict)
    """TokenizerConfig fields for every preset alike (empty: the tiny builder sizes)."""

    # --- evaluation --------------------------------------------------------------------
    tasks: list[str] = field(default_factory=lambda: ["report"])
    """Row tasks scored (and paired for DPO)."""
    metrics: list[str] = field(default_factory=lambda: list(ALL_METRICS))
    max_new_tokens: int = 96
    """Greedy decoding cap of the scored reports and of the preference samples."""
    eval_batch_size: int = 64
    question_dependence_scans: int = 24
    """Test scans per trained model for the question-dependence columns (heat-map r of
    the chest and abdomen questions, heat share in the asked region); 0: not measured."""
    num_threads: int | None = 1
    """torch threads of every stage."""
    quick: bool = False
    """Recorded only: whether the quick profile was used."""
    profile: str = PROFILE
    """Recorded only: the profile the config started from (the recipe the tables show)."""

    def __post_init__(self) -> None:
        problems = []
        unknown = [p for p in self.presets if p not in PRESETS]
        if unknown:
            problems.append(f"unknown preset(s) {unknown} (known: {', '.join(PRESETS)})")
        if not self.presets:
            problems.append("no presets given")
        if self.dpo.enabled and "mu2" not in self.presets:
            problems.append("the mu2+dpo row starts from the mu2 SFT model: add mu2 to presets")
        if len(set(self.presets)) != len(self.presets):
            problems.append(f"presets listed twice: {self.presets}")
        bad_metrics = [m for m in self.metrics if m not in ALL_METRICS]
        if bad_metrics or not self.metrics:
            problems.append(f"metrics must be some of {','.join(ALL_METRICS)}, got {self.metrics}")
        if not self.tasks:
            problems.append("tasks must name the row tasks to score, e.g. [report, vqa]")
        if self.question_dependence_scans < 0:
            n = self.question_dependence_scans
            problems.append(f"question_dependence_scans must be >= 0, got {n}")
        for name in ("seeds", "cases", "max_new_tokens", "eval_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
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
        return ordered + ([DPO_ROW] if self.dpo.enabled else [])

    def synth_overrides(self) -> list[str]:
        """``key=value`` overrides of the tiny synthetic data config (``mu2 data synth``)."""
        return [f"holdout_combos={','.join(self.holdout_combos)}", *self.synth]

    def stage(self, name: str) -> StageSpec:
        """The recipe and overrides of training stage ``name``."""
        spec: StageSpec = getattr(self, name)
        return spec

    def recipe(self, name: str) -> dict[str, Any]:
        """Stage ``name``'s recipe config before the runner's wiring (validated)."""
        return to_dict(build_recipe(recipe_class(name), self.stage(name), where=name))

    def budget(self) -> dict[str, Any]:
        """Flat ``key -> value`` of what a finished step computed with: the budget knobs,
        which optional stages run, and every stage's resolved recipe config."""
        out: dict[str, Any] = {name: getattr(self, name) for name in BUDGET_FIELDS}
        if self.synth:  # absent when empty: runs made before the field keep their budget
            out["synth"] = list(self.synth)
        out.update({"lm.enabled": self.lm.enabled, "dpo.enabled": self.dpo.enabled})
        for stage in TRAINING_STAGES:
            out.update(_flat(self.recipe(stage), f"{stage}."))
        return out


NO_DEFAULT = object()  # a budget key with no recipe field default (see recipe_default)


def recipe_default(key: str) -> Any:
    """The dataclass default of a stage recipe key of :meth:`AblationConfig.budget`
    (``sft.code_sides`` -> ``SFTConfig.code_sides``'s default), ``NO_DEFAULT`` otherwise.
    A resumed run accepts a key its stored budget lacks when it holds this default: a
    recipe field added since, left at its default, computes what the finished steps did."""
    stage, _, rest = key.partition(".")
    if stage not in TRAINING_STAGES or not rest:
        return NO_DEFAULT
    node: Any = recipe_class(stage)
    for part in rest.split("."):
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        f = fields.get(part)
        if f is None:
            return NO_DEFAULT
        if f.default is not dataclasses.MISSING:
            node = f.default
        elif f.default_factory is not dataclasses.MISSING:
            node = f.default_factory()
        else:
            return NO_DEFAULT
    return node


def _flat(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and key != "overrides":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def profile_name(profile: str | None, quick: bool) -> str:
    """The profile to load: a shipped name (``paper`` = ``ablation-paper``; ``--quick``
    adds ``-quick``) or a YAML path (taken as it is; ``--quick`` is then refused)."""
    name = str(profile or PROFILE)
    if "/" in name or name.endswith(".yaml"):
        if quick:
            raise Mu2Error(
                f"--quick picks the quick variant of a shipped profile, not of {name}",
                path=name, fix="drop --quick, or pass the quick YAML itself",
            )  # fmt: skip
        return name
    if name != PROFILE and not name.startswith(f"{PROFILE}-"):
        name = f"{PROFILE}-{name}"  # paper -> ablation-paper
    return f"{name}{QUICK_SUFFIX}" if quick and not name.endswith(QUICK_SUFFIX) else name


def make_ablation_config(
    quick: bool = False,
    data: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    where: str = "bench ablation",
    profile: str | None = None,
) -> AblationConfig:
    """configs/bench/ablation.yaml (or ``profile``; quick: its -quick variant) <- ``data``
    (a mapping of fields, e.g. a user's YAML and the command's flags) <- ``key=value``
    overrides, where ``<stage>.<recipe key>=v`` is appended to that stage's ``set`` list."""
    name = profile_name(profile, quick)
    base = {**load_profile(name, "bench"), "profile": name}
    merged = merge_profiles(base, data or {})
    rest, extra = stage_overrides(list(overrides or []), TRAINING_STAGES)
    merged = add_stage_sets(apply_overrides(merged, rest), extra)
    cfg = from_dict(AblationConfig, merged, where=where)
    cfg.budget()  # every stage's recipe builds: a bad key fails here, before any training
    from mu2.data.synthetic.synth_config import make_config

    make_config("tiny", "tiny", DATASETS[0], cfg.synth_overrides())  # so does a bad synth item
    return cfg


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(AblationConfig)]
