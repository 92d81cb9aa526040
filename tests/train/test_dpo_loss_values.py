"""DPO loss defaults and log-prob masking, by hand."""

from __future__ import annotations

import math

import torch

from mu2.train.dpo_loss import IGNORE_INDEX, dpo_loss, sequence_logps


def test_default_beta_is_the_papers_0_1() -> None:
    out = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]),
                   torch.tensor([-2.0]))  # fmt: skip
    margin = 0.1 * ((-1.0 + 2.0) - (-3.0 + 2.0))  # beta * 2
    assert math.isclose(out.loss.item(), -math.log(1 / (1 + math.exp(-margin))), rel_tol=1e-6)
    assert math.isclose(out.chosen_rewards.item(), 0.1, rel_tol=1e-6)
    assert math.isclose(out.rejected_rewards.item(), -0.1, rel_tol=1e-6)
    assert out.accuracy.item() == 1.0 and math.isclose(out.margins.item(), 0.2, rel_tol=1e-6)


def test_ignored_labels_add_nothing_whatever_their_logits() -> None:
    logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[IGNORE_INDEX, 3, IGNORE_INDEX, 1], [IGNORE_INDEX] * 4])
    logp = logits.log_softmax(-1)
    expected = logp[0, 0, 3] + logp[0, 2, 1]  # position t scores label t + 1
    got = sequence_logps(logits, labels)
    torch.testing.assert_close(got, torch.stack([expected, torch.tensor(0.0)]))
