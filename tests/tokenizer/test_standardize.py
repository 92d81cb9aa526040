"""Per-case token standardisation: zero mean, unit RMS over real tokens, padding zero, and
it sharpens the DTS / aggregation softmax of near-identical tokens."""

from __future__ import annotations

import torch

from mu2.tokenizer.aggregation import LinearAggregation
from mu2.tokenizer.selection import SoftTokenSelection
from mu2.tokenizer.standardize import standardize_over_tokens


def _alike_tokens(b: int = 2, m: int = 12, e: int = 16) -> torch.Tensor:
    """A large shared component plus small per-token deviations (like one CT's tokens)."""
    g = torch.Generator().manual_seed(0)
    common = 10 * torch.randn(b, 1, e, generator=g)
    return common + 0.05 * torch.randn(b, m, e, generator=g)  # (B, M, E)


def test_standardized_tokens_have_zero_mean_unit_rms_and_zero_padding():
    x = _alike_tokens()
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 9:] = False
    out = standardize_over_tokens(x, mask)
    for b, n in ((0, 12), (1, 9)):
        real = out[b, :n]
        assert torch.allclose(real.mean(dim=0), torch.zeros(16), atol=1e-3)
        assert torch.allclose(real.pow(2).mean().sqrt(), torch.tensor(1.0), atol=1e-4)
    assert torch.equal(out[1, 9:], torch.zeros(3, 16))
    # scale and shift of the input do not matter
    assert torch.allclose(standardize_over_tokens(3 * x + 1, mask), out, atol=1e-3)


def test_standardizing_sharpens_the_softmax_of_alike_tokens():
    torch.manual_seed(0)
    x = _alike_tokens()
    mask = torch.ones(2, 12, dtype=torch.bool)
    flat, sharp = SoftTokenSelection(16, 4), SoftTokenSelection(16, 4, standardize=True)
    sharp.load_state_dict(flat.state_dict())
    w_flat = flat(x, x, mask).weights.max(dim=-1).values.mean()
    w_sharp = sharp(x, x, mask).weights.max(dim=-1).values.mean()
    assert w_flat < 1.5 / 12 < w_sharp  # near uniform without; peaked with
    agg_flat, agg_sharp = LinearAggregation(16), LinearAggregation(16, standardize=True)
    agg_sharp.load_state_dict(agg_flat.state_dict())
    q = torch.randn(2, 3, 16)
    assert agg_flat(q, x, mask)[1].max() < agg_sharp(q, x, mask)[1].max()


def test_lower_temperature_gives_a_peakier_selection():
    torch.manual_seed(0)
    x = torch.randn(1, 20, 16)
    mask = torch.ones(1, 20, dtype=torch.bool)
    warm, cold = SoftTokenSelection(16, 4), SoftTokenSelection(16, 4, temperature=0.25)
    cold.load_state_dict(warm.state_dict())
    weights = [s(x, x, mask).weights for s in (warm, cold)]  # (1, k, M) each
    entropy = [-(w * w.log()).sum(-1).mean() for w in weights]
    assert entropy[1] < entropy[0]
