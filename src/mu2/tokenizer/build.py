"""``build_visual_tokenizer``: the module for a tokenizer config's kind.

It sits above both the μ² tokenizer and the baselines, which import the shared config and
output types from ``mu2_tokenizer``, so neither implementation imports the other.
"""

from __future__ import annotations

from torch import nn

from mu2.tokenizer.baselines import PassthroughTokens, PerceiverResampler
from mu2.tokenizer.mu2_tokenizer import Mu2Tokenizer, TokenizerConfig


def build_visual_tokenizer(config: TokenizerConfig) -> nn.Module:
    """The module for ``config.kind``: μ² (or LinVT ablation), spp pass-through, or perceiver."""
    if config.kind == "mu2":
        return Mu2Tokenizer(config)
    if config.kind == "spp":
        return PassthroughTokens(config)
    return PerceiverResampler(config)
