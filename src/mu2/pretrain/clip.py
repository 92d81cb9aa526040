"""Stage-0 model: the mu2 ViT3D as a CLIP image tower, a small text tower, a findings head.

Notation: B batch, T frames, K slices per frame, H/W pixels, N0 ViT patches per frame,
N tokens per frame after the projector, W projector width, P pooled width, E embedding
width, L text length, C findings labels.

Image tower: VisionTower (the very class and layout the SFT model of the same size
builds, so its weights load there by path) -> SpatialPoolingProjector -> pooling over
tokens and frames -> linear -> E. Loss: symmetric InfoNCE with a learned temperature
(CLIP), plus binary cross-entropy of an auxiliary multi-label head on the pooled image
features against the structured findings (when the data has them), and optionally two
dense targets on the ViT patches: their intensity histograms, and whether they hold a
focal lesion (from label maps).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mu2.config import from_dict, to_dict
from mu2.errors import Mu2Error
from mu2.model.projector import SpatialPoolingProjector
from mu2.model.vision import VisionConfig, VisionTower, save_vision_weights
from mu2.pretrain.cases import LabelSpace
from mu2.pretrain.config import CLIP_INIT_TEMPERATURE, CLIP_MAX_LOGIT_SCALE, ClipModelOptions
from mu2.pretrain.text_encoder import TextEncoder

VISION_FILE = "vision.safetensors"  # the stage-0 product: SFT's model.vision_path
CLIP_FILE = "clip.safetensors"
CLIP_CONFIG_FILE = "clip_config.json"
TOKENIZER_DIR = "text_tokenizer"


def clip_loss(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE of L2-normalised (B, E) embeddings; pair i is row i of both.

    Mean of the image->text and text->image cross-entropies over the (B, B) similarity
    logits scaled by ``logit_scale`` (CLIP, Radford et al. 2021).
    """
    logits = logit_scale * image_embeds @ text_embeds.T  # (B, E) x (E, B) -> (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def pool_tokens(tokens: torch.Tensor, frame_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """tokens (B, T, N, W) with frame_mask (B, T) -> (B, P): mean (P = W) or mean and max
    (P = 2W) over all tokens of the real frames."""
    mask = frame_mask[:, :, None, None].to(tokens.dtype)  # (B, T, 1, 1)
    count = mask.sum((1, 2)) * tokens.shape[2]  # (B, 1): real tokens per volume
    mean = (tokens * mask).sum((1, 2)) / count.clamp(min=1.0)  # (B, T, N, W) -> (B, W)
    if mode == "mean":
        return mean
    low = torch.finfo(tokens.dtype).min
    peak = tokens.masked_fill(mask == 0, low).amax((1, 2))  # (B, T, N, W) -> (B, W)
    return torch.cat([mean, peak], dim=-1)  # (B, 2W)


def patch_histograms(frames: torch.Tensor, patch: tuple[int, int, int], bins: int) -> torch.Tensor:
    """frames (F, 1, K, H, W) in [0, 1] -> (F, N0, bins): the share of each patch's voxels
    in each of ``bins`` equal intensity bins, patches in the ViT's token order."""
    f, _, k, h, w = frames.shape
    pz, py, px = patch
    x = frames.reshape(f, k // pz, pz, h // py, py, w // px, px)  # (F, gz, pz, gy, py, gx, px)
    x = x.permute(0, 1, 3, 5, 2, 4, 6).reshape(f, -1, pz * py * px)  # (F, N0, voxels)
    index = (x.clamp(0.0, 1.0) * bins).long().clamp(max=bins - 1)  # (F, N0, voxels)
    counts = torch.zeros(*index.shape[:2], bins, device=x.device, dtype=x.dtype)
    counts.scatter_add_(2, index, torch.ones_like(x))  # (F, N0, bins)
    return counts / x.shape[-1]


def lesion_loss(
    logits: torch.Tensor, share: torch.Tensor, valid: torch.Tensor, min_share: float
) -> torch.Tensor:
    """Localising target of stage 0: logits (B, P) of "this patch holds a lesion" for the P
    patches of each scan, their lesion-voxel share (B, P), ``valid`` (B, P) False on padded
    frames -> scalar, the sum of two terms.

    * Patches: class-balanced binary cross-entropy. Lesion patches (share >= min_share)
      and lesion-free ones (share 0) weigh the same, since a nodule is a few of a batch's
      thousands of patches; patches with only a sliver of lesion are left out.
    * Scans: binary cross-entropy of each scan's highest patch logit against "the scan has
      a lesion patch". A patch AUC of 0.99 still leaves about ten false patches per
      scan of 1,024, and a reader of the tokens needs the scan's peak to mean a lesion.
    """
    positive = (share >= min_share) & valid  # (B, P)
    negative = (share <= 0) & valid
    bce = F.binary_cross_entropy_with_logits(logits, positive.to(logits.dtype), reduction="none")
    means = [bce[m].mean() for m in (positive, negative) if bool(m.any())]
    patches = torch.stack(means).mean() if means else logits.new_zeros(())
    peak = logits.masked_fill(~valid, torch.finfo(logits.dtype).min).amax(1)  # (B,)
    scans = F.binary_cross_entropy_with_logits(peak, positive.any(1).to(logits.dtype))
    return patches + scans


def histogram_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) over the last axis, mean over the other axes."""
    log_q = F.log_softmax(logits, dim=-1)
    entropy = -(target * target.clamp(min=1e-12).log()).sum(-1)
    return (-(target * log_q).sum(-1) - entropy).mean()


@dataclass
class ClipOutput:
    loss: torch.Tensor
    clip_loss: torch.Tensor
    findings_loss: torch.Tensor
    histogram_loss: torch.Tensor
    lesion_loss: torch.Tensor
    organ_loss: torch.Tensor
    image_embeds: torch.Tensor  # (B, E), unit norm
    text_embeds: torch.Tensor | None  # (B, E), unit norm
    findings_logits: torch.Tensor | None  # (B, C)
    logit_scale: torch.Tensor  # scalar, after the clamp


class ClipModel(nn.Module):
    """Image tower + text tower + optional findings head; plain constructor arguments."""

    def __init__(
        self,
        vision: VisionTower,
        text: TextEncoder,
        *,
        embed_dim: int,
        projector_pool: int,
        pool: str = "meanmax",
        num_labels: int = 0,
        init_logit_scale: float = math.log(1 / CLIP_INIT_TEMPERATURE),
        max_logit_scale: float = CLIP_MAX_LOGIT_SCALE,
        clip_weight: float = 1.0,
        findings_weight: float = 1.0,
        histogram_bins: int = 0,
        histogram_weight: float = 0.0,
        lesion_weight: float = 0.0,
        lesion_min_share: float = 0.05,
        lesion_head: str = "linear",
        organ_groups: int = 0,
        organ_weight: float = 0.0,
    ):
        super().__init__()
        if pool not in ("mean", "meanmax"):
            raise Mu2Error(f"model.pool is {pool!r}", fix="use mean or meanmax")
        self.vision = vision
        self.projector = SpatialPoolingProjector(
            vision.config.hidden_size, embed_dim, vision.grid, projector_pool
        )
        self.pool = pool
        pooled = embed_dim * (2 if pool == "meanmax" else 1)
        self.pool_norm = nn.LayerNorm(pooled)
        self.image_proj = nn.Linear(pooled, embed_dim, bias=False)
        self.text = text
        self.text_proj = nn.Linear(text.width, embed_dim, bias=False)
        self.findings_head = nn.Linear(pooled, num_labels) if num_labels else None
        self.histogram_head = (
            nn.Linear(vision.config.hidden_size, histogram_bins)
            if histogram_bins and histogram_weight
            else None
        )
        self.histogram_bins = histogram_bins
        self.histogram_weight = histogram_weight if self.histogram_head is not None else 0.0
        # Linear or a small MLP (``ClipModelOptions.lesion_head``): a linear head makes the
        # tower itself hold a lesion direction, for SFT's projector to read.
        hidden = vision.config.hidden_size
        if lesion_head not in ("linear", "mlp"):
            raise Mu2Error(f"model.lesion_head is {lesion_head!r}", fix="use linear or mlp")
        self.lesion_head = None
        if lesion_weight and lesion_head == "mlp":
            self.lesion_head = nn.Sequential(
                nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
            )
        elif lesion_weight:
            self.lesion_head = nn.Linear(hidden, 1)
        self.lesion_weight = lesion_weight
        self.lesion_min_share = lesion_min_share
        # Linear, so that the tower's patches carry each organ's share as a direction, and a
        # pooled mean of them its volume.
        self.organ_head = (
            nn.Linear(hidden, organ_groups + 1) if organ_groups and organ_weight else None
        )
        self.organ_weight = organ_weight if self.organ_head is not None else 0.0
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.max_log_scale = math.log(max_logit_scale)
        self.clip_weight = clip_weight
        self.findings_weight = findings_weight if num_labels else 0.0
        # Input standardisation seen by the tower during stage 0 only; folded into the
        # patch embedding on export, so the saved tower takes the raw [0, 1] frames.
        self.register_buffer("input_mean", torch.tensor(0.0))
        self.register_buffer("input_std", torch.tensor(1.0))

    def set_input_norm(self, mean: float, std: float) -> None:
        """Standardise frames as (x - mean) / std before the tower (training speed: a
        from-scratch ViT learns several times faster on zero-mean, unit-variance input)."""
        if not std > 0:
            raise Mu2Error(f"input std must be > 0, got {std}")
        self.input_mean.fill_(float(mean))
        self.input_std.fill_(float(std))

    def export_vision(self) -> VisionTower:
        """The tower as SFT uses it: raw frames in, the same tokens out (normalisation folded)."""
        return fold_input_norm(self.vision, float(self.input_mean), float(self.input_std))

    def image_features(
        self, pixel_values: torch.Tensor, frame_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """pixel_values (B, T, K, H, W), frame_mask (B, T) -> pooled features (B, P)."""
        return self._encode(pixel_values, frame_mask)[0]

    def _encode(
        self,
        pixel_values: torch.Tensor,
        frame_mask: torch.Tensor | None,
        lesion_share: torch.Tensor | None = None,
        organ_share: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> pooled features (B, P) and the histogram, lesion and organ losses of the patch
        tokens (scalars; 0 when off, when evaluating, or without ``lesion_share``
        (B, T, gz, gy, gx) / ``organ_share`` (B, G, T, gz, gy, gx))."""
        b, t, k, h, w = pixel_values.shape
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=pixel_values.device)
        frame_mask = frame_mask.to(pixel_values.device).bool()
        real = frame_mask.reshape(-1).nonzero().squeeze(1)  # (F,) indices of real frames
        frames = pixel_values.reshape(b * t, 1, k, h, w)[real]  # (F, 1, K, H, W)
        patches = self.vision((frames - self.input_mean) / self.input_std)  # (F, N0, E_v)
        hist = patches.new_zeros(())
        if self.histogram_head is not None and self.training:
            target = patch_histograms(frames, self.vision.config.patch_size, self.histogram_bins)
            hist = histogram_loss(self.histogram_head(patches), target)  # (F, N0, bins) -> ()
        lesion = patches.new_zeros(())
        if self.lesion_head is not None and self.training and lesion_share is not None:
            n0 = patches.shape[1]
            logits = self.lesion_head(patches)[..., 0]  # (F, N0, E_v) -> (F, N0)
            full = logits.new_zeros(b * t, n0).index_copy(0, real, logits)  # (B*T, N0)
            share = lesion_share.to(logits).reshape(b, t * n0)  # (B, T, gz, gy, gx) -> (B, P)
            valid = frame_mask[:, :, None].expand(b, t, n0).reshape(b, t * n0)  # (B, P)
            lesion = lesion_loss(full.view(b, t * n0), share, valid, self.lesion_min_share)
        organ = patches.new_zeros(())
        if self.organ_head is not None and self.training and organ_share is not None:
            # (B, G, T, gz, gy, gx) -> (B, T, N0, G) -> real frames (F, N0, G)
            groups = organ_share.to(patches).flatten(3).permute(0, 2, 3, 1)
            groups = groups.reshape(b * t, -1, groups.shape[-1])[real]
            rest = (1 - groups.sum(-1, keepdim=True)).clamp(min=0)  # (F, N0, 1)
            target = torch.cat([groups, rest], -1)  # (F, N0, G + 1), rows sum to 1
            organ = histogram_loss(self.organ_head(patches), target)  # (F, N0, G + 1) -> ()
        tokens = self.projector(patches)  # (F, N0, E_v) -> (F, N, W)
        n, width = tokens.shape[1:]
        grid = tokens.new_zeros(b * t, n, width).index_copy(0, real, tokens)  # (B*T, N, W)
        pooled = pool_tokens(grid.view(b, t, n, width), frame_mask, self.pool)  # (B, P)
        return self.pool_norm(pooled), hist, lesion, organ

    def embed_images(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, P) -> unit-norm embeddings (B, E)."""
        return F.normalize(self.image_proj(features), dim=-1)

    def embed_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, L) -> unit-norm embeddings (B, E)."""
        return F.normalize(self.text_proj(self.text(input_ids, attention_mask)), dim=-1)

    def scale(self) -> torch.Tensor:
        """exp of the learned log scale, capped (CLIP clamps it at 100)."""
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(
        self,
        pixel_values: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        lesion_share: torch.Tensor | None = None,
        organ_share: torch.Tensor | None = None,
    ) -> ClipOutput:
        features, hist, lesion, organ = self._encode(
            pixel_values, frame_mask, lesion_share, organ_share
        )  # (B, P)
        image_embeds = self.embed_images(features)  # (B, E)
        scale = self.scale()
        zero = features.new_zeros(())
        text_embeds, contrastive = None, zero
        if input_ids is not None:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            text_embeds = self.embed_texts(input_ids, attention_mask)  # (B, E)
            contrastive = clip_loss(image_embeds, text_embeds, scale)
        logits, findings = None, zero
        if self.findings_head is not None:
            logits = self.findings_head(features)  # (B, C)
            if labels is not None:
                findings = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        loss = (
            self.clip_weight * contrastive
            + self.findings_weight * findings
            + self.histogram_weight * hist
            + self.lesion_weight * lesion
            + self.organ_weight * organ
        )
        return ClipOutput(
            loss, contrastive, findings, hist, lesion, organ,
            image_embeds, text_embeds, logits, scale,
        )  # fmt: skip


