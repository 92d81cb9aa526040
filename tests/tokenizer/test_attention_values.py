"""Values of the attention block's edges against torch.nn.functional written out here:
float64 inputs, a per-sample (B, H, Lq, Lk) bias, rows without keys on the explicit-weights
path, dropout only in training, the feed-forward MLP and the padding mask's device."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mu2.tokenizer.attention import FeedForward, MultiHeadAttention, attention_mask


def _reference(attn, x, ctx, bias=None, key_mask=None):
    """Softmax attention by hand: (B, Lq, E) queries over (B, Lk, Ec) keys."""
    b, lq, e = x.shape
    h, d = attn.heads, attn.head_dim
    q = F.linear(x, attn.q.weight, attn.q.bias).view(b, lq, h, d).transpose(1, 2)
    k = F.linear(ctx, attn.k.weight, attn.k.bias).view(b, -1, h, d).transpose(1, 2)
    v = F.linear(ctx, attn.v.weight, attn.v.bias).view(b, -1, h, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # (B, H, Lq, Lk)
    if bias is not None:
        logits = logits + bias
    if key_mask is not None:
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, e)
    return F.linear(out, attn.out.weight, attn.out.bias)


def test_float64_attention_with_a_bias_or_a_padding_mask():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).double()
    x, ctx = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    bias = torch.randn(2, 3, 5)  # float32 bias, cast to the queries' dtype
    key_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    for kw in ({"bias": bias}, {"key_mask": key_mask}, {"bias": bias, "key_mask": key_mask}):
        out, weights = attn(x, ctx, **kw)
        assert out.dtype == torch.float64 and weights is None  # weights only when asked
        ref = _reference(attn, x, ctx, kw.get("bias", None), kw.get("key_mask", None))
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_a_per_sample_bias_of_four_dimensions():
    torch.manual_seed(1)
    attn = MultiHeadAttention(8, 2)
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    bias = torch.randn(2, 2, 3, 4)  # (B, H, Lq, Lk): each case its own bias
    key_mask = torch.tensor([[True, True, True, False], [True] * 4])
    out, _ = attn(x, ctx, bias=bias, key_mask=key_mask)
    torch.testing.assert_close(out, _reference(attn, x, ctx, bias, key_mask), rtol=0, atol=1e-5)
    assert attention_mask(bias, None, torch.float32).shape == (2, 2, 3, 4)
    assert attention_mask(bias[0], None, torch.float32).shape == (1, 2, 3, 4)


def test_a_row_without_keys_gives_zeros_on_the_explicit_weights_path():
    torch.manual_seed(2)
    attn = MultiHeadAttention(8, 2)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    out, w = attn(x, ctx, key_mask=mask, need_weights=True)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)
    assert torch.isfinite(w).all() and torch.all(w[0, ..., 1] == 0)
    torch.testing.assert_close(out[0], _reference(attn, x, ctx, key_mask=mask)[0])
    # the float mask: -inf on padded keys of a row with keys, nothing on the empty row
    m = attention_mask(None, mask, torch.float32)
    assert m.shape == (2, 1, 1, 3)
    assert m[0, 0, 0].tolist() == [0.0, float("-inf"), 0.0] and m[1].eq(0).all()


def test_the_padding_mask_is_built_on_the_keys_device():
    mask = torch.ones(2, 3, dtype=torch.bool, device="meta")
    assert attention_mask(None, mask, torch.float32).device.type == "meta"


@pytest.mark.parametrize("need_weights", [False, True])
def test_dropout_acts_in_training_only(need_weights):
    torch.manual_seed(3)
    attn = MultiHeadAttention(8, 2, dropout=0.5).eval()
    x = torch.randn(2, 6, 8)
    out, _ = attn(x, need_weights=need_weights)
    torch.testing.assert_close(out, _reference(attn, x, x), rtol=0, atol=1e-5)  # no dropout
    attn.train()
    torch.manual_seed(4)
    noisy, _ = attn(x, need_weights=need_weights)
    assert (noisy - out).abs().max() > 1e-3  # dropped weights change the output


def test_width_not_divisible_by_heads_is_refused():
    with pytest.raises(ValueError, match="attention width 10 is not divisible by 4 heads"):
        MultiHeadAttention(10, 4)


def test_feed_forward_is_linear_gelu_linear():
    torch.manual_seed(5)
    ff = FeedForward(6, 24)
    x = torch.randn(2, 3, 6)
    first, last = ff.net[0], ff.net[-1]
    assert (first.in_features, first.out_features) == (6, 24)
    assert (last.in_features, last.out_features) == (24, 6)
    ref = F.linear(F.gelu(F.linear(x, first.weight, first.bias)), last.weight, last.bias)
    torch.testing.assert_close(ff(x), ref)
    torch.testing.assert_close(ff.train()(x), ref)  # default dropout 0: training changes nothing
    drop = FeedForward(6, 24, dropout=0.5).train()
    torch.manual_seed(6)
    y = drop(x)
    drop.eval()
    assert (y - drop(x)).abs().max() > 1e-3


def test_the_float_mask_has_the_queries_dtype():
    bias = torch.randn(2, 3, 4, dtype=torch.float64)
    key_mask = torch.tensor([[True, True, False, True]])
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        assert attention_mask(None, key_mask, dtype).dtype == dtype
        assert attention_mask(bias, None, dtype).dtype == dtype
        assert attention_mask(bias, key_mask, dtype).dtype == dtype
    # float32 queries with a float64 bias (SDPA refuses a double mask for float queries)
    torch.manual_seed(7)
    attn = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    ctx = torch.randn(1, 4, 8)
    out, _ = attn(x, ctx, bias=bias, key_mask=key_mask)
    ref = _reference(attn, x, ctx, bias.float(), key_mask)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
