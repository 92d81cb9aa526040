"""Mu2ForConditionalGeneration: ViT3D -> projector -> visual tokenizer -> Hugging Face causal LM.

Notation: B batch, T frames, K slices per frame, H/W pixels, N0 ViT patches per frame,
N tokens per frame after the projector, E LLM width, Q visual tokens, L text length.

The visual tokens replace the run of image placeholders in the prompt (LLaVA style: count
check, then ``masked_scatter``); question embeddings for the TTA come from the LLM's own
embedding table. ``generate`` returns only the new tokens; its defaults come from the
model's ``generation_config`` (``generation_config.json`` next to the weights).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from mu2.errors import Mu2Error
from mu2.model import adapters, auto
from mu2.model.card import CARD_FILE, ModelCard, load_card, save_card
from mu2.model.configuration import Mu2Config
from mu2.model.processing import Mu2Processor
from mu2.model.projector import SpatialPoolingProjector
from mu2.model.vision import VisionTower
from mu2.tokenizer import build_visual_tokenizer

log = logging.getLogger(__name__)



@dataclass
class ImageEncoding:
    tokens: torch.Tensor  # (B, Q, E) visual tokens for the LLM
    mask: torch.Tensor  # (B, Q) bool: False for tokens the LLM must not attend to (spp padding)
    attribution: torch.Tensor | None = None  # (B, T, gz, gy, gx) relevance of every ViT patch


class Mu2ForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config_class = Mu2Config
    base_model_prefix = "mu2"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["SpatioTemporalBlock", "AggregationLayer", "TransformerBlock"]

    def __init__(self, config: Mu2Config, language_model: PreTrainedModel | None = None):
        super().__init__(config)
        vision = config.vision()
        self.vision_tower = VisionTower(vision)
        width = config.text_config.hidden_size  # type: ignore[union-attr]  # set by Mu2Config
        self.projector = SpatialPoolingProjector(
            vision.hidden_size, width, vision.grid, config.projector_pool
        )
        tok = config.tokenizer()
        if tok.width != width or tok.grid != self.projector.out_grid:
            raise Mu2Error(
                f"tokenizer config (width {tok.width}, grid {tok.grid}) does not match the "
                f"LLM width {width} and projector grid {self.projector.out_grid}"
            )
        self.visual_tokenizer = build_visual_tokenizer(tok)
        self.language_model = language_model or AutoModelForCausalLM.from_config(config.text_config)
        if self.language_model.config._attn_implementation is None:
            # Mu2Config(text_config=llm.config) resets the shared config's attention choice;
            # without one the LLM would not know how to apply its causal mask.
            self.language_model.set_attn_implementation(self.config._attn_implementation or "sdpa")
        self.processor: Mu2Processor | None = None  # attached by build() / from_pretrained()
        self.model_card: ModelCard | None = None  # what it was trained on (mu2.model.card)
        if config.lora:
            adapters.inject_lora(self.language_model, config.lora)
        self.post_init()
        if self.generation_config is None or self.generation_config.max_new_tokens is None:
            self.generation_config = auto.default_generation_config(config)

    # -- Hugging Face plumbing ---------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        """Our modules initialise themselves in their constructors (the LLM, a PreTrainedModel,
        keeps its own scheme); nothing to redo here."""

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        return self.language_model.get_output_embeddings()

    def enable_checkpointing(self) -> None:
        """Checkpoint the ViT blocks, the tokenizer layers and the LLM layers.

        transformers >= 5.23 calls this ``activation_checkpointing_enable`` and warns on the
        old ``gradient_checkpointing_enable``; both are public, whichever exists is used."""
        enable = getattr(self, "activation_checkpointing_enable", None)
        (enable or self.gradient_checkpointing_enable)()

    @property
    def num_image_tokens(self) -> int:
        return int(self.visual_tokenizer.num_output_tokens)  # type: ignore[arg-type]

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Weights (safetensors), config with ``auto_map``, generation_config.json, the
        processor/tokenizer, and with LoRA the adapter alone in peft's format (``adapter/``)."""
        self.config.auto_map = dict(auto.AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        auto.write_remote_code_shim(save_directory)
        if self.processor is not None:
            self.processor.save_pretrained(save_directory)
        if self.config.lora:
            adapters.save_adapter(self, Path(save_directory) / adapters.ADAPTER_SUBFOLDER)
        if self.model_card is not None:
            save_card(self.model_card, save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, adapter=None, **kwargs):
        """A saved folder or a Hub repo id (``owner/name``, through the local HF cache);
        ``adapter``: a peft LoRA adapter folder to load onto this base model."""
        path = auto.resolve_pretrained(pretrained_model_name_or_path, kwargs.get("revision"))
        if not (path / "config.json").is_file():
            raise Mu2Error(
                "not a mu2 model folder (no config.json)",
                path=str(path),
                fix="pass a folder written by save_pretrained / `mu2 train`",
            )
        model = super().from_pretrained(path, *args, **kwargs)
        _realign_cpu_parameters(model)
        if not (path / "generation_config.json").is_file():
            model.generation_config = auto.default_generation_config(model.config)
        if (path / "processor_config.json").is_file():
            model.processor = Mu2Processor.from_pretrained(path)
        if (path / CARD_FILE).is_file():
            model.model_card = load_card(path)
        if adapter is not None:
            adapters.load_adapter(model, adapter)
        return model

    # -- training switches --------------------------------------------------------------------
    def freeze(
        self,
        vision: bool | None = None,
        tokenizer: bool | None = None,
        llm: bool | None = None,
        projector: bool | None = None,
    ) -> None:
        """True freezes, False unfreezes, None leaves a part as it is. LoRA weights stay trainable."""
        for flag, part in ((vision, self.vision_tower), (projector, self.projector)):
            if flag is not None:
                part.requires_grad_(not flag)
        if vision is not None:
            self.vision_tower.freeze_unused()
        if tokenizer is not None:
            self.visual_tokenizer.requires_grad_(not tokenizer)
        if llm is not None:
            for name, p in self.language_model.named_parameters():
                if "lora_" not in name:
                    p.requires_grad_(not llm)

    def add_lora(
        self,
        r: int,
        alpha: float,
        target_modules: list[str] | tuple[str, ...] = adapters.LORA_DEFAULT_TARGETS,
        dropout: float = 0.0,
    ) -> None:
        """LoRA adapters (PEFT) on the LLM; the base LLM weights are frozen."""
        if self.config.lora:
            raise Mu2Error("this model already has LoRA adapters")
        settings = {
            "r": int(r),
            "alpha": float(alpha),
            "target_modules": list(target_modules),
            "dropout": dropout,
        }
        adapters.inject_lora(self.language_model, settings)
        self.config.lora = settings
        self.freeze(llm=True)

    def parameter_counts(self) -> dict[str, int]:
        parts = {
            "vision": self.vision_tower,
            "projector": self.projector,
            "tokenizer": self.visual_tokenizer,
            "llm": self.language_model,
        }
        counts = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
        counts["total"] = sum(counts.values())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

    # -- vision path -------------------------------------------------------------------------
    def encode_images(
        self,
        pixel_values: torch.Tensor,
        frame_mask: torch.Tensor | None,
        question_ids: torch.Tensor | None,
        question_mask: torch.Tensor | None,
        return_attribution: bool = False,
        patches: torch.Tensor | None = None,
    ) -> ImageEncoding:
        """pixel_values (B, T, K, H, W), frame_mask (B, T), question_ids/mask (B, L) -> (B, Q, E).

        ``patches``: the vision tower's output for the real frames (F, N0, E_v), in batch
        order, when the caller already has it (a frozen tower's outputs cached across
        epochs); the tower is then not run."""
        if pixel_values.dim() != 5:
            raise Mu2Error(
                f"pixel_values must be (B, T, K, H, W), got shape {tuple(pixel_values.shape)}",
                fix="batch prepared volumes with Mu2Processor.pad_frames",
            )
        b, t, k, h, w = pixel_values.shape
        expected = self.vision_tower.config.img_size
        if (k, h, w) != tuple(expected):
            raise Mu2Error(
                f"frames are {(k, h, w)} but this model's vision tower takes {tuple(expected)}",
                fix=f"prepare volumes with preprocessing size '{self.config.prep}'",
            )
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=pixel_values.device)
        frame_mask = frame_mask.to(pixel_values.device).bool()
        dtype: torch.dtype = self.projector.mlp[0].weight.dtype  # type: ignore[assignment]
        real = frame_mask.reshape(-1).nonzero().squeeze(1)  # (F,) indices of real frames
        if patches is None:  # with patches, pixel_values only gives the shape
            frames = pixel_values.reshape(b * t, 1, k, h, w)[real].to(dtype)  # (F, 1, K, H, W)
            patches = self.vision_tower(frames)  # (F, N0, E_v)
        tokens = self.projector(patches)  # (F, N, E)
        n, e = tokens.shape[1:]
        frame_tokens = tokens.new_zeros(b * t, n, e).index_copy(0, real, tokens)  # (B*T, N, E)
        frame_tokens = frame_tokens.view(b, t, n, e)  # (B, T, N, E)

        if question_ids is None:  # only the question-agnostic baselines can do without
            question_ids = torch.full((b, 1), self.config.text_config.pad_token_id or 0)
            question_mask = torch.zeros(b, 1, dtype=torch.bool)
        question_ids = question_ids.to(pixel_values.device)
        if question_mask is None:
            question_mask = torch.ones_like(question_ids, dtype=torch.bool)
        question_mask = question_mask.to(pixel_values.device).bool()
        text = self.get_input_embeddings()(question_ids).to(dtype)  # (B, L, E)

        out = self.visual_tokenizer(
            frame_tokens, frame_mask, text, question_mask, return_relevance=return_attribution
        )
        attribution = None
        if return_attribution and out.relevance is not None:
            # (B, T, N) -> (B, T, gz, gy, gx) on the ViT patch grid
            attribution = self.projector.backproject(out.relevance)
        return ImageEncoding(tokens=out.tokens, mask=out.mask, attribution=attribution)

    def _merge_inputs(
        self,
        pixel_values: torch.Tensor | None,
        frame_mask: torch.Tensor | None,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        question_ids: torch.Tensor | None,
        question_mask: torch.Tensor | None,
        image_encoding: ImageEncoding | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings (B, L, E) with the visual tokens scattered in, and the attention mask."""
        embeds = self.get_input_embeddings()(input_ids)  # (B, L, E)
        is_image = input_ids == self.config.image_token_id  # (B, L)
        if image_encoding is not None:
            enc = image_encoding
        elif pixel_values is not None:
            enc = self.encode_images(pixel_values, frame_mask, question_ids, question_mask)
        else:
            raise Mu2Error("pass pixel_values (or an image_encoding from encode_images)")
        counts = is_image.sum(dim=1).tolist()
        wanted = enc.tokens.shape[1]
        if any(c != wanted for c in counts):
            raise Mu2Error(
                f"the prompt holds {counts} image placeholder tokens per row but the visual "
                f"tokenizer produced {wanted} tokens",
                fix="build the prompt with this model's Mu2Processor",
            )
        visual = enc.tokens.to(embeds.dtype)  # (B, Q, E)
        embeds = embeds.masked_scatter(is_image[..., None].expand_as(embeds), visual)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not bool(enc.mask.all()):  # spp: tokens of padded frames are not attended to
            attention_mask = attention_mask.clone()
            attention_mask[is_image] = enc.mask.reshape(-1).to(attention_mask.dtype)
        return embeds, attention_mask

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        question_ids: torch.Tensor | None = None,
        question_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        image_encoding: ImageEncoding | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Logits (B, L, V); with ``labels`` the next-token loss on the report tokens only.

        ``image_encoding`` (from ``encode_images``) replaces pixel_values, so one encoding can
        serve several prompts."""
        if input_ids is None:
            raise Mu2Error("forward needs input_ids (see Mu2Processor)")
        embeds, attention_mask = self._merge_inputs(
            pixel_values,
            frame_mask,
            input_ids,
            attention_mask,
            question_ids,
            question_mask,
            image_encoding,
        )
        return self.language_model(
            inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs
        )

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        question_ids: torch.Tensor | None = None,
        question_mask: torch.Tensor | None = None,
        image_encoding: ImageEncoding | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """New tokens (B', L_new) for left-padded prompts; greedy, sampling or beam search
        through the LLM's own ``generate``. ``image_encoding`` may replace pixel_values.
        Settings not passed come from ``self.generation_config``."""
        if input_ids is None:
            raise Mu2Error("generate needs input_ids (see Mu2Processor)")
        embeds, attention_mask = self._merge_inputs(
            pixel_values,
            frame_mask,
            input_ids,
            attention_mask,
            question_ids,
            question_mask,
            image_encoding,
        )
        # The model's generation_config, updated by the caller's settings (transformers warns
        # when both a config and loose settings reach generate).
        config = copy.deepcopy(generate_kwargs.pop("generation_config", None) or self.generation_config)
        rest = config.update(**generate_kwargs)
        return self.language_model.generate(  # type: ignore[operator]
            inputs_embeds=embeds, attention_mask=attention_mask, generation_config=config, **rest
        )


CPU_ALIGNMENT = 64  # bytes; the alignment fresh CPU allocations get


def _realign_cpu_parameters(model: nn.Module) -> None:
    """Copy CPU weights that sit at unaligned offsets of the safetensors memory map.

    BLAS kernels pick their reduction order by alignment, so unaligned copies of the same
    weights give logits that differ in the last bits from the model that was saved.
    """
    with torch.no_grad():
        for p in model.parameters():
            if p.device.type == "cpu" and p.data_ptr() % CPU_ALIGNMENT:
                p.data = p.data.clone()
