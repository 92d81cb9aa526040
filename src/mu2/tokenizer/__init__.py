"""The μ² Tokenizer (SVR with RPE, DTS, DMTP, TTA), its LinVT ablations and two baselines.

Each concept is one module: ``position`` (RPE), ``attention``, ``refiner`` (SVR),
``selection`` (DTS / top-k), ``pooling`` (DMTP / fixed), ``aggregation`` (TTA + final linear
aggregation), ``mu2_tokenizer`` (composition, config, presets), ``baselines`` (spp, perceiver), ``build``
(the module for a config's kind).
"""

from mu2.tokenizer.build import build_visual_tokenizer
from mu2.tokenizer.mu2_tokenizer import (
    PRESETS,
    Mu2Tokenizer,
    TokenizerConfig,
    TokenizerOutput,
    preset_options,
)

__all__ = [
    "PRESETS",
    "Mu2Tokenizer",
    "TokenizerConfig",
    "TokenizerOutput",
    "build_visual_tokenizer",
    "preset_options",
]
