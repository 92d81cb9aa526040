"""Values of the tokenizer's internals, each against a reference written out here by hand.

Relative index tables against loops over (i, j); soft selection against a NumPy softmax
over the valid tokens; hard selection against NumPy's argsort of the token scores and its
back-projection against the picked positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mu2.tokenizer.position import (
    AbsolutePosition,
    RelativeBias1D,
    RelativeBias3D,
    relative_index_1d,
    relative_index_3d,
    sequence_bias,
    spatial_bias,
)
from mu2.tokenizer.selection import HardTokenSelection, SoftTokenSelection, make_selection


@pytest.mark.parametrize("length", [1, 2, 5, 9])
def test_relative_index_1d_full_table_has_2l_minus_1_distinct_offsets(length):
    index = relative_index_1d(length, length).tolist()
    for i in range(length):
        for j in range(length):
            assert index[i][j] == i - j + length - 1
    assert len({v for row in index for v in row}) == 2 * length - 1


def test_relative_index_1d_clamps_exactly_at_the_table_edge():
    max_len, length = 4, 10
    index = relative_index_1d(length, max_len).tolist()
    for i in range(length):
        for j in range(length):
            offset = max(-(max_len - 1), min(max_len - 1, i - j))
            assert index[i][j] == offset + max_len - 1
    # all 2 * max_len - 1 table rows are used: none is unreachable, none out of range
    assert sorted({v for row in index for v in row}) == list(range(2 * max_len - 1))


def test_relative_bias_1d_reads_one_table_row_per_offset():
    torch.manual_seed(0)
    bias_mod = RelativeBias1D(max_len=3, heads=2)
    bias = bias_mod(3)  # (H, L, L)
    table = bias_mod.table.detach()
    for i in range(3):
        for j in range(3):
            torch.testing.assert_close(bias[:, i, j].detach(), table[i - j + 2])


def test_relative_index_3d_against_loops():
    grid = (2, 3, 4)
    gz, gy, gx = grid
    coords = [(z, y, x) for z in range(gz) for y in range(gy) for x in range(gx)]
    index = relative_index_3d(grid).tolist()
    for a, (z1, y1, x1) in enumerate(coords):
        for b, (z2, y2, x2) in enumerate(coords):
            dz, dy, dx = z1 - z2 + gz - 1, y1 - y2 + gy - 1, x1 - x2 + gx - 1
            assert index[a][b] == (dz * (2 * gy - 1) + dy) * (2 * gx - 1) + dx
    assert len({v for row in index for v in row}) == (2 * gz - 1) * (2 * gy - 1) * (2 * gx - 1)


def _inputs(b=2, m=7, e=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, m, e, generator=g)
    toks = torch.randn(b, m, e, generator=g)
    mask = torch.ones(b, m, dtype=torch.bool)
    if b > 1:
        mask[1, 4:] = False  # the second sample has 4 real tokens
    return feats, toks, mask


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_soft_selection_weights_are_a_softmax_over_valid_tokens(temperature):
    torch.manual_seed(1)
    feats, toks, mask = _inputs()
    sel = SoftTokenSelection(dim=8, k=3, temperature=temperature)
    out = sel(feats, toks, mask)
    w = out.weights.detach().numpy()
    score = sel.score.detach().numpy()
    for b in range(2):
        valid = mask[b].numpy()
        logits = feats[b].numpy()[valid] @ score.T / (temperature * np.sqrt(8))  # (Mv, k)
        ref = np.exp(logits - logits.max(axis=0))
        ref /= ref.sum(axis=0)
        np.testing.assert_allclose(w[b][:, valid], ref.T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w[b].sum(axis=-1), np.ones(3), rtol=1e-6)
        assert (w[b][:, ~valid] == 0).all()
        np.testing.assert_allclose(
            out.tokens[b].detach().numpy(), ref.T @ toks[b].numpy()[valid], rtol=1e-5, atol=1e-5
        )
    assert out.mask.all()
    # back-projection of relevance r (k,) is r @ weights, so the total is kept
    rel = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, 1.5]])
    back = out.backproject(rel, 7)
    torch.testing.assert_close(back.sum(-1), rel.sum(-1))
    assert (back[1, 4:] == 0).all()


def test_hard_selection_picks_the_top_scores_and_backprojects_onto_them():
    torch.manual_seed(2)
    feats, toks, mask = _inputs()
    sel = HardTokenSelection(dim=8, k=3)
    out = sel(feats, toks, mask)
    w = sel.score.weight.detach().numpy()[0]
    bias = float(sel.score.bias.detach())
    rel = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    back = out.backproject(rel, 7).numpy()
    for b in range(2):
        scores = feats[b].numpy() @ w + bias
        scores[~mask[b].numpy()] = -np.inf
        top = sorted(np.argsort(-scores)[:3].tolist())  # the 3 best, in token order
        assert out.index[b].tolist() == top
        np.testing.assert_allclose(out.tokens[b].detach().numpy(), toks[b].numpy()[top])
        expected = np.zeros(7, np.float32)
        expected[top] = rel[b].numpy()
        np.testing.assert_array_equal(back[b], expected)
    assert out.mask.all()


def test_hard_selection_with_padding_slots_backprojects_nothing_from_them():
    feats, toks, mask = _inputs(b=1, m=2)
    sel = HardTokenSelection(dim=8, k=4)
    out = sel(feats, toks, mask)
    assert out.mask.tolist() == [[True, True, False, False]]
    assert out.index[0, :2].tolist() == [0, 1]
    back = out.backproject(torch.tensor([[1.0, 2.0, 7.0, 9.0]]), 2)
    assert back.tolist() == [[1.0, 2.0]]
    assert (out.tokens[0, 2:] == 0).all()


# --- scheme builders, table sizes and initialisation, index devices ---------------------


def test_bias_builders_per_scheme():
    heads = 3
    bias3d = spatial_bias("relative_3d", (2, 3, 4), heads)
    assert isinstance(bias3d, RelativeBias3D) and bias3d.table.shape == (3 * 5 * 7, heads)
    assert bias3d().shape == (heads, 24, 24)
    flat = spatial_bias("relative_1d", (2, 3, 4), heads)  # over the 24 flattened tokens
    assert flat().shape == (heads, 24, 24) and flat.bias.table.shape == (2 * 24 - 1, heads)
    for rpe in ("relative_3d", "relative_1d"):
        seq = sequence_bias(rpe, 5, heads)
        assert isinstance(seq, RelativeBias1D) and seq.table.shape == (9, heads)
    assert sequence_bias("absolute", 5, heads) is None
    assert RelativeBias1D(max_len=7, heads=2).table.shape == (13, 2)


def test_tables_start_at_the_swin_init_scale():
    torch.manual_seed(0)
    tables = [
        RelativeBias3D((4, 8, 8), 8).table,
        RelativeBias1D(512, 8).table,
        AbsolutePosition(64, 64, 32).frame,
        AbsolutePosition(64, 64, 32).token,
    ]
    for t in tables:  # trunc_normal(std=0.02): thousands of entries, std within 20 %
        std = float(t.detach().std())
        assert 0.016 < std < 0.024 and float(t.detach().abs().max()) < 0.2


def test_index_tables_are_built_on_the_requested_device():
    meta = torch.device("meta")
    assert relative_index_3d((2, 3, 4), meta).device.type == "meta"
    assert relative_index_1d(5, 3, meta).device.type == "meta"


def test_make_selection_builds_the_configured_module():
    soft = make_selection("soft", 8, 3, temperature=0.5, standardize=True)
    assert isinstance(soft, SoftTokenSelection) and soft.k == 3 and soft.standardize is True
    assert soft.score.shape == (3, 8) and soft.scale == pytest.approx(1 / (0.5 * np.sqrt(8)))
    plain = make_selection("soft", 8, 3)  # defaults: tau 1, no standardisation
    assert plain.scale == pytest.approx(1 / np.sqrt(8)) and plain.standardize is False
    assert SoftTokenSelection(8, 3).scale == pytest.approx(1 / np.sqrt(8))
    hard = make_selection("hard", 8, 3)
    assert isinstance(hard, HardTokenSelection) and hard.k == 3
    assert tuple(hard.score.weight.shape) == (1, 8)
    with pytest.raises(ValueError, match=r"unknown selection 'top'; choose one of \('soft', "):
        make_selection("top", 8, 3)


def test_soft_selection_with_standardised_features_against_numpy():
    torch.manual_seed(3)
    feats, toks, mask = _inputs()
    feats = feats * 0.1 + 5.0  # a large common component, a small deviation
    sel = SoftTokenSelection(dim=8, k=3, standardize=True)
    w = sel(feats, toks, mask).weights.detach().numpy()
    score = sel.score.detach().numpy()
    for b in range(2):
        valid = mask[b].numpy()
        f = feats[b].numpy()[valid].astype(np.float64)  # (Mv, E)
        dev = f - f.mean(axis=0)
        std = dev / (np.sqrt((dev**2).mean()) + 1e-6)  # one RMS per case
        logits = std @ score.T / np.sqrt(8)
        ref = np.exp(logits - logits.max(axis=0))
        ref /= ref.sum(axis=0)
        np.testing.assert_allclose(w[b][:, valid], ref.T, rtol=1e-4, atol=1e-6)


def test_soft_selection_in_float64_and_a_case_without_tokens():
    torch.manual_seed(4)
    feats, toks, mask = _inputs()
    sel = SoftTokenSelection(dim=8, k=3)
    out64 = sel(feats.double(), toks.double(), mask)
    out32 = sel(feats, toks, mask)
    assert out64.tokens.dtype == torch.float64
    torch.testing.assert_close(out64.tokens.float(), out32.tokens, rtol=1e-5, atol=1e-5)
    empty = mask.clone()
    empty[1] = False  # the second case has no real token
    out = sel(feats, toks, empty)
    assert out.mask.tolist() == [[True] * 3, [False] * 3]


def test_hard_selection_of_masked_tokens_backprojects_nothing_from_them():
    # 5 tokens, 3 real, k = 4: one pick is a masked real position (index < M)
    feats, toks, _ = _inputs(b=1, m=5)
    mask = torch.tensor([[True, False, True, False, True]])
    sel = HardTokenSelection(dim=8, k=4)
    out = sel(feats, toks, mask)
    assert out.mask.sum() == 3 and (out.index[0][~out.mask[0]] < 5).all()
    back = out.backproject(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 5)
    assert torch.isfinite(back).all() and back[0, [1, 3]].eq(0).all()
    kept = torch.tensor([1.0, 2.0, 3.0, 4.0])[out.mask[0]]
    assert back.sum() == kept.sum()


def test_hard_selection_backprojects_with_narrow_tokens():
    # token width 1 < k: the padding slots' indices (M .. M + k - 1) must still fit
    sel = HardTokenSelection(dim=1, k=4)
    g = torch.Generator().manual_seed(5)
    out = sel(
        torch.randn(1, 2, 1, generator=g),
        torch.randn(1, 2, 1, generator=g),
        torch.ones(1, 2, dtype=torch.bool),
    )
    back = out.backproject(torch.tensor([[1.0, 2.0, 5.0, 7.0]]), 2)
    assert back.tolist() == [[1.0, 2.0]]
