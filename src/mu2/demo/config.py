"""What `mu2 demo` runs: one dataclass, two named profiles (``full`` and ``fast``).

Every size, step count and case count of the demo lives here, named, so a reader can see
what the 10-minute run (``full``) and the test-suite run (``fast``) do without reading
the pipeline. Each stage section also takes ``overrides``: ``key=value`` strings for the
stage's own recipe config (``ClipConfig``, ``SFTConfig``, ...), for anything not named.

    mu2 demo                       # full profile
    mu2 demo --fast                # fast profile (checks the code path, < 2 minutes)
    mu2 demo --set sft.steps=300   # any field, dotted
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mu2.config import apply_overrides, from_dict, to_dict
from mu2.errors import Mu2Error


@dataclass
class DataSection:
    """Stage 1: the synthetic benchmark (`mu2 data synth`)."""

    n: int = 600
    """Cases in all (train / val / test split by ``split``). 600 rather than 1000 keeps a
    fresh clone's `make demo` under 10 minutes on 2 cores (synthesis, preparation and the
    two test evaluations scale with it; the training steps do not). The reading of the
    image did not get worse with fewer cases: BENCHMARKS.md, demo."""
    seed: int = 0
    preset: str = "tiny"
    """Findings preset of ``mu2.data.synthetic.synth_config`` (tiny: large, learnable findings)."""
    size: str = "tiny"
    """Grid preset (tiny: 64 x 64 in-plane)."""
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    workers: int | None = None
    """Generator processes (None: all cores)."""
    save_labels: bool = True
    """Write the label maps too (``--save-labels``): SFT's grounding loss reads them, and so
    does the heat-map check (``mu2 diagnose heatmap-localisation``)."""
    overrides: list[str] = field(default_factory=list)
    """``SynthConfig`` key=value overrides, e.g. prevalence=0.4."""


@dataclass
class ClipSection:
    """Stage 0: contrastive image-report pretraining of the vision tower (+ findings head)."""

    steps: int = 240
    """240 of 16 (8 epochs of the 480 training cases) rather than 300: part of keeping a
    fresh clone's `make demo` under 10 minutes on 2 cores (BENCHMARKS.md, demo)."""
    batch_size: int = 16
    lr: float = 2e-3
    clip_weight: float = 0.2
    """InfoNCE weight: small, so the findings head and the histogram target carry the
    learning at this budget while the zero-shot probe stays meaningful."""
    histogram_weight: float = 1.0
    """Dense target: each patch token predicts its own voxels' intensity histogram. With it
    the tower's linear probe reads fatty liver, hepatomegaly and ascites at 0.92-1.00
    against 0.82-0.93 without (docs/experiments/2026-11-28-research-log.md)."""
    probe_train_cases: int = 200
    """Training cases the linear probe is fitted on (one forward pass each)."""
    probe_baseline: bool = True
    """Also probe a randomly initialised tower (what stage 0 buys)."""
    overrides: list[str] = field(default_factory=list)
    """``ClipConfig`` key=value overrides."""


@dataclass
class LMSection:
    """Text pretraining of the random-init tiny LLM with the findings written in its image
    block (``mu2.train.aids.context_lm``); SFT starts from it."""

    enabled: bool = True
    """False: SFT builds a fresh model and trains the LLM too (the baseline without the LM stage)."""
    steps: int = 240
    """With the findings code (fill=code) 240 steps of 32 read every kind at 0.98-1.00 from
    an exact code (docs/experiments/2026-11-28-research-log.md)."""
    batch_size: int = 32
    lr: float = 3e-3
    fill: str = "code"
    """How the findings fill the image block: code (the signed findings code that SFT then
    regresses the visual tokens onto, ``mu2.train.aids.findings_code``), repeat (the words
    tiled) or once."""
    overrides: list[str] = field(default_factory=list)
    """``LMConfig`` key=value overrides."""