def fold_input_norm(vision: VisionTower, mean: float, std: float) -> VisionTower:
    """A copy of ``vision`` that maps raw frames x to what ``vision`` gives for (x - mean) / std.

    The patch embedding is affine in its input: W((x - m) / s) + b = (W / s) x + (b - (m / s)
    W 1), so the standardisation moves into its weight and bias exactly.
    """
    out = copy.deepcopy(vision)
    embed = out.vit.patch_embedding.patch_embeddings
    layer = embed[-1] if isinstance(embed, nn.Sequential) else embed  # Linear or Conv3d
    with torch.no_grad():
        dims = tuple(range(1, layer.weight.dim()))
        layer.bias -= (mean / std) * layer.weight.sum(dim=dims)
        layer.weight /= std
    return out


def vision_layout(size: str) -> tuple[VisionConfig, int]:
    """The vision config and projector pool of the mu2 model of ``size`` (from its builder)."""
    from mu2.model.builders import PROJECTOR_POOL, vision_config

    if size not in ("tiny", "paper"):
        raise Mu2Error(f"model.size is {size!r}", fix="use tiny or paper")
    return vision_config(size), PROJECTOR_POOL


def build_clip_model(
    opts: ClipModelOptions, vocab_size: int, pad_token_id: int, num_labels: int, seed: int = 0
) -> ClipModel:
    """A stage-0 model with fresh weights drawn from ``seed`` (global RNG untouched), the
    vision tower optionally loaded from ``opts.vision_path``."""
    from mu2.model.vision import load_vision_weights

    vision_cfg, projector_pool = vision_layout(opts.size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vision = VisionTower(vision_cfg)
        text = TextEncoder(
            vocab_size, opts.text_width, opts.text_layers, opts.text_heads,
            opts.text_max_length, pad_token_id,
        )  # fmt: skip
        model = ClipModel(
            vision,
            text,
            embed_dim=opts.embed_dim,
            projector_pool=projector_pool,
            pool=opts.pool,
            num_labels=num_labels,
            init_logit_scale=opts.init_logit_scale,
            max_logit_scale=opts.max_logit_scale,
            clip_weight=opts.clip_weight,
            findings_weight=opts.findings_weight,
            histogram_bins=opts.histogram_bins,
            histogram_weight=opts.histogram_weight,
            lesion_weight=opts.lesion_weight,
            lesion_min_share=opts.lesion_min_share,
            lesion_head=opts.lesion_head,
            organ_groups=len(opts.organ_labels),
            organ_weight=opts.organ_weight,
        )
    if opts.vision_path:
        load_vision_weights(model.vision, opts.vision_path, strict=True)
    return model


def save_clip(
    model: ClipModel,
    tokenizer: PreTrainedTokenizerBase,
    labels: LabelSpace,
    opts: ClipModelOptions,
    out: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the vision tower (``vision.safetensors``, MONAI key names, for SFT's
    ``model.vision_path``) and the whole stage-0 model with its tokenizer and labels."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_vision_weights(model.export_vision(), out / VISION_FILE)
    state = state_dict if state_dict is not None else model.state_dict()
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(out / CLIP_FILE))
    tokenizer.save_pretrained(str(out / TOKENIZER_DIR))
    meta = {
        "model": to_dict(opts),
        "labels": labels.names,
        "vocab_size": model.text.token_embedding.num_embeddings,
        "pad_token_id": model.text.token_embedding.padding_idx,
    }
    (out / CLIP_CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return out


def load_clip(folder: str | Path) -> tuple[ClipModel, PreTrainedTokenizerBase, LabelSpace]:
    """A stage-0 model saved by :func:`save_clip` (weights via safetensors only)."""
    folder = Path(folder)
    if not (folder / CLIP_CONFIG_FILE).is_file():
        raise Mu2Error(
            f"not a stage-0 folder (no {CLIP_CONFIG_FILE})",
            path=str(folder),
            fix="pass the final/ folder of `mu2 train clip`",
        )
    meta: dict[str, Any] = json.loads((folder / CLIP_CONFIG_FILE).read_text())
    opts = from_dict(ClipModelOptions, {**meta["model"], "vision_path": None})
    labels = LabelSpace(list(meta["labels"]))
    model = build_clip_model(opts, meta["vocab_size"], meta["pad_token_id"], len(labels))
    model.load_state_dict(load_file(str(folder / CLIP_FILE)), strict=True)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder / TOKENIZER_DIR))
    return model, tokenizer, labels
