"""Configs of the training recipes (SFT, DPO) and of preference-pair building.

Dataclasses loaded from YAML plus ``key=value`` overrides by :func:`mu2.config.load_config`
(``configs/sft/*.yaml``, ``configs/dpo/*.yaml``). Defaults are the tiny CPU run; the
paper's values (ref. code: lr 4e-6, 4 epochs, batch 1 per GPU, max length 1024, bf16,
10% warm-up then cosine) live in ``configs/*/paper.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mu2.engine.config import OptimOptions, RunOptions


@dataclass
class LoraOptions:
    """PEFT LoRA on the language model (in DPO the reference is then the policy with its
    adapters off, so no second model is held in memory)."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
    )
    """Module names inside the LLM that get adapters."""

    def __post_init__(self) -> None:
        if self.enabled and (self.r < 1 or self.alpha < 1):
            raise ValueError(f"lora.r and lora.alpha must be >= 1, got {self.r}, {self.alpha}")


@dataclass
class ModelOptions:
    """Which model to build (SFT) and which parts train."""

    size: Literal["tiny", "paper"] = "tiny"
    preset: str = "mu2"
    """Model preset of ``mu2.model.build`` (mu2, or an ablation such as linvt)."""
    init_from: str | None = None
    """A saved mu2 model folder to start from instead of building a fresh one."""
    llm_path: str | None = None
    """Local Hugging Face folder of the LLM (paper: Llama-3.2-1B-Instruct); None: random init."""
    vision_path: str | None = None
    """Vision tower weights (paper: M3D-CLIP pretrained_ViT.bin; tiny: stage-0 output)."""
    freeze_vision: bool = False
    freeze_projector: bool = False
    freeze_tokenizer: bool = False
    """Freeze the mu^2 tokenizer (SVR, DTS, DMTP, TTA)."""
    freeze_llm: bool = False
    lora: LoraOptions = field(default_factory=LoraOptions)
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Precision of the LLM's frozen base weights (``mu2.train.precision``): bfloat16 with
    LoRA or a frozen LLM halves their memory; None keeps fp32 (the paper)."""
    gradient_checkpointing: bool = False
    max_length: int = 256
    """Maximum text length in tokens (question + report; visual tokens not counted)."""
    overrides: dict = field(default_factory=dict)
    """Extra keyword arguments for ``mu2.model.build`` (e.g. ``{dropout: 0.0}``)."""


@dataclass
class DataOptions:
    train: str = "runs/synth/train.jsonl"
    val: str | None = "runs/synth/val.jsonl"
    prep: str = "tiny"
    """Volume preparation preset of ``mu2.preprocess.prep_config`` (tiny | paper)."""
    augment: bool = True
    cache: Literal["memory", "disk", "none"] = "memory"
    cache_dir: str | None = None
    cache_dtype: Literal["float16", "float32"] = "float16"
    """Storage type of cached prepared frames (float16 halves memory)."""
    num_workers: int = 0
    max_val_cases: int = 64
    """Validation loss uses at most this many val cases."""
    limit: int | None = None
    """Use only the first N training rows (quick runs)."""


LOSS_REDUCTIONS: tuple[str, ...] = ("token", "row")
CODE_SCOPES: tuple[str, ...] = ("case", "region")
"""What a row's findings code covers (``mu2.train.aids.findings_code``): the whole scan, or
only the finding kinds of the row's region."""
CODE_BASES: tuple[str, ...] = ("random", "orthogonal")
"""The code's term directions (``mu2.train.aids.findings_code.kind_direction``): random unit
vectors per term, or the columns of one fixed orthonormal basis (no term leaks into another)."""


