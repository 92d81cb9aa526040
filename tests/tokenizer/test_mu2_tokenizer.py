"""The composed μ² Tokenizer: shapes, T-independence, exact relevance, presets, paper size."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.tokenizer import (
    PRESETS,
    Mu2Tokenizer,
    TokenizerConfig,
    build_visual_tokenizer,
    preset_options,
)
from mu2.tokenizer.mu2_tokenizer import frame_token_mask

GRID = (2, 2, 2)  # N = 8 tokens per frame


def _cfg(preset: str = "mu2", **kw) -> TokenizerConfig:
    values = dict(
        width=16, grid=GRID, max_frames=8, num_selected=16, num_queries=6, svr_layers=2,
        tta_layers=2, heads=2, mlp_ratio=2.0, gate_hidden=8,
    )  # fmt: skip
    values.update(preset_options(preset))
    values.update(kw)
    return TokenizerConfig(**values)


def _inputs(b: int, t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(b, t, 8, 16, generator=g)
    text = torch.randn(b, 4, 16, generator=g)
    return frames, torch.ones(b, t, dtype=torch.bool), text, torch.ones(b, 4, dtype=torch.bool)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "spp"])
def test_output_token_count_does_not_depend_on_t(preset):
    torch.manual_seed(0)
    tok = build_visual_tokenizer(_cfg(preset)).eval()
    for t in (1, 2, 8):
        out = tok(*_inputs(2, t), return_relevance=True)
        assert out.tokens.shape == (2, 6, 16)
        assert out.relevance.shape == (2, t, 8)
        assert torch.isfinite(out.tokens).all()


def test_relevance_is_the_exact_linear_map_from_frame_tokens_to_output():
    torch.manual_seed(0)
    tok = Mu2Tokenizer(_cfg("mu2")).eval()
    frames, fmask, text, tmask = _inputs(2, 3)
    fmask[1, 2] = False
    b, t, n, e = frames.shape
    out = tok(frames, fmask, text, tmask, return_relevance=True)
    # Recompose by hand: tokens = A P S V with S (k, M), P (M', k), A (Q, M').
    mask = frame_token_mask(fmask, n)
    flat = frames.reshape(b, t * n, e) * mask[..., None]
    sel = tok.selection(tok.refiner(frames, fmask).reshape(b, t * n, e), flat, mask)
    pooled = tok.pooling(sel.tokens, sel.mask)
    tokens, a = tok.aggregation(pooled.tokens, pooled.mask, text, tmask)
    k = tok.config.num_selected
    rows = []
    for i, s in enumerate(tok.config.scales):
        window = torch.eye(k).view(k // s, s, k).mean(1)  # (k/s, k) average pool
        rows.append(pooled.scale_weights[:, i, None, None] * window)
    p = torch.cat(rows, dim=1)  # (B, M', k)
    linear = a @ p @ sel.weights  # (B, Q, M)
    assert torch.allclose(torch.einsum("bqm,bme->bqe", linear, flat), out.tokens, atol=1e-5)
    assert torch.allclose(linear.mean(1).view(b, t, n), out.relevance, atol=1e-6)
    assert torch.all(out.relevance[1, 2] == 0)  # a padded frame has no share


def test_padded_frames_do_not_change_the_output():
    torch.manual_seed(0)
    for preset in ("mu2", "linvt"):
        tok = build_visual_tokenizer(_cfg(preset)).eval()
        frames, fmask, text, tmask = _inputs(1, 2)
        base = tok(frames, fmask, text, tmask).tokens
        padded = torch.cat([frames, 7 * torch.randn(1, 2, 8, 16)], dim=1)
        pmask = torch.tensor([[True, True, False, False]])
        assert torch.allclose(tok(padded, pmask, text, tmask).tokens, base, atol=1e-5), preset


def test_question_padding_is_masked_end_to_end():
    torch.manual_seed(0)
    tok = Mu2Tokenizer(_cfg()).eval()
    frames, fmask, text, tmask = _inputs(1, 2)
    base = tok(frames, fmask, text, tmask).tokens
    text2 = torch.cat([text, torch.randn(1, 9, 16)], dim=1)
    tmask2 = torch.cat([tmask, torch.zeros(1, 9, dtype=torch.bool)], dim=1)
    assert torch.allclose(tok(frames, fmask, text2, tmask2).tokens, base, atol=1e-5)


def test_gradient_reaches_every_frame_token_with_dts():
    torch.manual_seed(0)
    tok = Mu2Tokenizer(_cfg())
    frames, fmask, text, tmask = _inputs(1, 3)
    frames.requires_grad_(True)
    tok(frames, fmask, text, tmask).tokens.pow(2).sum().backward()
    assert (frames.grad.abs().sum(-1) > 0).all()
    assert tok.selection.score.grad.abs().sum() > 0


def test_config_errors_are_collected_into_one_mu2error():
    with pytest.raises(Mu2Error) as err:
        _cfg(rpe="relative_2d", num_selected=10, heads=3)
    msg = str(err.value)
    assert "rpe='relative_2d'" in msg and "num_selected=10" in msg and "heads=3" in msg
    with pytest.raises(Mu2Error, match="did you mean 'linvt\\+dts'"):
        preset_options("linvt+dtss")


def test_paper_size_tokenizer_builds_and_reports_its_parameter_count():
    from mu2.model import tokenizer_config

    cfg = tokenizer_config("paper", "mu2", width=2048)
    assert (cfg.num_selected, cfg.num_queries, cfg.grid, cfg.num_pooled) == (
        1024,
        256,
        (4, 8, 8),
        1792,
    )
    with torch.device("meta"):  # sizes only: no 2 GB allocation in a unit test
        tok = Mu2Tokenizer(cfg)
    count = sum(p.numel() for p in tok.parameters())
    print(f"paper-size mu2 tokenizer at E=2048: {count / 1e6:.1f}M parameters")
    assert 300e6 < count < 800e6
    with torch.device("meta"):
        big = Mu2Tokenizer(tokenizer_config("paper", "mu2", width=2048, num_queries=1024))
    assert big.aggregation.queries.shape == (1024, 2048)
