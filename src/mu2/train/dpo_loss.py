"""Direct Preference Optimisation loss (sigmoid form) and the log-probabilities it needs.

    L = -log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x))
                              - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )

with log-probabilities summed over the completion tokens (Rafailov et al. 2023; the
paper's printed formula drops the log on the loser term, a typo). Pure functions: no
model, no state; TRL's trainer computes the same thing inline, and a test checks both
agree on the same log-probabilities.

Optional terms (all off by default and in the paper config), for when the plain loss
drifts away from what SFT learned (the chosen log-probability falls with the rejected one):

- ``rpo_alpha``: adds ``alpha * NLL(chosen)``, the mean negative log-likelihood per
  chosen report token over the batch (RPO, Pang et al. 2024; TRL's ``loss_type=["sigmoid",
  "sft"]`` with ``loss_weights=[1, alpha]``);
- ``label_smoothing`` eps: conservative DPO (Mitchell 2023), the preference is taken to be
  flipped with probability eps: ``-(1-eps) log s(beta m) - eps log s(-beta m)``;
- ``reference_free``: the reference log-probabilities are taken as 0, so the margin is
  the policy's own ``log pi(y_w) - log pi(y_l)`` (TRL's former ``reference_free``).
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
    *,
    rpo_alpha: float = 0.0,
    chosen_tokens: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    reference_free: bool = False,
) -> DPOLossOutput:
    """Sigmoid DPO loss from summed completion log-probs, each (B,).

    ``chosen_tokens`` (B,): number of report tokens of each chosen completion, needed
    when ``rpo_alpha`` > 0 (the NLL term is a mean per token, so long reports do not
    outweigh the preference term).
    """
    if reference_free:
        ref_chosen_logps = torch.zeros_like(policy_chosen_logps)
        ref_rejected_logps = torch.zeros_like(policy_rejected_logps)
    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    margin = beta * (chosen_logratios - rejected_logratios)  # (B,)
    losses = -F.logsigmoid(margin)  # (B,)
    if label_smoothing:
        losses = (1 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-margin)
    if rpo_alpha:
        if chosen_tokens is None:
            raise ValueError("rpo_alpha > 0 needs chosen_tokens (report tokens per chosen row)")
        # one batch-level mean NLL per token, as TRL's "sft" term: the same value per pair
        nll = -policy_chosen_logps.sum() / chosen_tokens.sum().clamp(min=1)  # scalar
        losses = losses + rpo_alpha * nll
    return DPOLossOutput(
        loss=losses.mean(),
        losses=losses,
        chosen_rewards=(beta * chosen_logratios).detach(),
        rejected_rewards=(beta * rejected_logratios).detach(),
    )


def completion_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Number of scored completion tokens per row (B,), as :func:`sequence_logps` counts them."""
    return (labels[:, 1:] != IGNORE_INDEX).sum(-1)  # (B, L) -> (B,)


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
