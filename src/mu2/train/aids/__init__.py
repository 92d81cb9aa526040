"""Learning aids: not in the paper, what a random-init tiny model on 2 CPUs needs.

The paper starts from a pretrained LLM (Llama-3.2-1B) and an M3D-CLIP vision tower and
trains on 100k+ reports; its SFT is the next-token loss alone (:mod:`mu2.train.sft`). The
embedded default starts from a random-init tiny LLM and a few hundred synthetic scans on a
CPU, and does not learn to read the image in the demo budget without help. These aids help;
each is named, optional and off in the paper configs:

  context_lm     the LM stage (``mu2 train lm``): the LLM learns to read what is written in
                 its image block (the findings as words, or as the findings code)
  findings_code  auxiliary loss (``SFTConfig.code_weight``): visual tokens regress onto the
                 scan's findings code, which the LM stage taught the LLM to read
  code_init      warm start (``SFTConfig.code_init_rows``): the projector's last layer fitted
                 so a uniform token mix emits the code from step 0
  grounding      auxiliary loss (``SFTConfig.ground_weight``): a report row's question-to-CT
                 relevance on its finding's voxels (synthetic labels only)

The token standardisation before the μ² tokenizer's softmax scores
(:mod:`mu2.tokenizer.standardize`, ``standardize`` in the tokenizer config) is an aid of the
same kind inside the model. SFT asks :func:`sft_aids` for the auxiliary losses its config
switches on; each is an :class:`~mu2.train.aids.base.AuxiliaryLoss`.
"""

from __future__ import annotations

from typing import Any

from mu2.train.aids.base import AuxiliaryLoss, Collate


def sft_aids(
    cfg: Any, model: Any, rows: list[Any], train: Any, collate: Collate, cache: Any = None
) -> tuple[list[AuxiliaryLoss], Collate]:
    """The auxiliary losses ``cfg`` (an ``SFTConfig``) switches on, in order, and SFT's
    collate wrapped by each of them. Empty for the paper's SFT."""
    aids: list[AuxiliaryLoss] = []
    if cfg.code_weight > 0:
        from mu2.train.aids.findings_code import FindingsCodeLoss

        aids.append(FindingsCodeLoss(cfg, model, rows, train, collate, cache))
        collate = aids[-1].collate
    if cfg.ground_weight > 0:
        from mu2.train.aids.grounding import GroundingLoss

        aids.append(GroundingLoss(cfg, model, train, collate))
        collate = aids[-1].collate
    return aids, collate


__all__ = ["AuxiliaryLoss", "Collate", "sft_aids"]