@dataclass
class SFTConfig(RunOptions):
    """Stage 1: next-token loss on the report tokens only."""

    model: ModelOptions = field(default_factory=ModelOptions)
    data: DataOptions = field(default_factory=DataOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    loss_reduction: str = "token"
    """How the next-token loss of a batch is averaged: "token" (every answer token weighs
    the same, as LLaVA / HF do) or "row" (each row's mean first, so a one-word VQA answer
    weighs as much as a 60-token report; at tiny scale the image-dependent words are a
    few per cent of the tokens and "token" lets the template drown them)."""
    code_weight: float = 0.0
    """Weight of the findings-code loss: the mean squared distance of every visual token to
    the row's findings code (``mu2.train.aids.findings_code``, which an LM stage with
    ``fill=code`` taught the LLM to read), relative to the code's mean square. It
    aligns the projector and tokenizer to the LLM directly rather than only through the
    next-token loss. Needs rows with structured findings; 0 turns it off."""
    code_init_rows: int = 0
    """With ``code_weight`` > 0 (ignored otherwise): before training, fit the projector's
    output layer by ridge regression so that the mean visual token of each case is its
    findings code (``mu2.train.aids.code_init``), over this many training rows; 0: off."""
    code_scope: str = "case"
    """With ``code_weight`` > 0: what a row's code covers, ``case`` (every kind of the scan,
    the same code for every row of a case) or ``region`` (only the kinds of the row's region,
    so a chest and an abdomen question of one scan ask for different visual tokens). Use
    the LM stage's ``code_scope``: the LLM reads the code it was taught. Not in the paper."""
    code_sides: bool = False
    """With ``code_weight`` > 0: add a left and a right term per lateral kind to the code, so
    the visual tokens say on which side a finding is (``mu2.train.aids.findings_code``). Use
    the LM stage's ``code_sides``. Not in the paper."""
    code_basis: str = "random"
    """With ``code_weight`` > 0: the directions of the code's terms, ``random`` or
    ``orthogonal`` (``mu2.train.aids.findings_code``). Use the LM stage's ``code_basis``."""
    cache_vision: bool = False
    """Run the frozen vision tower once per volume and reuse its output (``TowerCache``).
    Needs ``model.freeze_vision`` and ``data.augment=false`` (the output must not change
    between draws)."""
    ground_weight: float = 0.0
    """Weight of the grounding loss (``mu2.train.aids.grounding``): a report row with fluid or a
    focal lesion should put at least ``ground_target`` of its question-to-CT relevance on
    those voxels. Needs label maps (``mu2 data synth --save-labels``) and a μ² / LinVT
    tokenizer (the ones with relevance); not in the paper; 0 turns it off."""
    ground_target: float = 0.5
    """Share of a grounded row's relevance that should lie on its finding's patches."""
    ground_min_share: float = 0.25
    """A ViT patch is on the finding when at least this share of its voxels carry the label."""

    def __post_init__(self) -> None:
        problems = self._check_run()
        if self.cache_vision and (not self.model.freeze_vision or self.data.augment):
            problems.append("cache_vision needs model.freeze_vision=true and data.augment=false")
        if self.code_init_rows < 0:
            problems.append(f"code_init_rows must be >= 0, got {self.code_init_rows}")
        if self.code_weight < 0:
            problems.append(f"code_weight must be >= 0, got {self.code_weight}")
        if self.code_scope not in CODE_SCOPES:
            problems.append(f"code_scope={self.code_scope!r} (choose one of {list(CODE_SCOPES)})")
        if self.code_basis not in CODE_BASES:
            problems.append(f"code_basis={self.code_basis!r} (choose one of {list(CODE_BASES)})")
        if self.ground_weight < 0:
            problems.append(f"ground_weight must be >= 0, got {self.ground_weight}")
        if not 0 < self.ground_target <= 1:
            problems.append(f"ground_target must be in (0, 1], got {self.ground_target}")
        if not 0 < self.ground_min_share <= 1:
            problems.append(f"ground_min_share must be in (0, 1], got {self.ground_min_share}")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            problems.append(
                f"loss_reduction is {self.loss_reduction!r}; use {' or '.join(LOSS_REDUCTIONS)}"
            )
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class DPOModelOptions:
    sft_model: str = "runs/sft-tiny/final"
    """Saved SFT model folder: the policy starts from it and the frozen reference is it."""
    lora: LoraOptions = field(default_factory=LoraOptions)
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """Precision of the LLM's frozen base weights (``mu2.train.precision``): bfloat16 with
    LoRA or a frozen LLM halves their memory; None keeps fp32 (the paper)."""
    gradient_checkpointing: bool = False
    max_length: int = 256
    disable_dropout: bool = True
    """Turn off dropout in the policy (as TRL does) so policy and reference log-probs
    differ only by the weights."""
    freeze_vision: bool = True
    """Keep the vision tower fixed during DPO (preferences are about the text)."""
    freeze_llm: bool = False
    """Keep the LLM fixed too, so DPO moves only the projector and the tokenizer (for an SFT
    model aligned to a frozen text-pretrained tiny LLM, ``configs/sft/tiny.yaml``)."""


@dataclass
class DPODataOptions:
    train: str = "runs/prefs/pairs.jsonl"
    val: str | None = None
    prep: str = "tiny"
    augment: bool = True
    cache: Literal["memory", "disk", "none"] = "memory"
    cache_dir: str | None = None
    cache_dtype: Literal["float16", "float32"] = "float16"
    num_workers: int = 0
    max_val_cases: int = 64
    limit: int | None = None


@dataclass
class DPOConfig(RunOptions):
    """Stage 2: DPO on GREEN-ranked (chosen, rejected) pairs."""

    output_dir: str = "runs/dpo-tiny"
    beta: float = 0.1
    """DPO temperature (paper range 0.1-0.5)."""
    rpo_alpha: float = 0.0
    """Weight of an NLL term on the chosen report (RPO); 0 = the paper's plain DPO. Keeps
    the chosen report's likelihood from falling with the rejected one's."""
    label_smoothing: float = 0.0
    """Conservative DPO: probability in [0, 0.5) that a pair's preference is flipped (for
    noisy judges such as the offline rules judge); 0 = the paper's loss."""
    reference_free: bool = False
    """Drop the reference model from the margin (log-ratios against 0); off in the paper."""
    model: DPOModelOptions = field(default_factory=DPOModelOptions)
    data: DPODataOptions = field(default_factory=DPODataOptions)
    optim: OptimOptions = field(default_factory=lambda: OptimOptions(lr=5e-5))

    def __post_init__(self) -> None:
        problems = self._check_run()
        if self.beta <= 0:
            problems.append(f"beta must be > 0, got {self.beta}")
        if self.rpo_alpha < 0:
            problems.append(f"rpo_alpha must be >= 0, got {self.rpo_alpha}")
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class PrefsConfig:
    """Preference pairs: sample n reports per case, GREEN-rank them, keep best vs worst."""

    model: str = "runs/sft-tiny/final"
    data: str = "runs/synth/train.jsonl"
    out: str = "runs/prefs/pairs.jsonl"
    n: int = 8
    temperature: float = 1.0
    top_p: float = 0.9
    seed: int = 0
    green_backend: str = "rules"
    """rules (offline judge) | hf:PATH | openai:URL."""
    green_options: dict = field(default_factory=dict)
    """Options of the judge backend (``mu2.metrics.green.make_judge``): openai: ``model``,
    ``tokenizer``; hf: ``batch_size``, ``dtype``, ``max_new_tokens`` (smoke tests only)."""
    min_length: int = 5
    """Samples with fewer words are degenerate and never chosen."""
    min_margin: float = 0.0
    """Least GREEN difference chosen - rejected for a pair to be kept (0: any difference)."""
    tie_break: Literal["none", "errors"] = "none"
    """Rank samples of equal GREEN by their count of significant errors (``errors``; not in
    the paper) or not at all (``none``): fewer tied cases are skipped."""
    tasks: list[str] = field(default_factory=lambda: ["report"])
    """Row ``task`` values to build pairs for (rows without a task are kept); the paper's
    DPO is on report generation, not on one-word VQA answers."""
    max_new_tokens: int = 96
    max_length: int = 256
    prep: str = "tiny"
    limit: int | None = None
    device: Literal["auto", "cpu"] = "auto"
    num_threads: int | None = None
    sample_rows: int = 8
    """Cases whose ``n`` samples are drawn in one decode batch (``sample_rows * n`` reports
    per forward). Groups are fixed runs of consecutive cases, so resuming or sharding draws
    the same samples; 1: one case at a time (each case's draw depends on its id alone)."""

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rows < 1:
            problems.append(f"sample_rows must be >= 1, got {self.sample_rows}")
        if self.n < 2:
            problems.append(f"n must be >= 2 to form a pair, got {self.n}")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_margin <= 1:
            problems.append(f"min_margin must be in [0, 1] (a GREEN difference), got {self.min_margin}")
        if self.tie_break not in ("none", "errors"):
            problems.append(f"tie_break must be none or errors, got {self.tie_break!r}")
        if problems:
            raise ValueError("; ".join(problems))


CONTEXTS: tuple[str, ...] = ("findings", "none")
FILLS: tuple[str, ...] = ("repeat", "once", "code")


@dataclass
class LMDataOptions:
    train: str = "runs/synth/train.jsonl"
    limit: int | None = None
    """Use only the first N rows (None: all)."""
    num_workers: int = 0
    """DataLoader worker processes (the rows are text: 0 is enough)."""


@dataclass
class LMConfig(RunOptions):
    """Text pretraining of a random-init tiny LLM before SFT (embedded default only).

    The paper's LLM arrives pretrained (Llama-3.2-1B) and can read what its context says;
    a random-init tiny Llama cannot, and SFT alone does not teach it to read the image
    within the demo budget (docs/experiments/2026-11-28-research-log.md). This stage trains the LLM on the SFT
    rows' text with ``context="findings"``: the row's structured findings written as words
    at a random place among the image placeholders, so the LLM learns to look back at that
    block for evidence. SFT then fills the block with visual tokens. Skip this stage when
    ``model.llm_path`` points at a pretrained LLM.
    """

    output_dir: str = "runs/lm-tiny"
    max_steps: int | None = 300
    batch_size: int = 32
    log_every: int = 50
    num_sample_reports: int = 0
    """No sample reports: the stage has no validation split and no image."""
    context: str = "findings"
    """findings: structured findings as words in the image block; none: plain text."""
    fill: str = "repeat"
    """repeat: the findings tiled over the whole image block; once: written once at a
    random offset among the placeholders (see ``mu2.train.aids.context_lm.context_block``);
    code: every block position holds a *findings code* (``mu2.train.aids.findings_code``): +/-
    a fixed direction per finding kind of the scan, present or absent, mixed with random
    positive weights, plus noise; a target the μ² tokenizer's convex mixes can reach and
    that SFT regresses onto (``SFTConfig.code_weight``)."""
    code_noise: float = 0.5
    """fill=code: Gaussian noise added to each block position, as a fraction of the code's
    RMS, so the LLM reads an imperfect code too."""
    code_mix_low: float = 0.25
    """fill=code: each kind's weight in a position's mix is drawn from U(code_mix_low, 1),
    so the LLM reads the signs whatever the tokenizer's mixing weights."""
    code_scope: str = "case"
    """fill=code: what a row's code covers, ``case`` (every kind of the scan) or ``region``
    (only the kinds of the row's region, ``mu2.train.aids.findings_code``); SFT's
    ``code_scope`` should match. Not in the paper."""
    code_sides: bool = False
    """fill=code: add a left and a right term per lateral kind, so the LLM learns to write
    the side of a finding and answer side questions from the code; SFT's ``code_sides``
    should match. Not in the paper."""
    code_basis: str = "random"
    """fill=code: the directions of the code's terms, ``random`` (one seeded unit vector per
    term; two terms can overlap by chance, e.g. cosine 0.13 between ascites and
    splenomegaly at width 128, so the LLM partly reads one sign as the other) or
    ``orthogonal`` (columns of one fixed orthonormal basis); SFT's ``code_basis`` should
    match. Not in the paper."""
    model: ModelOptions = field(default_factory=ModelOptions)
    data: LMDataOptions = field(default_factory=LMDataOptions)
    optim: OptimOptions = field(
        default_factory=lambda: OptimOptions(
            lr=3e-3, weight_decay=0.01, warmup_ratio=0.05, min_lr_ratio=0.05
        )
    )

    def __post_init__(self) -> None:
        problems = []
        if self.context not in CONTEXTS:
            problems.append(f"context={self.context!r} (choose one of {list(CONTEXTS)})")
        if self.fill not in FILLS:
            problems.append(f"fill={self.fill!r} (choose one of {list(FILLS)})")
        if self.code_scope not in CODE_SCOPES:
            problems.append(f"code_scope={self.code_scope!r} (choose one of {list(CODE_SCOPES)})")
        if self.code_basis not in CODE_BASES:
            problems.append(f"code_basis={self.code_basis!r} (choose one of {list(CODE_BASES)})")
        problems += self._check_run()
        if self.max_steps is None:
            problems.append("max_steps must be set (the stage draws that many random batches)")
        if self.model.llm_path is not None:
            problems.append("model.llm_path is set: a pretrained LLM needs no text pretraining")
        if problems:
            raise ValueError("; ".join(problems))
