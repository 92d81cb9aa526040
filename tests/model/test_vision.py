"""ViT3D: M3D-CLIP key layout, strict loads from a local file, save/load of the tower."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ViT
from safetensors.torch import save_file

from mu2.errors import Mu2Error
from mu2.model import load_vision_weights, save_vision_weights, vision_config
from mu2.model.vision import VisionConfig, VisionTower


def _monai_vit(cfg) -> ViT:
    """A MONAI ViT in the M3D-CLIP layout, built directly (as M3D's code does)."""
    return ViT(
        in_channels=1, img_size=cfg.img_size, patch_size=cfg.patch_size,
        hidden_size=cfg.hidden_size, mlp_dim=cfg.mlp_dim, num_layers=cfg.num_layers,
        num_heads=cfg.num_heads, proj_type="perceptron", classification=True, spatial_dims=3,
    )  # fmt: skip


def test_paper_tower_has_the_m3d_clip_layout():
    cfg = vision_config("paper")
    assert cfg.grid == (8, 16, 16)
    with torch.device("meta"):
        tower = VisionTower(cfg)
    keys = tower.vit.state_dict()
    assert len(keys) == 164
    assert keys["patch_embedding.patch_embeddings.1.weight"].shape == (768, 4 * 16 * 16)
    assert keys["patch_embedding.position_embeddings"].shape == (1, 2048, 768)
    assert "cls_token" in keys and "blocks.11.mlp.linear1.weight" in keys
    assert round(sum(p.numel() for p in tower.parameters()) / 1e6, 1) == 87.4


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_strict_load_of_a_monai_vit_state_dict(tmp_path, suffix):
    cfg = vision_config("tiny")
    torch.manual_seed(1)
    source = _monai_vit(cfg)
    path = tmp_path / f"pretrained_ViT{suffix}"
    if suffix == ".bin":
        torch.save(source.state_dict(), path)
    else:
        save_file(source.state_dict(), str(path))
    torch.manual_seed(2)
    tower = VisionTower(cfg).eval()
    load_vision_weights(tower, path, strict=True)
    for k, v in source.state_dict().items():
        assert torch.equal(tower.vit.state_dict()[k], v), k
    frames = torch.rand(3, 1, *cfg.img_size)
    tokens = tower(frames)
    assert tokens.shape == (3, 4 * 8 * 8, cfg.hidden_size)  # CLS dropped
    source.eval()
    with torch.no_grad():
        full, _ = source.patch_embedding(frames), None
        x = torch.cat([source.cls_token.expand(3, -1, -1), full], 1)
        for blk in source.blocks:
            x = blk(x)
        assert torch.allclose(tokens, source.norm(x)[:, 1:], atol=1e-5)


def test_mismatched_weights_raise_one_clear_error(tmp_path):
    cfg = vision_config("tiny")
    state = _monai_vit(cfg).state_dict()
    del state["blocks.0.attn.qkv.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.bin"
    torch.save(state, path)
    with pytest.raises(Mu2Error, match="1 missing.*1 unexpected"):
        load_vision_weights(VisionTower(cfg), path)
    with pytest.raises(Mu2Error, match="not found"):
        load_vision_weights(VisionTower(cfg), tmp_path / "nope.bin")


def test_save_then_load_round_trip(tmp_path):
    cfg = vision_config("tiny")
    a, b = VisionTower(cfg), VisionTower(cfg)
    save_vision_weights(a, tmp_path / "tower.safetensors")
    load_vision_weights(b, tmp_path / "tower.safetensors")
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_checkpoint_from_an_older_monai_without_cross_attention_norms_loads(tmp_path):
    """MONAI >= 1.4 adds an unused norm_cross_attn per block; M3D-CLIP's file predates it."""
    cfg = vision_config("tiny")
    state = {k: v for k, v in _monai_vit(cfg).state_dict().items() if "norm_cross_attn" not in k}
    torch.save(state, tmp_path / "old.bin")
    tower = VisionTower(cfg)
    load_vision_weights(tower, tmp_path / "old.bin", strict=True)
    assert all(torch.equal(tower.vit.state_dict()[k], v) for k, v in state.items())
    unused = [n for n, p in tower.named_parameters() if not p.requires_grad]
    assert unused and all("norm_cross_attn" in n or "classification_head" in n for n in unused)


def test_sdpa_attention_matches_monai_eager_attention():
    """The fused-attention switch changes speed only: same weights, same tokens and grads."""
    cfg = dict(img_size=(4, 16, 16), patch_size=(2, 4, 4), hidden_size=32, mlp_dim=64,
               num_layers=2, num_heads=4)  # fmt: skip
    torch.manual_seed(0)
    fused = VisionTower(VisionConfig(**cfg, sdpa=True))
    eager = VisionTower(VisionConfig(**cfg, sdpa=False))
    eager.load_state_dict(fused.state_dict())
    assert all(b.attn.use_flash_attention for b in fused.vit.blocks)
    assert not any(b.attn.use_flash_attention for b in eager.vit.blocks)
    x = torch.rand(3, 1, 4, 16, 16)
    out_f, out_e = fused(x), eager(x)
    torch.testing.assert_close(out_f, out_e, atol=1e-5, rtol=1e-4)
    out_f.square().sum().backward()
    out_e.square().sum().backward()
    g_f = fused.vit.patch_embedding.patch_embeddings[1].weight.grad
    g_e = eager.vit.patch_embedding.patch_embeddings[1].weight.grad
    torch.testing.assert_close(g_f, g_e, atol=1e-4, rtol=1e-3)


class _M3DViT(torch.nn.Module):
    """M3D's own ViT class (LaMed multimodal_encoder/vit.py) with classification=True as
    its ViT3DTower and M3D-CLIP build it: MONAI's patch embedding ("perceptron") and
    transformer blocks, ``cls_token`` and a final norm, and no classification head (the
    head is commented out there, so ``pretrained_ViT.bin`` holds no head keys)."""

    def __init__(self, cfg):
        super().__init__()
        from monai.networks.blocks.patchembedding import PatchEmbeddingBlock
        from monai.networks.blocks.transformerblock import TransformerBlock

        self.patch_embedding = PatchEmbeddingBlock(
            in_channels=1, img_size=cfg.img_size, patch_size=cfg.patch_size,
            hidden_size=cfg.hidden_size, num_heads=cfg.num_heads, proj_type="perceptron",
            spatial_dims=3,
        )  # fmt: skip
        self.blocks = torch.nn.ModuleList(
            TransformerBlock(cfg.hidden_size, cfg.mlp_dim, cfg.num_heads, 0.0, False)
            for _ in range(cfg.num_layers)
        )
        self.norm = torch.nn.LayerNorm(cfg.hidden_size)
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, cfg.hidden_size))

    def forward(self, x):
        x = self.patch_embedding(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)  # ViT3DTower with select_feature 'patch' then drops [:, 0]


