"""ViT3D: the M3D-CLIP vision tower (MONAI's ``ViT``) applied to each frame of a volume.

``VisionTower.vit`` has MONAI's module layout (:mod:`mu2.model.vit3d`) so that an M3D-CLIP
``pretrained_ViT.bin`` state dict (MONAI key names: ``cls_token``,
``patch_embedding.position_embeddings``, ``blocks.N.mlp.linear1.weight``, ...) loads strictly.
Its classification head exists only for that key layout: the tower returns the normed
patch tokens of the last layer with the CLS token dropped, as M3D does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.checkpoint import checkpoint

from mu2.errors import Mu2Error
from mu2.model.vit3d import ViT3D

log = logging.getLogger(__name__)

# Sub-modules of MONAI's ViT that the forward never calls: the classification head (kept for
# the M3D-CLIP key layout) and the LayerNorm that MONAI >= 1.4 adds to every block for
# optional cross-attention. Older checkpoints (M3D-CLIP's was saved with an older MONAI)
# lack the latter, so they may be missing on load; they are frozen so DDP waits for no
# gradient from them.
UNUSED_KEY = re.compile(r"^(classification_head\.|blocks\.\d+\.norm_cross_attn\.)")
OPTIONAL_KEY = re.compile(r"^blocks\.\d+\.norm_cross_attn\.")

# Prefixes a saved vision tower may carry (our wrapper, DDP, M3D's CLIP model); stripped on load.
KNOWN_PREFIXES: tuple[str, ...] = (
    "vit.",
    "vision_tower.vit.",
    "vision_tower.",
    "vision_encoder.",
    "module.",
)


@dataclass
class VisionConfig:
    """MONAI ViT layout; sizes come from the builders (paper: exactly M3D-CLIP)."""

    img_size: tuple[int, int, int]
    """(K, H, W) of one frame."""
    patch_size: tuple[int, int, int]
    hidden_size: int
    mlp_dim: int
    num_layers: int
    num_heads: int
    proj_type: str = "perceptron"
    dropout: float = 0.0
    sdpa: bool = True
    """Attention through ``F.scaled_dot_product_attention`` (MONAI's ``use_flash_attention``
    switch, which its ``ViT`` constructor does not expose): same weights and outputs within
    float error, 2-3x faster forward + backward of the tiny tower on CPU (BENCHMARKS.md)."""

    def __post_init__(self) -> None:
        self.img_size = tuple(int(v) for v in self.img_size)
        self.patch_size = tuple(int(v) for v in self.patch_size)
        bad = [
            f"{i}/{p}"
            for i, p in zip(self.img_size, self.patch_size, strict=True)
            if i % p or p < 1
        ]
        if bad:
            raise Mu2Error(
                f"vision img_size {self.img_size} is not a multiple of patch {self.patch_size}"
            )
        if self.proj_type != "perceptron":
            raise Mu2Error(
                f"vision proj_type {self.proj_type!r}: only 'perceptron' (M3D-CLIP) is supported"
            )

    @property
    def grid(self) -> tuple[int, int, int]:
        """(gz, gy, gx) patch grid of one frame."""
        return tuple(i // p for i, p in zip(self.img_size, self.patch_size, strict=True))


class VisionTower(nn.Module):
    """(F, 1, K, H, W) frames -> (F, N0, E_v) patch tokens, N0 = gz*gy*gx, CLS dropped."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        self.config = config
        # MONAI's ViT layout and init, without importing MONAI (see mu2.model.vit3d);
        # classification layout (cls_token + classification_head keys) as in M3D-CLIP.
        self.vit = ViT3D(
            in_channels=1,
            img_size=config.img_size,
            patch_size=config.patch_size,
            hidden_size=config.hidden_size,
            mlp_dim=config.mlp_dim,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            dropout_rate=config.dropout,
        )
        for block in self.vit.blocks:
            block.attn.use_flash_attention = bool(config.sdpa)
        self.freeze_unused()
        self.gradient_checkpointing = False  # set by PreTrainedModel.gradient_checkpointing_enable

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.config.grid

    def freeze_unused(self) -> None:
        """No gradient for the parameters the forward never uses (see UNUSED_KEY)."""
        for name, p in self.vit.named_parameters():
            if UNUSED_KEY.match(name):
                p.requires_grad_(False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (F, 1, K, H, W) -> tokens (F, N0, E_v)."""
        x = self.vit.patch_embedding(frames)  # (F, N0, E_v), position embedding added
        cls = self.vit.cls_token.expand(x.shape[0], -1, -1)  # (F, 1, E_v)
        x = torch.cat([cls, x], dim=1)  # (F, 1 + N0, E_v)
        for block in self.vit.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        x = self.vit.norm(x)
        return x[:, 1:]  # drop CLS: (F, 1 + N0, E_v) -> (F, N0, E_v)


def _vit_of(module: nn.Module) -> nn.Module:
    return module.vit if isinstance(module, VisionTower) else module


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file (``weights_only=True``: no pickled code)."""
    p = Path(path)
    if not p.is_file():
        raise Mu2Error("vision weights not found", path=str(p), fix="pass an existing weights file")
    try:
        if p.suffix == ".safetensors":
            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupted or foreign file: one clear line
        raise Mu2Error(
            f"cannot read weights ({err.__class__.__name__}: {err})", path=str(p)
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Mu2Error("file does not hold a state dict of tensors", path=str(p))
    return state


def _strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    if set(state) & expected:
        return state
    for prefix in KNOWN_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_vision_weights(module: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load an M3D-CLIP / MONAI-ViT state dict (or one saved by ``save_vision_weights``)."""
    vit = _vit_of(module)
    state = _strip_prefix(read_state_dict(path), set(vit.state_dict()))
    own = vit.state_dict()
    optional = {k for k in set(own) - set(state) if OPTIONAL_KEY.match(k)}
    if optional:
        log.info(
            "%d unused MONAI cross-attention norm keys not in %s: kept at init", len(optional), path
        )
        state = {**state, **{k: own[k] for k in optional}}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    ]
    if shapes or (strict and (missing or unexpected)):
        detail = "; ".join(
            part
            for part in (
                f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                f"shape mismatch: {shapes[:3]}" if shapes else "",
            )
            if part
        )
        raise Mu2Error(
            f"weights do not fit the vision tower: {detail}",
            path=str(path),
            fix="use weights of the same ViT layout (size 'paper' = M3D-CLIP pretrained_ViT.bin)",
        )
    vit.load_state_dict(state, strict=strict)
    log.info("loaded vision weights from %s (%d tensors)", path, len(state))


def save_vision_weights(module: nn.Module, path: str | Path) -> None:
    """Save the MONAI ViT state dict (MONAI key names) as safetensors."""
    vit = _vit_of(module)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in vit.state_dict().items()}, str(path))
