"""One TTA layer against the same pre-norm block written with PyTorch's own attention.

The reference is ``torch.nn.MultiheadAttention`` (batch first) loaded with the layer's
q/k/v/out weights, the relative-position bias passed as its float ``attn_mask`` and the
padding as ``key_padding_mask``; the residual stream is written out here. So a dropped
residual, a sign, a lost bias or mask, or a swapped norm makes the two disagree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mu2.tokenizer.aggregation import AggregationLayer

B, Q, M, L, E, H = 2, 5, 7, 4, 16, 4


def _torch_mha(mine: nn.Module) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(E, H, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.q.weight, mine.k.weight, mine.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mine.q.bias, mine.k.bias, mine.v.bias]))
        ref.out_proj.weight.copy_(mine.out.weight)
        ref.out_proj.bias.copy_(mine.out.bias)
    return ref.eval()


def _reference(layer, q, visual, vmask, text, tmask, bias):
    def attn(mine, x, ctx, key_mask=None, mask=None):
        out, _ = _torch_mha(mine)(
            x, ctx, ctx, attn_mask=mask,
            key_padding_mask=None if key_mask is None else ~key_mask, need_weights=False,
        )  # fmt: skip
        return out

    mask = bias.repeat(B, 1, 1)  # (H, Q, Q) -> (B*H, Q, Q), batch-major as PyTorch expects
    x = layer.norm_self(q)
    q = q + attn(layer.self_attn, x, x, mask=mask)
    q = q + attn(layer.visual_attn, layer.norm_visual(q), layer.norm_visual_kv(visual), vmask)
    q = q + attn(layer.text_attn, layer.norm_text(q), layer.norm_text_kv(text), tmask)
    lin1, lin2 = layer.ffn.net[0], layer.ffn.net[3]
    return q + F.linear(F.gelu(F.linear(layer.norm_ffn(q), lin1.weight, lin1.bias)),
                        lin2.weight, lin2.bias)  # fmt: skip


def test_tta_layer_equals_the_torch_attention_block():
    torch.manual_seed(0)
    layer = AggregationLayer(E, H, Q, "relative_1d", mlp_ratio=2.0).eval()
    with torch.no_grad():  # a non-zero relative bias (the table starts at zero)
        for p in layer.query_bias.parameters():
            p.normal_()
    assert layer.ffn.net[0].out_features == 2 * E  # hidden = dim x mlp_ratio
    q, visual, text = torch.randn(B, Q, E), torch.randn(B, M, E), torch.randn(B, L, E)
    vmask = torch.ones(B, M, dtype=torch.bool)
    vmask[1, 4:] = False  # the second case has 4 visual tokens
    tmask = torch.ones(B, L, dtype=torch.bool)
    tmask[0, 2:] = False  # the first question has 2 tokens
    bias = layer.query_bias(Q)  # (H, Q, Q)
    assert bias.abs().sum() > 0
    with torch.no_grad():
        got = layer(q, visual, vmask, text, tmask)
        want = _reference(layer, q, visual, vmask, text, tmask, bias)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_tta_layer_default_has_no_dropout_in_training():
    torch.manual_seed(0)
    layer = AggregationLayer(E, H, Q, "absolute", mlp_ratio=2.0)
    q, visual, text = torch.randn(B, Q, E), torch.randn(B, M, E), torch.randn(B, L, E)
    masks = torch.ones(B, M, dtype=torch.bool), torch.ones(B, L, dtype=torch.bool)
    train = layer.train()(q, visual, masks[0], text, masks[1])
    torch.testing.assert_close(train, layer.eval()(q, visual, masks[0], text, masks[1]))
