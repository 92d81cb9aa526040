"""Direct Preference Optimisation loss (sigmoid form) and the log-probabilities it needs.

    L = -log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x))
                              - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )

with log-probabilities summed over the completion tokens (Rafailov et al. 2023; the
paper's printed formula drops the log on the loser term, a typo). Pure functions: no
model, no state; TRL's trainer computes the same thing inline, and a test checks both
agree on the same log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass
class DPOLossOutput:
    loss: torch.Tensor
    """Mean loss over pairs (scalar)."""
    losses: torch.Tensor
    """Per-pair loss (B,)."""
    chosen_rewards: torch.Tensor
    """beta * (log pi - log pi_ref) of the chosen completion (B,), detached."""
    rejected_rewards: torch.Tensor
    """Same for the rejected completion (B,), detached."""

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracy(self) -> torch.Tensor:
        """Fraction of pairs whose implicit reward ranks chosen above rejected."""
        return (self.chosen_rewards > self.rejected_rewards).float().mean()


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> DPOLossOutput:
    """Sigmoid DPO loss from summed completion log-probs, each (B,)."""
    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # (B,)
    return DPOLossOutput(
        loss=losses.mean(),
        losses=losses,
        chosen_rewards=(beta * chosen_logratios).detach(),
        rejected_rewards=(beta * rejected_logratios).detach(),
    )


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token) over positions whose label is not IGNORE_INDEX.

    ``logits`` (B, L, V) predict the *next* token, so position t scores ``labels[:, t+1]``.
    Returns (B,) in float32 (log-softmax in low precision loses the small differences
    DPO is made of).
    """
    logits = logits[:, :-1, :].float()  # (B, L, V) -> (B, L-1, V)
    targets = labels[:, 1:]  # (B, L) -> (B, L-1)
    mask = targets != IGNORE_INDEX  # (B, L-1)
    safe = targets.masked_fill(~mask, 0)
    # log_softmax then gather, computed per token: (B, L-1, V) -> (B, L-1)
    token_logps = torch.gather(logits.log_softmax(-1), 2, safe.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1)  # (B, L-1) -> (B,)
