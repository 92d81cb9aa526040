"""TTA and the final linear aggregation: output = weights @ visual tokens; padding-proof."""

from __future__ import annotations

import torch

from mu2.tokenizer.aggregation import TextConditionedAggregation


def _tta(rpe: str = "relative_3d") -> TextConditionedAggregation:
    torch.manual_seed(0)
    return TextConditionedAggregation(
        dim=16, depth=2, heads=4, num_queries=6, rpe=rpe, mlp_ratio=2.0
    ).eval()


def test_output_is_exactly_the_attention_weighted_mix_of_visual_tokens():
    tta = _tta()
    visual = torch.randn(2, 12, 16)
    vmask = torch.ones(2, 12, dtype=torch.bool)
    vmask[1, 9:] = False
    text, tmask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    tokens, weights = tta(visual, vmask, text, tmask)
    assert tokens.shape == (2, 6, 16) and weights.shape == (2, 6, 12)
    assert torch.allclose(tokens, torch.einsum("bqm,bme->bqe", weights, visual), atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 6), atol=1e-6)
    assert torch.all(weights[1, :, 9:] == 0)  # masked visual tokens take no part


def test_extra_question_padding_does_not_change_the_output():
    tta = _tta()
    visual, vmask = torch.randn(2, 12, 16), torch.ones(2, 12, dtype=torch.bool)
    text = torch.randn(2, 5, 16)
    tmask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    base, _ = tta(visual, vmask, text, tmask)
    padded_text = torch.cat([text, 50 * torch.randn(2, 7, 16)], dim=1)  # junk pad embeddings
    padded_mask = torch.cat([tmask, torch.zeros(2, 7, dtype=torch.bool)], dim=1)
    padded, _ = tta(visual, vmask, padded_text, padded_mask)
    assert torch.allclose(base, padded, atol=1e-5)


def test_question_changes_the_output():
    tta = _tta()
    visual, vmask = torch.randn(1, 12, 16), torch.ones(1, 12, dtype=torch.bool)
    tmask = torch.ones(1, 5, dtype=torch.bool)
    a, _ = tta(visual, vmask, torch.randn(1, 5, 16), tmask)
    b, _ = tta(visual, vmask, torch.randn(1, 5, 16), tmask)
    assert not torch.allclose(a, b)  # text-conditioned


def test_query_self_attention_bias_follows_the_rpe_choice():
    assert _tta("relative_3d").layers[0].query_bias.table.shape == (11, 4)
    assert _tta("absolute").layers[0].query_bias is None
