"""Builders: the only place that holds literal model sizes ("paper" and "tiny").

``paper`` is the published layout: ViT3D exactly M3D-CLIP, E = LLM width (Llama-3.2-1B:
2048), k = 1024 soft tokens, Q = 256 queries (reference code; ``num_queries=1024`` gives the
paper's count). ``tiny`` keeps every part small so a forward + backward runs on CPU in well
under a second; it uses the same classes and code path (a small ``LlamaForCausalLM`` and a
BPE tokenizer trained with ``tokenizers``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from typing import Any, cast

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerBase

from mu2.config import to_dict
from mu2.errors import Mu2Error
from mu2.model.configuration import Mu2Config
from mu2.model.modeling import Mu2ForConditionalGeneration
from mu2.model.processing import Mu2Processor
from mu2.model.text import prepare_tokenizer, train_text_tokenizer
from mu2.model.vision import VisionConfig, load_vision_weights
from mu2.tokenizer import TokenizerConfig, preset_options

log = logging.getLogger(__name__)

SIZES: tuple[str, ...] = ("tiny", "paper")
PROJECTOR_POOL = 2  # M3D spatial pooling: 2x2x2 average pool of the patch grid

# Frame sizes when mu2.preprocess is unavailable: (K slices, H = W, max frames).
_FALLBACK_PREP = {"paper": (32, 256, 8), "tiny": (16, 64, 4)}


def _prep_dims(size: str) -> tuple[int, int, int]:
    """(K, H=W, max_frames) of the preprocessing size of the same name."""
    try:
        from mu2.preprocess import prep_config
    except ImportError:  # preprocessing not part of this build
        return _FALLBACK_PREP[size]
    cfg = prep_config(size)
    return cfg.frame_slices, cfg.size, cfg.max_frames


def vision_config(size: str) -> VisionConfig:
    k, hw, _ = _prep_dims(size)
    if size == "paper":  # M3D-CLIP: 87.4M parameters, 8 x 16 x 16 = 2048 patches per frame
        return VisionConfig(
            img_size=(k, hw, hw),
            patch_size=(4, 16, 16),
            hidden_size=768,
            mlp_dim=3072,
            num_layers=12,
            num_heads=12,
        )
    return VisionConfig(
        img_size=(k, hw, hw),
        patch_size=(4, 8, 8),
        hidden_size=128,
        mlp_dim=256,
        num_layers=2,
        num_heads=4,
    )


def tokenizer_config(size: str, preset: str, width: int, **overrides: Any) -> TokenizerConfig:
    """Visual tokenizer config for ``size`` / ``preset``; ``overrides`` are TokenizerConfig fields."""
    _check_size(size)
    vision = vision_config(size)
    grid = tuple(g // PROJECTOR_POOL for g in vision.grid)
    _, _, max_frames = _prep_dims(size)
    if size == "paper":
        sizes = dict(
            num_selected=1024, num_queries=256, svr_layers=4, tta_layers=4, heads=8,
            mlp_ratio=2.0, gate_hidden=256,
        )  # fmt: skip
    else:
        # The tiny layout keeps the paper's plain softmax: with the findings-code warm start
        # (mu2.train.aids.code_init) a near-uniform initial mix is what the fitted projector
        # expects. (Without that start, a standardised score at temperature 0.5 helped the
        # next-token loss alone; docs/experiments/2026-11-28-research-log.md.)
        sizes = dict(
            num_selected=64, num_queries=32, svr_layers=2, tta_layers=2, heads=4,
            mlp_ratio=2.0, gate_hidden=32,
        )  # fmt: skip
    fields = {f.name for f in dataclasses.fields(TokenizerConfig)}
    for key in overrides:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            raise Mu2Error(
                f"unknown model option '{key}'",
                fix=f"did you mean '{close[0]}'?"
                if close
                else f"valid: {', '.join(sorted(fields))}",
            )
    values: dict[str, Any] = {
        "width": width,
        "grid": grid,
        "max_frames": max_frames,
        **sizes,
        **preset_options(preset),
    }
    values.update(overrides)
    return TokenizerConfig(**values)


def llm_config(size: str, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """A randomly initialised Llama of the size's shape, with the tokenizer's vocabulary."""
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if size == "paper":  # Llama-3.2-1B shape
        return LlamaConfig(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            tie_word_embeddings=True,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
            **ids,
        )
    return LlamaConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        **ids,
    )


TINY_VOCAB = 1000  # BPE vocabulary of the tiny tokenizer (merges stop earlier on a small corpus)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise Mu2Error(f"unknown model size '{size}'", fix=f"choose one of {', '.join(SIZES)}")


def build(
    size: str = "tiny",
    preset: str = "mu2",
    *,
    llm_path: str | None = None,
    vision_path: str | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    train_texts: list[str] | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> Mu2ForConditionalGeneration:
    """A μ² LLM (or a baseline preset) with its processor attached (``model.processor``).

    ``llm_path``: a local Hugging Face causal LM folder (its tokenizer too); without it a
    random-init Llama of the size's shape with a BPE tokenizer trained on ``train_texts``
    (or ``tokenizer`` when given). ``vision_path``: M3D-CLIP ``pretrained_ViT.bin`` or a
    vision tower saved by ``save_vision_weights``. ``overrides``: TokenizerConfig fields,
    e.g. ``num_queries=1024``. Initialisation draws from ``seed`` without touching the
    global RNG.
    """
    _check_size(size)
    preset_options(preset)  # unknown preset -> one clear error before any work
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        llm = None
        if llm_path is not None:
            from pathlib import Path

            if not Path(llm_path).is_dir():
                raise Mu2Error(
                    "LLM folder not found", path=str(llm_path), fix="pass a local HF model folder"
                )
            tok = tokenizer or AutoTokenizer.from_pretrained(llm_path)
            image_token_id = prepare_tokenizer(tok)
            llm = AutoModelForCausalLM.from_pretrained(llm_path, dtype=dtype or torch.float32)
            if len(tok) > cast(nn.Embedding, llm.get_input_embeddings()).num_embeddings:
                llm.resize_token_embeddings(len(tok))
            text_config = llm.config
            if text_config.pad_token_id is None:
                text_config.pad_token_id = tok.pad_token_id
            if llm.generation_config.pad_token_id is None:
                llm.generation_config.pad_token_id = tok.pad_token_id
        else:
            tok = tokenizer or train_text_tokenizer(
                train_texts, TINY_VOCAB if size == "tiny" else 32000
            )
            image_token_id = prepare_tokenizer(tok)
            text_config = llm_config(size, tok)
        vision = vision_config(size)
        tok_cfg = tokenizer_config(size, preset, text_config.hidden_size, **overrides)
        config = Mu2Config(
            vision_config=to_dict(vision),
            projector_pool=PROJECTOR_POOL,
            tokenizer_config=to_dict(tok_cfg),
            text_config=text_config,
            image_token_id=image_token_id,
            preset=preset,
            size=size,
            prep=size,
        )
        model = Mu2ForConditionalGeneration(config, language_model=llm)
    if vision_path is not None:
        load_vision_weights(model.vision_tower, vision_path, strict=True)
    if dtype is not None:
        model.to(dtype)  # type: ignore[arg-type]  # transformers' decorated .to confuses mypy
    model.processor = Mu2Processor(tok, num_image_tokens=model.num_image_tokens)
    log.info("built mu2 model size=%s preset=%s: %s", size, preset, model.parameter_counts())
    return model
