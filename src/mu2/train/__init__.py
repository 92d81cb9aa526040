"""Training: stage 1 SFT, GREEN-ranked preference pairs, stage 2 DPO.

Recipes (``setup -> train -> cleanup``): :mod:`mu2.train.sft` (``run_sft``),
:mod:`mu2.train.dpo` (``run_dpo``), both recipes on the engine of :mod:`mu2.engine`
(accelerate, checkpoints with exact resume, metrics). Pairs: :mod:`mu2.train.prefs`
(``build_pairs``). Pure part: :mod:`mu2.train.dpo_loss`.
Configs: :mod:`mu2.train.config`. The recipes are imported from their modules (they pull in
accelerate and transformers); this package import stays light.
"""

from mu2.train.config import DPOConfig, PrefsConfig, SFTConfig
from mu2.train.dpo_loss import DPOLossOutput, dpo_loss, sequence_logps

__all__ = ["DPOConfig", "DPOLossOutput", "PrefsConfig", "SFTConfig", "dpo_loss", "sequence_logps"]
