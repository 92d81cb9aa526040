"""spp pass-through and the perceiver resampler on the tokenizer interface."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.tokenizer import TokenizerConfig, build_visual_tokenizer, preset_options


def _cfg(preset: str) -> TokenizerConfig:
    return TokenizerConfig(
        width=16, grid=(1, 2, 2), max_frames=3, num_selected=8, num_queries=5, svr_layers=1,
        tta_layers=2, heads=2, mlp_ratio=2.0, gate_hidden=8, **preset_options(preset),
    )  # fmt: skip


def test_spp_passes_projector_tokens_through_with_padded_frames_masked():
    spp = build_visual_tokenizer(_cfg("spp"))
    frames = torch.randn(2, 2, 4, 16)
    fmask = torch.tensor([[True, True], [True, False]])
    out = spp(frames, fmask, None, None, return_relevance=True)
    assert out.tokens.shape == (2, 12, 16) and spp.num_output_tokens == 12
    assert out.mask.tolist() == [[True] * 8 + [False] * 4, [True] * 4 + [False] * 8]
    assert torch.equal(out.tokens[0, :8], frames[0].reshape(8, 16))
    assert torch.allclose(out.relevance.sum((1, 2)), torch.ones(2))
    with pytest.raises(Mu2Error, match="at most 3 frames"):
        spp(torch.randn(1, 4, 4, 16), torch.ones(1, 4, dtype=torch.bool), None, None)


def test_perceiver_is_question_agnostic_and_ignores_padded_frames():
    torch.manual_seed(0)
    per = build_visual_tokenizer(_cfg("perceiver")).eval()
    frames = torch.randn(1, 3, 4, 16)
    fmask = torch.tensor([[True, True, False]])
    a = per(
        frames,
        fmask,
        torch.randn(1, 4, 16),
        torch.ones(1, 4, dtype=torch.bool),
        return_relevance=True,
    )
    frames2 = frames.clone()
    frames2[0, 2] = 9.0
    b = per(frames2, fmask, torch.randn(1, 6, 16), torch.ones(1, 6, dtype=torch.bool))
    assert a.tokens.shape == (1, 5, 16)
    assert torch.allclose(a.tokens, b.tokens, atol=1e-6)
    assert a.relevance.shape == (1, 3, 4) and torch.all(a.relevance[0, 2] == 0)
    assert torch.allclose(a.relevance.sum(), torch.tensor(1.0))
