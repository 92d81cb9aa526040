"""ViT3D: the M3D-CLIP vision tower (MONAI's ``ViT``) applied to each frame of a volume.

``VisionTower.vit`` has MONAI's module layout (:mod:`mu2.model.vit3d`) so that an M3D-CLIP
``pretrained_ViT.bin`` state dict (MONAI key names: ``cls_token``,
``patch_embedding.position_embeddings``, ``blocks.N.mlp.linear1.weight``, ...) loads strictly.
M3D's own ViT class (LaMed ``multimodal_encoder/vit.py``) keeps ``cls_token`` but has no
classification head, so its files lack ``classification_head.*``; MONAI's class has one.
The tower never calls the head: it returns the normed patch tokens of the last layer with
the CLS token dropped, as M3D does, so head keys are optional on load. A full M3D-CLIP
checkpoint (``vision_encoder.*`` beside ``language_encoder.*``, the projections and
``logit_scale``) loads too: its vision keys are found by their prefix.
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

# Sub-modules of MONAI's ViT that the forward never calls: the classification head (MONAI
# builds it; M3D's ViT has none) and the LayerNorm that MONAI >= 1.4 adds to every block
# for optional cross-attention (M3D-CLIP's file was saved with an older MONAI). Files may
# lack both, so they may be missing on load (kept at init); they are frozen so DDP waits
# for no gradient from them.
UNUSED_KEY = re.compile(r"^(classification_head\.|blocks\.\d+\.norm_cross_attn\.)")
OPTIONAL_KEY = UNUSED_KEY
# File names looked for when a folder is given (M3D-CLIP's Hugging Face folder ships the
# tower alone as pretrained_ViT.bin and the whole CLIP model as model.safetensors / .bin).
WEIGHT_FILES: tuple[str, ...] = (
    "pretrained_ViT.bin",
    "vision_tower.safetensors",
    "model.safetensors",
    "pytorch_model.bin",
)

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
        iz, iy, ix = (int(v) for v in self.img_size)
        pz, py, px = (int(v) for v in self.patch_size)
        self.img_size, self.patch_size = (iz, iy, ix), (pz, py, px)
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
        (iz, iy, ix), (pz, py, px) = self.img_size, self.patch_size
        return iz // pz, iy // py, ix // px


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
            block.attn.use_flash_attention = bool(config.sdpa)  # type: ignore[union-attr]
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
    """A state dict from safetensors or a torch file (``weights_only=True``: no pickled code).

    A folder is searched for the file names of :data:`WEIGHT_FILES`, in that order.
    """
    p = Path(path)
    if p.is_dir():
        found = [p / name for name in WEIGHT_FILES if (p / name).is_file()]
        if not found:
            raise Mu2Error(
                "no vision weights in the folder",
                path=str(p),
                fix=f"put one of {', '.join(WEIGHT_FILES)} there or pass the file itself",
            )
        p = found[0]
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
    """The tower's keys of ``state``: as they are, or under the one known prefix that holds
    them (a whole M3D-CLIP model keeps its tower under ``vision_encoder.`` next to the text
    encoder; the other keys are not the tower's and are left out)."""
    if set(state) & expected:
        return state
    required = {k for k in expected if not OPTIONAL_KEY.match(k)}
    for prefix in KNOWN_PREFIXES:
        inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if len(inner) == len(state) or (inner and set(inner) & required):
            if len(inner) < len(state):
                log.info("vision keys found under %r (%d other keys left out)", prefix,
                         len(state) - len(inner))  # fmt: skip
            return inner
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
