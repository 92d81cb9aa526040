"""What `mu2 demo` runs: profiles as YAML data (``configs/demo/full.yaml``, ``fast.yaml``).

A profile names, for each training stage, the recipe YAML it runs (``sft: {recipe:
sft/tiny, set: [...]}``) and sets the demo's own knobs (case counts, evaluation, example
reports); the recipe hyper-parameters live in the recipe YAMLs only. The reasons for each
value are comments next to it in those files.

    mu2 demo                            # configs/demo/full.yaml
    mu2 demo --fast                     # configs/demo/fast.yaml (checks the code path)
    mu2 demo --set sft.max_steps=300    # appended to the sft stage's `set` list
    mu2 demo --set eval.bootstrap=200   # a demo knob, dotted
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mu2.config import apply_overrides, from_dict
from mu2.errors import Mu2Error
from mu2.recipes.profile import (
    OptionalStageSpec,
    StageSpec,
    add_stage_sets,
    build_recipe,
    load_profile,
    stage_overrides,
)
from mu2.recipes.runner import recipe_class

TRAINING_STAGES: tuple[str, ...] = ("clip", "lm", "sft", "prefs", "dpo")
# The demo's former short names of recipe keys, still accepted on the command line.
SHORT_KEYS = {"steps": "max_steps", "lr": "optim.lr"}


@dataclass(kw_only=True)
class DataSection:
    """The synthetic benchmark (`mu2 data synth`)."""

    n: int
    """Cases in all (train / val / test split by ``split``)."""
    seed: int = 0
    preset: str
    """Findings preset of ``mu2.data.synthetic.synth_config``."""
    size: str
    """Grid preset."""
    split: tuple[float, float, float]
    workers: int | None = None
    """Generator processes (None: all cores)."""
    save_labels: bool
    """Write the label maps too (SFT's grounding loss and the heat-map check read them)."""
    overrides: list[str] = field(default_factory=list)
    """``SynthConfig`` key=value overrides, e.g. prevalence=0.4."""


@dataclass(kw_only=True)
class EvalSection:
    """Reports for the test split, scored by ``mu2.metrics.evaluate``."""

    metrics: list[str]
    bootstrap: int
    """Resamples for the 95% intervals."""
    max_cases: int | None = None
    """Score at most this many test reports (None: all)."""
    batch_size: int
    """Reports generated per forward batch (greedy)."""
    max_new_tokens: int
    green_backend: str
    missing_java: Literal["error", "skip"]
    """What METEOR does without Java."""
    vqa: bool = False
    """Also answer the test split's VQA rows and score them by VQA accuracy per question
    type (``mu2.metrics.vqa``)."""


@dataclass(kw_only=True)
class ReportsSection:
    """Reports with heat maps, NIfTI and FHIR for a few test cases and the real CT sample."""

    cases: int
    real_ct: str = ""
    """The real CT to report on; empty = the sample shipped with the repository."""
    max_new_tokens: int


PROFILE_NAMES: tuple[str, ...] = ("full", "fast")


@dataclass(kw_only=True)
class DemoConfig:
    """The whole demo: data -> stage 0 -> LM -> SFT -> pairs -> DPO -> eval -> reports -> save."""

    profile: str
    model_name: str
    """Folder under ``$MU2_HOME/models`` the final model is saved to."""
    seed: int = 0
    device: Literal["auto", "cpu"] = "auto"
    num_threads: int | None = None
    """torch threads (None: torch's default, one per core)."""
    checkpoint_every: int
    """Training checkpoints every N steps (0: none)."""
    tensorboard: bool
    ablate_stage0: bool = False
    """Also train SFT without the stage-0 tower (same budget) and score it per finding."""
    data: DataSection
    clip: StageSpec
    lm: OptionalStageSpec
    """``enabled: false``: SFT builds a fresh model and trains the LLM too."""
    sft: StageSpec
    prefs: StageSpec
    dpo: StageSpec
    eval: EvalSection
    reports: ReportsSection

    def __post_init__(self) -> None:
        problems = []
        counts = {"data.n": self.data.n, "eval.batch_size": self.eval.batch_size}
        problems += [f"{k} must be >= 1, got {v}" for k, v in counts.items() if v < 1]
        if self.data.n < 10:
            problems.append(
                f"data.n must be >= 10 (train, val and test need cases), got {self.data.n}"
            )
        if self.reports.cases < 0:
            problems.append(f"reports.cases must be >= 0, got {self.reports.cases}")
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            problems.append(f"model_name must be a plain folder name, got {self.model_name!r}")
        if problems:
            raise Mu2Error("invalid demo config: " + "; ".join(problems))

    def stage(self, name: str) -> StageSpec:
        """The recipe and overrides of training stage ``name``."""
        spec: StageSpec = getattr(self, name)
        return spec


def check_recipes(cfg: DemoConfig) -> None:
    """Build every stage's recipe config once, so a bad key or value fails before any stage
    runs (the recipes validate their own values: steps >= 1, a pair needs n >= 2, ...)."""
    for name in TRAINING_STAGES:
        build_recipe(recipe_class(name), cfg.stage(name), where=name)


def profile_data(profile: str) -> dict[str, Any]:
    """The mapping of a shipped demo profile (``full``, ``fast``) or a profile YAML path."""
    if profile not in PROFILE_NAMES and not profile.endswith(".yaml"):
        raise Mu2Error(
            f"unknown demo profile '{profile}'", fix=f"use one of {', '.join(PROFILE_NAMES)}"
        )
    return load_profile(profile, "demo")


def make_demo_config(profile: str = "full", overrides: list[str] | None = None) -> DemoConfig:
    """A profile plus dotted ``key=value`` overrides: ``sft.max_steps=200`` (a recipe key of
    a stage, appended to its ``set`` list) or ``eval.bootstrap=200`` (a demo knob)."""
    rest, extra = stage_overrides(list(overrides or []), TRAINING_STAGES, SHORT_KEYS)
    data = add_stage_sets(apply_overrides(profile_data(profile), rest), extra)
    cfg = from_dict(DemoConfig, data, where="demo config")
    check_recipes(cfg)
    return cfg


def full_profile() -> DemoConfig:
    """The demo `make demo` runs (configs/demo/full.yaml)."""
    return make_demo_config("full")


def fast_profile() -> DemoConfig:
    """Every stage on a handful of cases and steps (configs/demo/fast.yaml)."""
    return make_demo_config("fast")
