"""SFT loss reductions: "row" averages each row's answer tokens first, then the rows."""

from __future__ import annotations

import pytest
import torch

from mu2.train.config import SFTConfig
from mu2.train.sft import row_mean_loss


def test_row_mean_loss_matches_a_hand_computation() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)  # (B, L, V)
    labels = torch.tensor([[-100, -100, 3, 4, 5], [-100, -100, -100, -100, 6]])
    logp = logits.log_softmax(-1)
    row0 = -(logp[0, 1, 3] + logp[0, 2, 4] + logp[0, 3, 5]) / 3  # 3 answer tokens
    row1 = -logp[1, 3, 6]  # 1 answer token
    expected = (row0 + row1) / 2
    assert row_mean_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    token_mean = (3 * row0 + row1) / 4  # what HF's token-mean loss gives
    assert abs(token_mean.item() - expected.item()) > 1e-3


def test_rows_without_answer_tokens_are_left_out() -> None:
    logits = torch.zeros(2, 3, 4)
    labels = torch.tensor([[-100, 1, 2], [-100, -100, -100]])
    assert row_mean_loss(logits, labels).item() == pytest.approx(
        torch.log(torch.tensor(4.0)).item()
    )


def test_unknown_reduction_is_rejected() -> None:
    with pytest.raises(ValueError, match="loss_reduction"):
        SFTConfig(loss_reduction="sample")
