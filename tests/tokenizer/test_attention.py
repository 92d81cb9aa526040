"""Attention with additive bias and key padding mask, batch first."""

from __future__ import annotations

import math

import torch

from mu2.tokenizer.attention import MultiHeadAttention


def _reference(attn: MultiHeadAttention, x, ctx, bias, key_mask):
    b, lq, e = x.shape
    h, d = attn.heads, attn.head_dim
    q = attn.q(x).view(b, lq, h, d).transpose(1, 2)
    k = attn.k(ctx).view(b, -1, h, d).transpose(1, 2)
    v = attn.v(ctx).view(b, -1, h, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
    logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, e)
    return attn.out(out)


def test_matches_explicit_softmax_with_bias_and_mask():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    bias = torch.randn(4, 5, 7)
    key_mask = torch.ones(2, 7, dtype=torch.bool)
    key_mask[1, 4:] = False
    out, _ = attn(x, ctx, bias=bias, key_mask=key_mask)
    assert torch.allclose(out, _reference(attn, x, ctx, bias, key_mask), atol=1e-5)
    out_w, w = attn(x, ctx, bias=bias, key_mask=key_mask, need_weights=True)
    assert torch.allclose(out_w, out, atol=1e-5)
    assert w.shape == (2, 4, 5, 7) and torch.all(w[1, ..., 4:] == 0)


def test_attends_along_the_sequence_not_the_batch():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2)
    x = torch.randn(3, 4, 8)
    out, _ = attn(x)
    out_perm, _ = attn(x[[2, 0, 1]])
    assert torch.allclose(out_perm, out[[2, 0, 1]], atol=1e-6)  # batch items never mix


def test_row_without_keys_gives_zeros_not_nan():
    attn = MultiHeadAttention(8, 2)
    mask = torch.tensor([[True, False], [False, False]])
    out, _ = attn(torch.randn(2, 3, 8), torch.randn(2, 2, 8), key_mask=mask)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)