@dataclass
class SFTSection:
    """Stage 1: supervised fine-tuning on the stage-0 tower, from the text-pretrained LLM."""

    steps: int = 400
    """400 of 8 (1.7 epochs of the 1,920 training rows): with the findings code every kind
    is read at >= 0.93 after 400 steps, and 500 cost 25 s more of the 10-minute budget
    (docs/experiments/2026-11-28-research-log.md)."""
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.05
    """Cosine floor as a fraction of lr."""
    code_weight: float = 1.0
    """Findings-code loss on the visual tokens (``SFTConfig.code_weight``); used when SFT
    starts from an LM stage (whose LLM reads that code), else 0."""
    code_init_rows: int = 256
    """Training rows for the least-squares warm start of the projector's output layer
    (``SFTConfig.code_init_rows``); with ``code_weight`` only."""
    ground_weight: float = 1.0
    """Grounding loss (``SFTConfig.ground_weight``, not in the paper): a report row with fluid
    puts part of its question-to-CT relevance on the fluid's patches, so the heat map points
    at the finding (voxel share in the top decile 0.30 against 0.10 by chance; without it
    0.10, BENCHMARKS.md, heat map). Needs ``data.save_labels``."""
    ground_target: float = 0.15
    """Share of a grounded row's relevance asked to lie on the fluid: 0.5 pulled so much of
    the tokens onto the fluid that fatty liver and splenomegaly fell to 0.83 / 0.70, and 0.25
    left fatty liver at 0.90 (0.95 with 0.15)."""
    augment: bool = False
    """Intensity augmentation of the frozen tower's input: a shift of 0.1 is 40 HU, as much
    as steatosis lowers the liver, so it blurs fatty liver for the alignment."""
    freeze_vision: bool = True
    """Keep the stage-0 tower fixed (training it end to end teaches only the template)."""
    freeze_llm: bool = True
    """Keep the text-pretrained LLM fixed: SFT aligns projector + tokenizer to it (LLaVA's
    stage 1). Training the tiny LLM too returns the abdominal findings to their prior within
    this budget (BENCHMARKS.md). Ignored (LLM trains) when ``lm.enabled`` is false."""
    overrides: list[str] = field(default_factory=list)
    """``SFTConfig`` key=value overrides (also used by the no-stage-0 ablation)."""


@dataclass
class PrefsSection:
    """GREEN-ranked preference pairs from the SFT model (offline rules judge)."""

    cases: int | None = 64
    """Training report rows to sample for (None: all of them; a number: the first N). 64
    keeps a fresh clone's `make demo` within its 10 minutes on 2 cores: every row (960)
    costs about 16 minutes of sampling at about 1 s a row."""
    samples: int = 4
    """Reports sampled per case (ref. code: 8)."""
    min_margin: float = 0.0
    """Least GREEN difference chosen - rejected for a pair to be kept."""
    tie_break: str = "errors"
    """Samples of equal GREEN ranked by significant error count (``none``: GREEN alone)."""
    temperature: float = 1.0
    top_p: float = 0.9
    max_new_tokens: int = 96
    green_backend: str = "rules"
    overrides: list[str] = field(default_factory=list)
    """``PrefsConfig`` key=value overrides."""


@dataclass
class DPOSection:
    """Stage 2: DPO on the pairs, policy and reference from the SFT model."""

    steps: int = 30
    batch_size: int = 8
    lr: float = 5e-5
    beta: float = 0.1
    overrides: list[str] = field(default_factory=list)
    """``DPOConfig`` key=value overrides."""


@dataclass
class EvalSection:
    """Reports for the test split, scored by ``mu2.metrics.evaluate``."""

    metrics: list[str] = field(
        default_factory=lambda: ["bleu", "rouge", "meteor", "bertscore", "green"]
    )
    bootstrap: int = 1000
    """Resamples for the 95% intervals."""
    max_cases: int | None = None
    """Score at most this many test reports (None: all)."""
    batch_size: int = 40
    """Reports generated per forward batch (greedy). 40 rather than 16: the same 120 test
    reports, about 2 s faster per evaluation."""
    max_new_tokens: int = 96
    green_backend: str = "rules"
    missing_java: Literal["error", "skip"] = "skip"
    """METEOR needs Java: skip it (with a note) rather than fail the demo."""


@dataclass
class ReportsSection:
    """Reports with heat maps, NIfTI and FHIR for a few test cases and the real CT sample."""

    cases: int = 3
    real_ct: str = ""
    """The real CT to report on; empty = the sample shipped with the repository (skipped,
    with a note, when the package is installed without it)."""
    max_new_tokens: int = 96


PROFILE_NAMES: tuple[str, ...] = ("full", "fast")


