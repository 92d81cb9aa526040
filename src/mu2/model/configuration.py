"""Mu2Config: the Hugging Face config of the μ² LLM (vision / tokenizer / text sub-configs).

``vision_config`` and ``tokenizer_config`` are plain mappings of the dataclasses
:class:`mu2.model.vision.VisionConfig` and :class:`mu2.tokenizer.TokenizerConfig` (so they
serialise into ``config.json`` as is); ``text_config`` is the LLM's own config (any
``AutoConfig`` model type: llama, phi3, qwen2, qwen3, ...).
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from mu2.config import from_dict, to_dict
from mu2.model.vision import VisionConfig
from mu2.tokenizer import TokenizerConfig


class Mu2Config(PreTrainedConfig):
    """Everything needed to rebuild a Mu2ForConditionalGeneration without its weights."""

    model_type = "mu2"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    vision_config: dict | None = None
    """Mapping of VisionConfig (MONAI ViT layout)."""
    projector_pool: int = 2
    """Average-pool factor of the projector on the ViT patch grid (M3D: 2)."""
    tokenizer_config: dict | None = None
    """Mapping of TokenizerConfig (μ² Tokenizer, LinVT ablation, spp or perceiver)."""
    text_config: dict | PreTrainedConfig | None = None
    image_token_id: int = 0
    """Id of the image placeholder token in the LLM vocabulary."""
    preset: str = "mu2"
    size: str = "tiny"
    prep: str = "tiny"
    """Name of the preprocessing size (``mu2.preprocess``) the model expects its frames in."""
    lora: dict | None = None
    """LoRA settings on the LLM (r, alpha, target_modules, dropout) or None."""
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # As LLaVA: the LLM's own tying (Llama-3.2-1B ties its embeddings) decides.
        if self.text_config is not None and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True

    def vision(self) -> VisionConfig:
        return from_dict(VisionConfig, dict(self.vision_config or {}), where="vision_config")

    def tokenizer(self) -> TokenizerConfig:
        return from_dict(
            TokenizerConfig, dict(self.tokenizer_config or {}), where="tokenizer_config"
        )

    @staticmethod
    def mapping(cfg: Any) -> dict:
        """A dataclass sub-config as a JSON-ready mapping."""
        return to_dict(cfg)


# Lets AutoConfig (used by AutoTokenizer on a model folder) read our config.json.
AutoConfig.register(Mu2Config.model_type, Mu2Config, exist_ok=True)
