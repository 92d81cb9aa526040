"""DTS (soft, one einsum) and LinVT hard top-k: values and where gradients go."""

from __future__ import annotations

import torch

from mu2.tokenizer.selection import HardTokenSelection, SoftTokenSelection


def test_soft_selection_equals_the_loop_over_k_and_reaches_every_token():
    torch.manual_seed(0)
    sel = SoftTokenSelection(dim=8, k=6)
    feats = torch.randn(2, 20, 8, requires_grad=True)
    tokens = torch.randn(2, 20, 8, requires_grad=True)
    mask = torch.ones(2, 20, dtype=torch.bool)
    out = sel(feats, tokens, mask)
    assert out.tokens.shape == (2, 6, 8) and out.weights.shape == (2, 6, 20)
    # the reference code's loop, one score vector at a time
    for r in range(6):
        alpha = (feats @ sel.score[r] * sel.scale).softmax(-1)  # (B, M)
        assert torch.allclose(
            out.tokens[:, r], torch.einsum("bm,bme->be", alpha, tokens), atol=1e-5
        )
    (out.tokens * torch.randn_like(out.tokens)).sum().backward()
    assert (tokens.grad.abs().sum(-1) > 0).all()  # every input token gets gradient
    assert (feats.grad.abs().sum(-1) > 0).all()
    assert (sel.score.grad.abs().sum(-1) > 0).all()  # every score vector learns


def test_soft_selection_ignores_padded_tokens():
    torch.manual_seed(0)
    sel = SoftTokenSelection(dim=4, k=3)
    feats, tokens = torch.randn(1, 10, 4), torch.randn(1, 10, 4)
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, 6:] = False
    out = sel(feats, tokens, mask)
    assert torch.all(out.weights[0, :, 6:] == 0)
    tokens2 = tokens.clone()
    tokens2[0, 6:] = 100.0
    assert torch.allclose(sel(feats, tokens2, mask).tokens, out.tokens)


def test_hard_topk_leaves_unselected_tokens_without_gradient():
    torch.manual_seed(0)
    sel = HardTokenSelection(dim=8, k=5)
    feats = torch.randn(1, 12, 8)
    tokens = torch.randn(1, 12, 8, requires_grad=True)
    out = sel(feats, tokens, torch.ones(1, 12, dtype=torch.bool))
    picked = set(out.index[0].tolist())
    assert len(picked) == 5 and out.index[0].tolist() == sorted(picked)  # original order kept
    assert torch.allclose(out.tokens[0], tokens[0, sorted(picked)])  # copies, not mixes
    out.tokens.sum().backward()
    has_grad = tokens.grad[0].abs().sum(-1) > 0
    assert has_grad.nonzero().flatten().tolist() == sorted(picked)
    assert sel.score.weight.grad is not None and sel.score.weight.grad.abs().sum() > 0


def test_hard_topk_with_fewer_tokens_than_k_masks_the_empty_slots():
    sel = HardTokenSelection(dim=4, k=8)
    mask = torch.tensor([[True, True, True, False, False]])
    out = sel(torch.randn(1, 5, 4), torch.randn(1, 5, 4), mask)
    assert out.tokens.shape == (1, 8, 4)
    assert out.mask.sum() == 3 and torch.all(out.tokens[~out.mask] == 0)
