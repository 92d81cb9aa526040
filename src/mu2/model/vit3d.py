"""The MONAI ``ViT`` (perceptron patch embedding, classification layout) without importing MONAI.

Why hand-written: ``import monai`` imports every MONAI sub-package (data, apps, transforms,
...), about 4 s on a laptop CPU, which made ``mu2 report`` four times slower than a bare
``import torch`` while the tower itself is ~100 lines. This module builds the same modules
in the same order, so that

- the state-dict keys are MONAI's (``cls_token``, ``patch_embedding.position_embeddings``,
  ``blocks.N.attn.qkv.weight``, ``blocks.N.norm_cross_attn.*``, ``classification_head.0.*``):
  M3D-CLIP's ``pretrained_ViT.bin`` and every saved mu2 model load strictly;
- the random initialisation draws the same numbers from torch's RNG (same seed, same
  weights as ``monai.networks.nets.ViT``), and the forward computes the same operations.

``tests/model/test_vit3d.py`` checks both against MONAI itself (monai 1.4-1.6 layout).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mu2.errors import Mu2Error


def _trunc_normal(t: torch.Tensor, std: float = 0.02, a: float = -2.0, b: float = 2.0) -> None:
    """MONAI's (timm's) ``trunc_normal_``: inverse-CDF sampling. Written out because
    ``torch.nn.init.trunc_normal_`` switched to rejection sampling (torch 2.13), which draws
    other numbers from the same seed."""
    if t.is_meta:
        return

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        t.uniform_(2 * cdf(a / std) - 1, 2 * cdf(b / std) - 1)
        t.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(min=a, max=b)


class _Patchify(nn.Module):
    """(F, C, K, H, W) -> (F, gz*gy*gx, pz*py*px*C): einops ``b c (h p1) (w p2) (d p3) ->
    b (h w d) (p1 p2 p3 c)``, MONAI's perceptron layout (no parameters)."""

    def __init__(self, patch_size: tuple[int, int, int]) -> None:
        super().__init__()
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, k, h, w = x.shape
        p1, p2, p3 = self.patch_size
        x = x.reshape(b, c, k // p1, p1, h // p2, p2, w // p3, p3)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (b, gz, gy, gx, p1, p2, p3, c)
        return x.reshape(b, (k // p1) * (h // p2) * (w // p3), p1 * p2 * p3 * c)


class PatchEmbedding(nn.Module):
    """Patches -> Linear -> + learnable position embedding (MONAI ``PatchEmbeddingBlock``)."""

    def __init__(
        self,
        in_channels: int,
        img_size: tuple[int, int, int],
        patch_size: tuple[int, int, int],
        hidden_size: int,
        dropout_rate: float,
    ) -> None:
        super().__init__()
        n_patches = 1
        for i, p in zip(img_size, patch_size, strict=True):
            n_patches *= i // p
        patch_dim = in_channels * patch_size[0] * patch_size[1] * patch_size[2]
        self.patch_embeddings = nn.Sequential(
            _Patchify(patch_size), nn.Linear(patch_dim, hidden_size)
        )
        self.position_embeddings = nn.Parameter(torch.zeros(1, n_patches, hidden_size))
        self.dropout = nn.Dropout(dropout_rate)
        _trunc_normal(self.position_embeddings.data)
        for m in self.modules():  # MONAI's self.apply(self._init_weights)
            if isinstance(m, nn.Linear):
                _trunc_normal(m.weight.data)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(F, C, K, H, W) -> (F, N0, E)."""
        return self.dropout(self.patch_embeddings(x) + self.position_embeddings)


class MLPBlock(nn.Module):
    def __init__(self, hidden_size: int, mlp_dim: int, dropout_rate: float) -> None:
        super().__init__()
        self.linear1 = nn.Linear(hidden_size, mlp_dim or hidden_size)
        self.linear2 = nn.Linear(mlp_dim or hidden_size, hidden_size)
        self.fn = nn.GELU()
        self.drop1 = nn.Dropout(dropout_rate)
        self.drop2 = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.linear2(self.drop1(self.fn(self.linear1(x)))))


class SelfAttention(nn.Module):
    """MONAI ``SABlock`` (combined qkv, no bias by default); ``use_flash_attention`` picks
    ``F.scaled_dot_product_attention`` over the explicit softmax(QK^T)V."""

    def __init__(
        self, hidden_size: int, num_heads: int, dropout_rate: float, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dim_head = hidden_size // num_heads
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.qkv = nn.Linear(hidden_size, hidden_size * 3, bias=qkv_bias)
        self.drop_output = nn.Dropout(dropout_rate)
        self.drop_weights = nn.Dropout(dropout_rate)
        self.dropout_rate = dropout_rate
        self.scale = self.dim_head**-0.5
        self.use_flash_attention = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        # (b, n, 3*l*d) -> (3, b, l, n, d): einops "b h (qkv l d) -> qkv b l h d"
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.dim_head).permute(2, 0, 3, 1, 4)
        if self.use_flash_attention:
            p = self.dropout_rate if self.training else 0.0
            x = F.scaled_dot_product_attention(q, k, v, scale=self.scale, dropout_p=p)
        else:
            att = (torch.einsum("blxd,blyd->blxy", q, k) * self.scale).softmax(dim=-1)
            x = torch.einsum("bhxy,bhyd->bhxd", self.drop_weights(att), v)
        x = x.permute(0, 2, 1, 3).reshape(b, n, -1)  # (b, l, n, d) -> (b, n, l*d)
        return self.drop_output(self.out_proj(x))


class TransformerBlock(nn.Module):
    """Pre-norm block. ``norm_cross_attn`` is never called: MONAI >= 1.4 creates it in every
    block, so it stays for the key layout (see ``mu2.model.vision.UNUSED_KEY``)."""

    def __init__(self, hidden_size: int, mlp_dim: int, num_heads: int, dropout_rate: float):
        super().__init__()
        self.mlp = MLPBlock(hidden_size, mlp_dim, dropout_rate)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.attn = SelfAttention(hidden_size, num_heads, dropout_rate)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.norm_cross_attn = nn.LayerNorm(hidden_size)
        self.cross_attn = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT3D(nn.Module):
    """``monai.networks.nets.ViT(proj_type="perceptron", classification=True, spatial_dims=3)``.

    Only what mu2 uses: the tower's forward (``mu2.model.vision.VisionTower``) runs
    ``patch_embedding``, ``blocks`` and ``norm`` itself; the head exists for the key layout.
    """

    def __init__(
        self,
        in_channels: int,
        img_size: tuple[int, int, int],
        patch_size: tuple[int, int, int],
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_layers: int = 12,
        num_heads: int = 12,
        dropout_rate: float = 0.0,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        if not 0 <= dropout_rate <= 1 or hidden_size % num_heads:
            raise Mu2Error(
                f"ViT: dropout {dropout_rate} must be in [0, 1] and hidden size {hidden_size} "
                f"a multiple of {num_heads} heads"
            )
        self.patch_embedding = PatchEmbedding(
            in_channels, img_size, patch_size, hidden_size, dropout_rate
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden_size, mlp_dim, num_heads, dropout_rate)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.classification_head = nn.Sequential(nn.Linear(hidden_size, num_classes), nn.Tanh())
