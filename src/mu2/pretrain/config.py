"""Config of stage 0, contrastive image-report pretraining of the vision tower (M3D-CLIP analog).

    mu2 train clip --config configs/clip/tiny.yaml [key=value ...]

The run options (steps, batch, checkpoints, logging) are the SFT recipe's
(:class:`mu2.engine.config.RunOptions`); the sections below are specific to stage 0.
CLIP's own defaults are named as such: initial temperature 0.07 and the logit-scale cap
of 100 (Radford et al. 2021).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mu2.engine.config import OptimOptions, RunOptions
from mu2.preprocess import AugmentConfig

CLIP_INIT_TEMPERATURE = 0.07  # CLIP: logit scale starts at log(1 / 0.07)
CLIP_MAX_LOGIT_SCALE = 100.0  # CLIP: the learned scale is clamped to 100


@dataclass
class FindingsPreservingAugment(AugmentConfig):
    """The training augmentation of :mod:`mu2.preprocess.augment`, by default with only its
    noise: in-plane rotations and flips swap the patient's left and right, which the
    findings' sides depend on (renal cyst, pleural effusion), and an intensity shift of
    0.1 is 40 HU in the soft-tissue window, as much as hepatic steatosis lowers the liver."""

    rot90_prob: float = 0.0
    flip_prob: float = 0.0
    scale_prob: float = 0.0
    shift_prob: float = 0.0


@dataclass
class ClipModelOptions:
    """Image tower = the mu2 ViT3D of ``size`` + spatial pooling projector; text tower = a
    small transformer over a BPE tokenizer trained on the training reports."""

    size: Literal["tiny", "paper"] = "tiny"
    """Vision tower layout of ``mu2.model.builders`` (the one SFT of that size builds)."""
    vision_path: str | None = None
    """Start from these vision weights (e.g. M3D-CLIP's) instead of random init."""
    embed_dim: int = 128
    """Width of the shared image-text embedding space."""
    input_norm: Literal["auto", "none"] = "auto"
    """auto: standardise the frames with the mean and std of the first training volumes
    while training (several times faster from scratch), folded into the patch embedding
    of the saved tower, which takes raw frames like any mu2 tower. Off with vision_path."""
    pool: Literal["mean", "meanmax"] = "meanmax"
    """Pooling of the projected tokens over tokens and frames: mean, or mean and max
    concatenated (max keeps a small lesion that a mean over 256 tokens dilutes)."""
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_max_length: int = 160
    """Report length cap in tokens (a tiny two-region report is about 60-110)."""
    vocab_size: int = 1000
    """BPE vocabulary of the text tower (merges stop earlier on a small corpus)."""
    init_temperature: float = CLIP_INIT_TEMPERATURE
    max_logit_scale: float = CLIP_MAX_LOGIT_SCALE
    clip_weight: float = 1.0
    """Weight of the symmetric InfoNCE loss (0: findings head only)."""
    findings_weight: float = 1.0
    """Weight of the auxiliary multi-label findings loss (0 or no findings: off)."""
    histogram_weight: float = 0.0
    """Weight of a dense auxiliary target: each patch token predicts the intensity
    histogram of its own voxels (tissue composition; pooled, it gives organ volumes and
    attenuations, which the findings change). 0: off."""
    histogram_bins: int = 16
    lesion_weight: float = 0.0
    """Weight of a localising target, an aid that is not in the paper (M3D-CLIP's data have
    no voxel labels): a small head on each ViT patch predicts whether it holds focal-lesion
    voxels, read from the label maps beside the training JSONL (``mu2 data synth
    --save-labels``), and each scan's highest patch whether the scan has a lesion. A
    scan label says that a 3-voxel nodule is somewhere among a scan's 1,024 patches, not
    where; with the scan label alone the tiny tower never learnt focal lesions
    (docs/experiments/2026-12-07-focal-lesions-tiny.md). 0: off."""
    lesion_min_share: float = 0.05
    """A patch is a lesion patch when at least this share of its voxels is lesion; patches
    with less (but some) lesion are left out of the loss."""
    lesion_head: Literal["linear", "mlp"] = "linear"
    """The lesion target's head on each patch. ``linear`` makes the tower hold a lesion
    direction, which SFT's linear projector reads (the demo's nodule 0.97 after SFT, against
    0.83-0.88 with ``mlp``); ``mlp`` asks less of the tower (without the anatomy target a
    linear head cost splenomegaly 0.13-0.17 in the probe)."""
    organ_weight: float = 0.0
    """Weight of a dense anatomy target, an aid that is not in the paper: a linear head on
    each ViT patch predicts the share of its voxels in each of ``organ_labels`` (and the
    rest), read from the label maps as the lesion target reads them; pooled, such patches
    give organ volumes, which hepatomegaly and splenomegaly change. 0: off."""
    organ_labels: list[str] = field(
        default_factory=lambda: [
            "liver", "spleen", "kidney_left+kidney_right+renal_sinus", "lung_left",
            "lung_right", "fluid",
        ]
    )  # fmt: skip
    """Groups of the anatomy target: label names of the synthetic label maps, '+' joins
    several labels into one group."""
    findings_sides: bool = True
    """Findings head also predicts left / right for lateral kinds."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("embed_dim", "text_width", "text_layers", "text_heads", "text_max_length"):
            if getattr(self, name) < 1:
                problems.append(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.text_width % max(self.text_heads, 1):
            problems.append(
                f"model.text_width {self.text_width} must be a multiple of text_heads "
                f"{self.text_heads}"
            )
        if self.vocab_size < 300:
            problems.append(
                f"model.vocab_size must be >= 300 (byte alphabet), got {self.vocab_size}"
            )
        if not 0 < self.init_temperature < 1:
            problems.append(
                f"model.init_temperature must be in (0, 1), got {self.init_temperature}"
            )
        if self.max_logit_scale <= 1.0:
            problems.append(f"model.max_logit_scale must be > 1, got {self.max_logit_scale}")
        names = ("clip_weight", "findings_weight", "histogram_weight", "lesion_weight",
                 "organ_weight")  # fmt: skip
        weights = tuple(getattr(self, name) for name in names)
        problems += [f"model.{n} must be >= 0, got {getattr(self, n)}" for n in names
                     if getattr(self, n) < 0]  # fmt: skip
        if not 0 < self.lesion_min_share <= 1:
            problems.append(
                f"model.lesion_min_share must be in (0, 1], got {self.lesion_min_share}"
            )
        if self.organ_weight and not self.organ_labels:
            problems.append("model.organ_labels is empty while model.organ_weight > 0")
        if self.histogram_weight and self.histogram_bins < 2:
            problems.append(f"model.histogram_bins must be >= 2, got {self.histogram_bins}")
        if not any(weights):
            problems.append(f"model.{', '.join(names)} are all 0: nothing to learn")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def init_logit_scale(self) -> float:
        return math.log(1.0 / self.init_temperature)


@dataclass
class ClipDataOptions:
    """Unified JSONL splits (``mu2 data synth`` writes all three); one item per case."""

    train: str = "runs/synth/train.jsonl"
    val: str | None = "runs/synth/val.jsonl"
    test: str | None = "runs/synth/test.jsonl"
    """Split the probe reports on (zero-shot and linear-probe accuracy)."""
    prep: str = "tiny"
    """Volume preparation preset of ``mu2.preprocess.prep_config`` (tiny | paper)."""
    augment: bool = True
    augmentation: FindingsPreservingAugment = field(default_factory=FindingsPreservingAugment)
    """Default: noise only (no rotation, flip or intensity shift, which change findings)."""
    cache: Literal["memory", "disk", "none"] = "memory"
    cache_dir: str | None = None
    """With cache=disk: prepared volumes shared with SFT runs that use the same folder."""
    num_workers: int = 0
    max_val_cases: int = 64
    limit: int | None = None
    """Use only the first N training cases (quick runs)."""


@dataclass
class ProbeOptions:
    """Zero-shot and linear-probe accuracy per finding kind, written next to the weights."""

    enabled: bool = True
    max_train_cases: int = 400
    """Cases of the train split the linear probe is fitted on (feature extraction costs
    one forward pass per case)."""
    max_test_cases: int | None = None
    prompts: int = 8
    """Phrasings averaged per zero-shot prompt (CLIP's prompt ensembling)."""
    c: float = 1.0
    """Inverse L2 strength of the logistic regression."""
    baseline: bool = True
    """Also probe a randomly initialised vision tower of the same layout (what stage 0 buys)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_train_cases < 4 or self.prompts < 1 or self.c <= 0:
            raise ValueError("probe.max_train_cases >= 4, probe.prompts >= 1, probe.c > 0")


@dataclass
class ClipConfig(RunOptions):
    """Stage 0: symmetric InfoNCE between volumes and their reports (learned temperature),
    plus an auxiliary multi-label head on the structured findings."""

    output_dir: str = "runs/clip-tiny"
    batch_size: int = 16
    save_every: int = 0
    eval_every: int = 0
    num_sample_reports: int = 0
    model: ClipModelOptions = field(default_factory=ClipModelOptions)
    data: ClipDataOptions = field(default_factory=ClipDataOptions)
    optim: OptimOptions = field(default_factory=lambda: OptimOptions(lr=1e-3, weight_decay=0.05))
    probe: ProbeOptions = field(default_factory=ProbeOptions)

    def __post_init__(self) -> None:
        problems = self._check_run()
        if self.batch_size < 2:
            problems.append("batch_size must be >= 2 (InfoNCE needs negatives in the batch)")
        if problems:
            raise ValueError("; ".join(problems))
