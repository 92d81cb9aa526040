"""The MONAI-free ViT gives MONAI's ViT: same keys, same seeded init, same tokens."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ViT

from mu2.model.vit3d import ViT3D

LAYOUT = dict(img_size=(4, 16, 16), patch_size=(2, 4, 4), hidden_size=32, mlp_dim=64,
              num_layers=2, num_heads=4)  # fmt: skip


def _monai(**kw) -> ViT:
    return ViT(in_channels=1, proj_type="perceptron", classification=True, spatial_dims=3,
               **LAYOUT, **kw)  # fmt: skip


def test_same_seed_gives_the_same_weights_as_monai():
    torch.manual_seed(7)
    ref = _monai().state_dict()
    torch.manual_seed(7)
    own = ViT3D(in_channels=1, **LAYOUT).state_dict()
    assert list(own) == list(ref)
    for k, v in ref.items():
        assert torch.equal(own[k], v), k


@pytest.mark.parametrize("fused", [False, True])
def test_forward_matches_monai_bit_for_bit(fused):
    torch.manual_seed(3)
    ref = _monai().eval()
    own = ViT3D(in_channels=1, **LAYOUT).eval()
    own.load_state_dict(ref.state_dict())
    for a, b in zip(ref.blocks, own.blocks, strict=True):
        a.attn.use_flash_attention = b.attn.use_flash_attention = fused
    x = torch.rand(3, 1, *LAYOUT["img_size"])
    with torch.no_grad():
        y_ref, y_own = ref.patch_embedding(x), own.patch_embedding(x)
        assert torch.equal(y_own, y_ref)
        for a, b in zip(ref.blocks, own.blocks, strict=True):
            y_ref, y_own = a(y_ref), b(y_own)
        assert torch.equal(own.norm(y_own), ref.norm(y_ref))