@dataclass
class DemoConfig:
    """The whole demo: data -> stage 0 -> LM -> SFT -> pairs -> DPO -> eval -> reports -> save."""

    profile: str = "full"
    model_name: str = "demo"
    """Folder under ``$MU2_HOME/models`` the final model is saved to (``mu2 report``
    loads ``demo`` by default)."""
    seed: int = 0
    device: Literal["auto", "cpu"] = "auto"
    num_threads: int | None = None
    """torch threads (None: torch's default, one per core)."""
    prep: str = "tiny"
    """Volume preparation preset of ``mu2.preprocess.prep_config`` for every stage."""
    checkpoint_every: int = 100
    """Training checkpoints every N steps (an interrupted demo resumes from them; 0: none)."""
    tensorboard: bool = True
    ablate_stage0: bool = False
    """Also train SFT without the stage-0 tower (same budget) and score it per finding."""
    data: DataSection = field(default_factory=DataSection)
    clip: ClipSection = field(default_factory=ClipSection)
    lm: LMSection = field(default_factory=LMSection)
    sft: SFTSection = field(default_factory=SFTSection)
    prefs: PrefsSection = field(default_factory=PrefsSection)
    dpo: DPOSection = field(default_factory=DPOSection)
    eval: EvalSection = field(default_factory=EvalSection)
    reports: ReportsSection = field(default_factory=ReportsSection)

    def __post_init__(self) -> None:
        problems = []
        counts = {
            "data.n": self.data.n,
            "clip.steps": self.clip.steps,
            "clip.batch_size": self.clip.batch_size,
            "lm.steps": self.lm.steps,
            "lm.batch_size": self.lm.batch_size,
            "sft.steps": self.sft.steps,
            "sft.batch_size": self.sft.batch_size,
            "prefs.cases": 1 if self.prefs.cases is None else self.prefs.cases,
            "dpo.steps": self.dpo.steps,
            "dpo.batch_size": self.dpo.batch_size,
            "eval.batch_size": self.eval.batch_size,
        }
        problems += [f"{k} must be >= 1, got {v}" for k, v in counts.items() if v < 1]
        if self.data.n < 10:
            problems.append(
                f"data.n must be >= 10 (train, val and test need cases), got {self.data.n}"
            )
        if self.clip.batch_size < 2:
            problems.append("clip.batch_size must be >= 2 (InfoNCE needs negatives)")
        if self.prefs.samples < 2:
            problems.append(f"prefs.samples must be >= 2 to form a pair, got {self.prefs.samples}")
        if self.reports.cases < 0:
            problems.append(f"reports.cases must be >= 0, got {self.reports.cases}")
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            problems.append(f"model_name must be a plain folder name, got {self.model_name!r}")
        if problems:
            raise Mu2Error("invalid demo config: " + "; ".join(problems))


def full_profile() -> DemoConfig:
    """The demo `make demo` runs: 2 CPU cores, under 10 minutes (BENCHMARKS.md, demo)."""
    return DemoConfig()


def fast_profile() -> DemoConfig:
    """Every stage on a handful of cases and steps: checks the code path (< 2 minutes)."""
    return DemoConfig(
        profile="fast",
        model_name="demo-fast",
        num_threads=1,
        tensorboard=False,
        checkpoint_every=0,
        data=DataSection(n=24, workers=1),
        clip=ClipSection(steps=3, batch_size=4, probe_train_cases=8, probe_baseline=False),
        # Enough LM steps for the model to write words, so GREEN ranks samples and DPO has
        # pairs (SFT keeps the LLM fixed).
        lm=LMSection(steps=40, batch_size=8),
        sft=SFTSection(steps=4, batch_size=4, lr=3e-3),
        prefs=PrefsSection(cases=6, samples=4, max_new_tokens=24),
        dpo=DPOSection(steps=1, batch_size=2),
        eval=EvalSection(bootstrap=20, max_cases=6, max_new_tokens=48, batch_size=6),
        reports=ReportsSection(cases=1, max_new_tokens=24),
    )


PROFILES = {"full": full_profile, "fast": fast_profile}


def make_demo_config(profile: str = "full", overrides: list[str] | None = None) -> DemoConfig:
    """A profile plus dotted ``key=value`` overrides (``sft.steps=200``)."""
    if profile not in PROFILES:
        raise Mu2Error(f"unknown demo profile '{profile}'", fix=f"use one of {', '.join(PROFILES)}")
    data: dict[str, Any] = to_dict(PROFILES[profile]())
    data = apply_overrides(data, list(overrides or []))
    return from_dict(DemoConfig, data, where="demo config")
