"""Stage-0 model: the InfoNCE loss against hand-computed values, pooling, a training step,
and a save / load round trip whose vision tower loads into the SFT model's tower."""

import math

import pytest
import torch

from mu2.model.vision import VisionTower, load_vision_weights
from mu2.pretrain.cases import LabelSpace
from mu2.pretrain.clip import (
    VISION_FILE,
    build_clip_model,
    clip_loss,
    load_clip,
    pool_tokens,
    save_clip,
)
from mu2.pretrain.config import ClipModelOptions

from .conftest import micro_clip


def test_clip_loss_matches_hand_computed_value():
    # Two pairs in 2-D: image 0 = text 0 = (1, 0); image 1 = (0, 1), text 1 = (0.6, 0.8).
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    s = 2.0
    # logits = s * img @ txt.T = [[2, 1.2], [0, 1.6]]
    row0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1.2)))
    row1 = -math.log(math.exp(1.6) / (math.exp(0) + math.exp(1.6)))
    col0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    col1 = -math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    got = clip_loss(img, txt, torch.tensor(s))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # swapping the pairing makes the loss larger
    assert clip_loss(img, txt.flip(0), torch.tensor(s)).item() > got.item()


def test_pool_tokens_ignores_padded_frames():
    tokens = torch.zeros(2, 3, 4, 5)  # (B, T, N, W)
    tokens[0, 0] = 1.0
    tokens[0, 1] = 3.0
    tokens[0, 2] = 100.0  # padded frame of volume 0: must not count
    tokens[1] = -2.0
    tokens[1, :, 0, 0] = 4.0
    mask = torch.tensor([[True, True, False], [True, True, True]])
    mean = pool_tokens(tokens, mask, "mean")
    assert mean.shape == (2, 5)
    assert torch.allclose(mean[0], torch.full((5,), 2.0))
    both = pool_tokens(tokens, mask, "meanmax")
    assert both.shape == (2, 10)
    assert torch.allclose(both[0, 5:], torch.full((5,), 3.0))  # max skips the padded 100
    assert both[1, 5].item() == 4.0 and both[1, 6].item() == -2.0


def _batch():
    g = torch.Generator().manual_seed(1)
    pixel_values = torch.rand(4, 2, 4, 16, 16, generator=g)  # (B, T, K, H, W)
    frame_mask = torch.tensor([[True, True], [True, False], [True, True], [True, False]])
    input_ids = torch.randint(1, 50, (4, 10), generator=g)
    attention_mask = torch.ones(4, 10, dtype=torch.long)
    attention_mask[1, 7:] = 0
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    return dict(pixel_values=pixel_values, frame_mask=frame_mask, input_ids=input_ids,
                attention_mask=attention_mask, labels=labels)  # fmt: skip


def test_forward_shapes_and_every_part_learns():
    model = micro_clip()
    batch = _batch()
    out = model(**batch)
    assert out.image_embeds.shape == (4, 16) and out.text_embeds.shape == (4, 16)
    assert torch.allclose(out.image_embeds.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert out.findings_logits.shape == (4, 3)
    assert out.loss.item() == pytest.approx(
        out.clip_loss.item() + out.findings_loss.item(), rel=1e-5
    )
    model.vision.vit.classification_head.requires_grad_(False)
    # MONAI's blocks hold a cross-attention norm that a ViT never calls
    before = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if p.requires_grad and "cross_attn" not in n
    }
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    out.loss.backward()
    opt.step()
    unchanged = [
        n for n, p in model.named_parameters() if n in before and torch.equal(p, before[n])
    ]
    assert unchanged == []


def test_padding_a_frame_does_not_change_the_embedding():
    model = micro_clip().eval()
    batch = _batch()
    one = model.image_features(batch["pixel_values"][1:2, :1], None)  # only the real frame
    padded = model.image_features(batch["pixel_values"][1:2], batch["frame_mask"][1:2])
    assert torch.allclose(one, padded, atol=1e-5)


def test_logit_scale_is_capped():
    model = micro_clip()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)  # exp(10) >> 100
    assert model.scale().item() == pytest.approx(100.0)


def test_save_load_roundtrip_and_sft_tower_loads_it(tmp_path):
    from mu2.model.builders import vision_config
    from mu2.model.text import train_text_tokenizer

    tok = train_text_tokenizer(["The spleen is enlarged.", "No pleural effusion."], 400)
    opts = ClipModelOptions(text_layers=1)
    labels = LabelSpace(["splenomegaly", "renal_cyst", "renal_cyst:left"])
    model = build_clip_model(opts, len(tok), tok.pad_token_id, len(labels), seed=3)
    model.set_input_norm(0.15, 0.25)
    save_clip(model, tok, labels, opts, tmp_path)
    loaded, tok2, labels2 = load_clip(tmp_path)
    assert labels2.names == labels.names and len(tok2) == len(tok)
    for (n, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    assert float(loaded.input_std) == pytest.approx(0.25)
    # The product of stage 0 loads strictly into the tower the tiny SFT model builds, with
    # the input standardisation folded in: raw frames give the tokens stage 0 trained on.
    sft_tower = VisionTower(vision_config("tiny")).eval()
    load_vision_weights(sft_tower, tmp_path / VISION_FILE, strict=True)
    frames = torch.rand(1, 1, *vision_config("tiny").img_size)
    with torch.no_grad():
        expected = model.eval().vision((frames - 0.15) / 0.25)
        assert torch.allclose(sft_tower(frames), expected, atol=1e-4)


def test_exported_tower_takes_raw_frames():
    model = micro_clip().eval()
    model.set_input_norm(0.2, 0.3)
    x = _batch()["pixel_values"][:, 0].unsqueeze(1)  # (B, 1, K, H, W) raw frames
    with torch.no_grad():
        inside = model.vision((x - 0.2) / 0.3)
        exported = model.export_vision()(x)
        plain = model.vision(x)
    assert torch.allclose(inside, exported, atol=1e-5)
    assert not torch.allclose(inside, plain, atol=1e-3)  # the fold did something
