"""Config of ``mu2 bench tokenizer``: the synthetic token world, the budget and the rows.

The world: T frames, one organ per frame, a (gz, gy, gx) token grid per frame whose left and
right halves (along x) are the organ's two sides, so there are T x 2 named regions. Frame
tokens are what a projector would hand the tokenizer: an organ texture (the same on both
sides), a fixed absolute position code (what a ViT's position embeddings leave in its tokens),
spatially correlated noise, and planted lesions (a kind signature added to a block of 1 to 16
neighbouring tokens of one region). A question names an organ and a side, or an organ alone;
the answer is the kind and size class of the lesion in that region, or none.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mu2.bench.config import ALL_PRESETS
from mu2.errors import Mu2Error
from mu2.tokenizer import PRESETS

# Every tokenizer preset, plus the μ² tokenizer with the question withheld (the tokenizer gets
# a constant question; the readout still gets the real one): the control for question
# conditioning.
NO_QUESTION = "mu2-noq"
ALL_ROWS: tuple[str, ...] = (*ALL_PRESETS, NO_QUESTION)
ORGANS: tuple[str, ...] = ("lung", "liver", "kidney", "bladder")
SIDES: tuple[str, ...] = ("left", "right")
# Lesion sizes (tokens) and their blocks (dz, dy, dx) inside one region.
LESION_BLOCKS: dict[int, tuple[int, int, int]] = {
    1: (1, 1, 1),
    2: (1, 1, 2),
    4: (1, 2, 2),
    8: (1, 2, 4),
    16: (1, 4, 4),
}
SIZE_CLASSES: tuple[str, ...] = ("small", "medium", "large")


def size_class(size: int) -> int:
    """Index into SIZE_CLASSES: small 1-2 tokens, medium 3-6, large 7-16."""
    return 0 if size <= 2 else (1 if size <= 6 else 2)


@dataclass
class TokenBenchConfig:
    """One budget for every row; ``--set key=value`` overrides any field."""

    rows: list[str] = field(default_factory=lambda: list(ALL_ROWS))
    seeds: int = 3
    steps: int = 600
    """At 600 steps, LinVT (positive control) and μ² are well above chance in the default world
    (seed 0); at 250 steps μ² sat at the label prior even in the one-kind quick world."""
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    eval_items: int = 1536
    world_seed: int = 0
    """Seed of the fixed world (organ textures, position code, kind signatures)."""
    threads: int = 1
    """Torch threads per worker; 1 is fastest on a shared machine (2 threads spin-wait under load)."""
    workers: int | None = None
    """Processes training (seed, row) runs side by side (None: one per CPU core, at most the
    number of runs). Each run is seeded on its own, so the results do not depend on it."""
    # World.
    frames: int = 4
    """T: one organ per frame (at most len(ORGANS))."""
    grid: tuple[int, int, int] = (1, 4, 8)
    width: int = 32
    kinds: int = 3
    sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    lesion_amplitude: float = 2.0
    """Per-channel std of a kind signature, relative to the unit noise (at 1.0 with 3 kinds no
    row left the label prior in 120 steps)."""
    amplitude_jitter: float = 0.25
    """Each lesion's amplitude is scaled by U(1 - j, 1 + j)."""
    organ_amplitude: float = 1.0
    position_amplitude: float = 0.5
    noise_smoothing: float = 1.0
    """Std (tokens) of the Gaussian that correlates the noise within a frame; 0 = white."""
    present_prob: float = 0.6
    """Probability that the asked region holds a lesion."""
    max_distractors: int = 3
    """Lesions in other regions: uniform in 0..max_distractors."""
    side_question_prob: float = 0.5
    """Share of questions naming organ and side (the others name the organ only)."""
    # Tokenizer (the same for every row) and the shared readout.
    num_selected: int = 32
    num_queries: int = 16
    svr_layers: int = 2
    tta_layers: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    gate_hidden: int = 16
    temperature: float = 1.0
    """tau of the soft-selection and final-aggregation softmaxes (1.0 = the paper's)."""
    standardize_scores: bool = False
    """Standardise the scored features over each scene's tokens (an aid, not the paper's)."""
    readout_heads: int = 4
    readout_question: bool = True
    """The readout sees the question (as the LLM does); off, only the tokenizer can use it."""
    budget_tolerance: float = 0.10
    """Every row's trainable parameters within this share of the largest row's."""

    def __post_init__(self) -> None:
        self.grid = tuple(int(g) for g in self.grid)
        self.sizes = tuple(int(s) for s in self.sizes)
        problems = []
        unknown = [r for r in self.rows if r not in PRESETS and r != NO_QUESTION]
        if unknown:
            problems.append(f"rows {unknown} (choose from {', '.join(ALL_ROWS)})")
        if not 1 <= self.frames <= len(ORGANS):
            problems.append(f"frames={self.frames} (1..{len(ORGANS)}: one organ per frame)")
        if len(self.grid) != 3 or self.grid[2] % 2:
            problems.append(f"grid={self.grid} (gz, gy, gx with an even gx: two sides)")
        gz, gy, gx = self.grid
        for s in self.sizes:
            block = LESION_BLOCKS.get(s)
            if block is None:
                problems.append(f"size {s} (choose from {sorted(LESION_BLOCKS)})")
            elif block[0] > gz or block[1] > gy or block[2] > gx // 2:
                problems.append(f"size {s} block {block} does not fit a region of {self.grid}")
        if self.max_distractors > 2 * self.frames - 2:
            problems.append(f"max_distractors={self.max_distractors} > free regions")
        if self.workers is not None and self.workers < 1:
            problems.append(f"workers={self.workers} (must be >= 1, or null: one per core)")
        for name in ("seeds", "steps", "batch_size", "eval_items", "kinds", "width"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1)")
        if problems:
            raise Mu2Error("invalid tokenizer-benchmark config: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        """none + kind x size class."""
        return 1 + self.kinds * len(SIZE_CLASSES)

    def replace(self, **changes: Any) -> TokenBenchConfig:
        return dataclasses.replace(self, **changes)


# --quick: the make-test version (μ² and LinVT, 1 seed, few steps, one lesion kind, single-token
# lesions, no distractors); its numbers are a smoke check that a single-token lesion is found,
# not a benchmark.
QUICK: dict[str, Any] = {
    "rows": ["linvt", "mu2"],
    "seeds": 1,
    "steps": 600,  # at 250 the μ² row stayed at the label prior in 3 of 3 seeds
    "eval_items": 512,
    "kinds": 1,
    "sizes": (1,),
    "lesion_amplitude": 2.0,
    "max_distractors": 0,
}


def quick_values(explicit: set[str]) -> dict[str, Any]:
    """The --quick values of the fields the user did not set."""
    return {k: v for k, v in QUICK.items() if k not in explicit}
