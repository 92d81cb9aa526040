"""What ``mu2 rehearse`` runs: case counts, stand-in sizes and each stage's size overrides.

The stages run the paper configs (``configs/{sft,prefs,dpo}/paper.yaml``) unchanged but
for the ``key=value`` overrides listed here, which only shrink sizes (model size, volume
preparation size, steps, cases). ``configs/rehearse/cpu.yaml`` holds the CPU values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mu2.rehearse.assets import LMShape


@dataclass
class RehearseConfig:
    amos_train: int = 6
    """AMOS-MM training cases (one report row per region each)."""
    amos_val: int = 2
    ct_rate: int = 3
    """CT-RATE v1 volumes (raw stored values + rescale in the metadata CSV)."""
    seed: int = 0
    vision_size: str = "tiny"
    """Size of the M3D-layout ViT file (must match ``model.size`` of the SFT overrides)."""
    llm: LMShape = field(default_factory=LMShape)
    judge: LMShape = field(default_factory=LMShape)
    sft: list[str] = field(
        default_factory=lambda: ["model.size=tiny", "data.prep=tiny:percentile", "max_steps=4"]
    )
    two_process: bool = True
    """Also run SFT as two CPU processes under ``accelerate launch``."""
    prefs: list[str] = field(
        default_factory=lambda: ["prep=tiny:percentile", "limit=6", "sample_rows=1"]
    )
    dpo: list[str] = field(
        default_factory=lambda: ["data.prep=tiny:percentile", "max_steps=2", "log_every=1"]
    )
    eval_max_new_tokens: int = 64
    """Report length of the prediction file ``mu2 eval`` scores."""
    eval_metrics: str = "bleu,rouge,green"
    """No METEOR (needs Java) or BERTScore (needs a downloaded backbone) offline."""
    report_max_new_tokens: int = 32
    stage_timeout_s: int = 600
