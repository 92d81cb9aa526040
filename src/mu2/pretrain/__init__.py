"""Stage 0: contrastive image-report pretraining of the vision tower (the M3D-CLIP analog).

A tiny model trained end to end by SFT learns the report template and ignores the image
(docs/experiments/2026-11-28-research-log.md); the paper starts from a pretrained M3D-CLIP
tower. ``mu2 train clip`` gives the embedded model its own: the ViT3D trained against the
reports (symmetric InfoNCE, learned temperature) and the structured findings (auxiliary
multi-label head), saved as ``vision.safetensors`` for SFT's ``model.vision_path``, with
zero-shot and linear-probe accuracy per finding next to it.
"""

from mu2.pretrain.cases import Case, LabelSpace, read_cases, write_cases
from mu2.pretrain.clip import (
    VISION_FILE,
    ClipModel,
    ClipOutput,
    build_clip_model,
    clip_loss,
    load_clip,
    save_clip,
)
from mu2.pretrain.config import ClipConfig, ClipDataOptions, ClipModelOptions, ProbeOptions
from mu2.pretrain.text_encoder import TextEncoder

__all__ = [
    "VISION_FILE",
    "Case",
    "ClipConfig",
    "ClipDataOptions",
    "ClipModel",
    "ClipModelOptions",
    "ClipOutput",
    "LabelSpace",
    "ProbeOptions",
    "TextEncoder",
    "build_clip_model",
    "clip_loss",
    "load_clip",
    "read_cases",
    "save_clip",
    "write_cases",
]
