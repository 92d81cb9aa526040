"""DMTP (dynamic, weighted scales) and LinVT's fixed multi-scale pooling."""

from __future__ import annotations

import torch

from mu2.tokenizer.pooling import MultiScalePooling


def test_fixed_pooling_is_the_plain_concat_of_average_pools():
    torch.manual_seed(0)
    pool = MultiScalePooling(dim=6, scales=(1, 2, 4), dynamic=False, gate_hidden=4)
    x = torch.randn(2, 16, 6)
    out = pool(x, torch.ones(2, 16, dtype=torch.bool))
    expected = torch.cat(
        [x, x.view(2, 8, 2, 6).mean(2), x.view(2, 4, 4, 6).mean(2)], dim=1
    )  # 16 + 8 + 4 tokens
    assert torch.allclose(out.tokens, expected, atol=1e-6)
    assert torch.all(out.scale_weights == 1)


def test_dynamic_pooling_weights_scales_by_a_softmax():
    torch.manual_seed(0)
    dyn = MultiScalePooling(dim=6, scales=(1, 2, 4), dynamic=True, gate_hidden=4)
    fixed = MultiScalePooling(dim=6, scales=(1, 2, 4), dynamic=False, gate_hidden=4)
    x = torch.randn(3, 16, 6)
    mask = torch.ones(3, 16, dtype=torch.bool)
    out, ref = dyn(x, mask), fixed(x, mask)
    w = out.scale_weights
    assert w.shape == (3, 3) and torch.allclose(w.sum(-1), torch.ones(3))
    assert not torch.allclose(w, torch.full_like(w, 1 / 3))  # per-scale gates: not degenerate
    scale_of = torch.tensor([0] * 16 + [1] * 8 + [2] * 4)
    assert torch.allclose(out.tokens, ref.tokens * w[:, scale_of, None], atol=1e-6)
    out.tokens.sum().backward()
    assert all(p.grad is not None for p in dyn.gates.parameters())


def test_backproject_is_the_transpose_of_the_pooling_map():
    torch.manual_seed(0)
    pool = MultiScalePooling(dim=1, scales=(1, 2, 4), dynamic=False, gate_hidden=4)
    x = torch.randn(2, 8, 1, requires_grad=True)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False  # masked average over real tokens only
    out = pool(x, mask)
    r = torch.rand(2, out.tokens.shape[1])
    (out.tokens[..., 0] * r).sum().backward()  # x.grad = P^T r
    assert torch.allclose(pool.backproject(r, out, mask), x.grad[..., 0], atol=1e-6)
