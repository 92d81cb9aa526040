"""Values of the tokenizer's internals, each against a reference written out here by hand.

Relative index tables against loops over (i, j); soft selection against a NumPy softmax
over the valid tokens; hard selection against NumPy's argsort of the token scores and its
back-projection against the picked positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mu2.tokenizer.position import RelativeBias1D, relative_index_1d, relative_index_3d
from mu2.tokenizer.selection import HardTokenSelection, SoftTokenSelection


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
