"""The μ² LLM: ViT3D (M3D-CLIP layout) -> projector -> μ² Tokenizer -> Hugging Face causal LM.

``build(size, preset)`` is the entry point; ``Mu2ForConditionalGeneration.from_pretrained``
loads a saved model with its ``Mu2Processor``. Importing this package registers mu2 with
the transformers Auto classes (``AutoModelForImageTextToText``, ``AutoModel``,
``AutoProcessor``; see :mod:`mu2.model.auto`).
"""

from mu2.model.auto import register_auto_classes
from mu2.model.builders import SIZES, build, tokenizer_config, vision_config
from mu2.model.configuration import Mu2Config
from mu2.model.modeling import ImageEncoding, Mu2ForConditionalGeneration
from mu2.model.processing import IGNORE_INDEX, Mu2Processor
from mu2.model.vision import VisionTower, load_vision_weights, save_vision_weights
from mu2.tokenizer import PRESETS

PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
register_auto_classes(Mu2Config, Mu2ForConditionalGeneration, Mu2Processor)

__all__ = [
    "IGNORE_INDEX",
    "PRESET_NAMES",
    "SIZES",
    "ImageEncoding",
    "Mu2Config",
    "Mu2ForConditionalGeneration",
    "Mu2Processor",
    "VisionTower",
    "build",
    "load_vision_weights",
    "save_vision_weights",
    "tokenizer_config",
    "vision_config",
]