def _m3d_state(cfg) -> dict[str, torch.Tensor]:
    """A pretrained_ViT.bin as M3D saved it (older MONAI: no norm_cross_attn keys)."""
    return {k: v for k, v in _M3DViT(cfg).state_dict().items() if "norm_cross_attn" not in k}


def test_m3d_layout_without_head_loads_strictly_and_matches_m3d_forward(tmp_path):
    cfg = vision_config("tiny")
    torch.manual_seed(3)
    m3d = _M3DViT(cfg).eval()
    state = _m3d_state(cfg)
    m3d.load_state_dict(state, strict=False)
    assert "cls_token" in state and not any(k.startswith("classification_head") for k in state)
    assert "patch_embedding.patch_embeddings.1.weight" in state  # perceptron: Rearrange, Linear
    torch.save(state, tmp_path / "pretrained_ViT.bin")
    tower = VisionTower(cfg).eval()
    load_vision_weights(tower, tmp_path / "pretrained_ViT.bin", strict=True)
    frames = torch.rand(2, 1, *cfg.img_size)
    with torch.no_grad():
        torch.testing.assert_close(tower(frames), m3d(frames)[:, 1:], atol=1e-5, rtol=1e-4)


def test_full_m3d_clip_checkpoint_vision_keys_are_found(tmp_path):
    """M3D-CLIP's whole model: vision_encoder.* beside a BERT language_encoder.* and heads."""
    from transformers import BertConfig, BertModel

    cfg = vision_config("tiny")
    torch.manual_seed(4)
    vision = _m3d_state(cfg)
    bert = BertModel(BertConfig(vocab_size=64, hidden_size=cfg.hidden_size, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64))  # fmt: skip
    clip = {f"vision_encoder.{k}": v for k, v in vision.items()}
    clip |= {f"language_encoder.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    for head in ("mm_vision_proj", "mm_language_proj"):
        clip[f"{head}.weight"] = torch.randn(cfg.hidden_size, cfg.hidden_size)
        clip[f"{head}.bias"] = torch.zeros(cfg.hidden_size)
    clip["logit_scale"] = torch.tensor(2.6593)
    folder = tmp_path / "M3D-CLIP"
    folder.mkdir()
    save_file(clip, str(folder / "model.safetensors"))
    for path in (folder / "model.safetensors", folder):  # the file, or its folder
        tower = VisionTower(cfg)
        load_vision_weights(tower, path, strict=True)
        own = tower.vit.state_dict()
        assert all(torch.equal(own[k], v) for k, v in vision.items())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: {k: v for k, v in s.items() if not k.startswith("blocks.1.")}, "missing"),
        (lambda s: {**s, "cls_token": torch.zeros(1, 1, 8)}, "shape mismatch.*cls_token"),
    ],
)
def test_m3d_layout_with_missing_block_or_wrong_shape_fails_clearly(tmp_path, damage, message):
    cfg = vision_config("tiny")
    torch.save(damage(_m3d_state(cfg)), tmp_path / "pretrained_ViT.bin")
    with pytest.raises(Mu2Error, match=message):
        load_vision_weights(VisionTower(cfg), tmp_path / "pretrained_ViT.bin")
